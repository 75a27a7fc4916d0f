"""``relay --stats``: rate, totals and lag on stderr, from a timer, never from the copy loop.

The copy loop only stores its running total in ``RelayStats.messages`` (one attribute store per
batch); a task wakes every INTERVAL, reads it, and prints one line. Lag is asked of the consumer
only when it has a ``lag()`` that answers from what the client already knows (Kafka: the
watermarks librdkafka caches from its fetches, minus the positions), so the report sends nothing
over the network; backends without one print no lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from typing import TextIO

from streamkit.backends.base import Consumer

__all__ = ["RelayStats"]


def _lag_of(consumer: Consumer) -> Callable[[], int | None] | None:
    lag = getattr(consumer, "lag", None)
    return lag if callable(lag) else None


class RelayStats:
    """Counts kept by the copy loop; ``run`` prints them every ``interval`` seconds."""

    def __init__(
        self,
        consumer: Consumer,
        interval: float,
        *,
        prefix: str = "streamkit relay",
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.messages = 0
        """Messages written so far (set by the copy loop)."""
        self.interval = interval
        self.prefix = prefix
        self.out = out or sys.stderr
        self.clock = clock
        self.started = clock()
        self._lag = _lag_of(consumer)
        self._last_at = self.started
        self._last_messages = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stats")

    async def stop(self) -> None:
        """Stop the timer and print the final line (totals over the whole run)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._print(self.final_line())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._print(self.line())

    def line(self) -> str:
        """Since the last line: rate; since the start: total and average; lag if known."""
        now = self.clock()
        messages = self.messages
        span = max(now - self._last_at, 1e-9)
        rate = (messages - self._last_messages) / span
        self._last_at, self._last_messages = now, messages
        text = (
            f"stats: {messages:,} messages, {rate:,.0f}/s now, {self._average(now):,.0f}/s average"
        )
        lag = self._lag() if self._lag is not None else None
        if lag is not None:
            text += f", lag {lag:,}"
        return text

    def final_line(self) -> str:
        now = self.clock()
        text = (
            f"stats: done: {self.messages:,} messages in {now - self.started:.1f}s, "
            f"{self._average(now):,.0f}/s average"
        )
        lag = self._lag() if self._lag is not None else None
        if lag is not None:
            text += f", lag {lag:,}"
        return text

    def _average(self, now: float) -> float:
        return self.messages / max(now - self.started, 1e-9)

    def _print(self, text: str) -> None:
        self.out.write(f"{self.prefix}: {text}\n")
        self.out.flush()
