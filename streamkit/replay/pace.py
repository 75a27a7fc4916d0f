"""``--pace``: replay messages with the gaps between their timestamps, scaled.

Deadlines are absolute: the first message fixes an origin (its timestamp and a monotonic
instant), and a message with timestamp ``ts`` is due at ``origin_time + (ts - origin_ts) / speed``.
Sleeping to absolute deadlines instead of for relative gaps means the time spent sending, and
the loop's late wake-ups, never accumulate: drift stays bounded by one wake-up over a replay of
any length. A message whose timestamp goes backwards is already due and is sent at once.

Pacing is batch-wise: a batch is split only where a wait is needed, and messages that are
already due (or share a deadline) go out as one slice, so a fast replay does not await per
message. The clock is injectable (``Clock``) so tests run on a fake one.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator
from typing import Protocol

from streamkit.errors import UsageError
from streamkit.message import Message

__all__ = ["Clock", "MonotonicClock", "Pacer", "parse_pace"]

_PACE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)x?")


def parse_pace(text: str) -> float | None:
    """``max`` → None (no pacing); ``1x``, ``10x``, ``0.5x`` (the ``x`` is optional) → speed."""
    value = text.strip().lower()
    if value == "max":
        return None
    match = _PACE.fullmatch(value)
    speed = float(match.group(1)) if match else 0.0
    if not match or not math.isfinite(speed) or speed <= 0:
        raise UsageError(
            f"invalid pace {text!r}: use max or a positive speed like 1x, 10x, 0.5x", "--pace"
        )
    return speed


class Clock(Protocol):
    """Monotonic seconds and a way to wait; tests substitute a fake one."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Pacer:
    """Holds each message back until its scaled timestamp is due.

    ``speed`` 1.0 is the recorded pace, 10.0 ten times faster, 0.5 half as fast.
    ``hurry()`` (on SIGINT/SIGTERM) ends any wait: what was already read goes out at once.
    """

    def __init__(self, speed: float, clock: Clock | None = None) -> None:
        if not speed > 0 or not math.isfinite(speed):
            raise UsageError(f"invalid pace speed {speed!r}", "--pace")
        self.speed = speed
        self.clock: Clock = clock or MonotonicClock()
        self._ms_per_second = 1000.0 * speed
        self._origin_ts: int | None = None
        self._origin_time = 0.0
        self._due_ts = -math.inf
        """Every timestamp up to this one is due (the newest deadline already reached)."""
        self._hurry = False
        self._sleeper: asyncio.Task[None] | None = None
        self.waits = 0
        """How many times the pacer slept (one per distinct deadline that was not yet due)."""

    def deadline(self, timestamp: int) -> float:
        """The clock time at which a message with ``timestamp`` is due."""
        assert self._origin_ts is not None
        return self._origin_time + (timestamp - self._origin_ts) / self._ms_per_second

    def _due_at(self, now: float) -> float:
        assert self._origin_ts is not None
        return self._origin_ts + (now - self._origin_time) * self._ms_per_second

    def hurry(self) -> None:
        """Stop waiting: everything from now on is due at once (a clean drain on a signal)."""
        self._hurry = True
        self._due_ts = math.inf
        if self._sleeper is not None:
            self._sleeper.cancel()

    async def pace(self, batch: list[Message]) -> AsyncIterator[list[Message]]:
        """Yield ``batch`` in slices, each once its first message is due."""
        if not batch:
            return
        if self._origin_ts is None:
            self._origin_ts = batch[0].timestamp
            self._origin_time = self.clock.now()
        due = self._due_ts
        start = 0
        for index, message in enumerate(batch):
            ts = message.timestamp
            if ts <= due:
                continue
            due = self._due_at(self.clock.now())
            if ts <= due:
                continue
            if index > start:
                yield batch[start:index]
                start = index
            await self._wait_until(self.deadline(ts))
            # The wait may end a hair early (timer resolution): the message is due regardless.
            due = max(float(ts), self._due_at(self.clock.now()))
            if self._hurry:
                due = math.inf
        self._due_ts = due
        yield batch[start:] if start else batch

    async def paced(self, batches: AsyncIterator[list[Message]]) -> AsyncIterator[list[Message]]:
        """``pace`` over a stream of batches, e.g. ``consumer.batches(n)``."""
        async for batch in batches:
            async for part in self.pace(batch):
                yield part

    async def _wait_until(self, deadline: float) -> None:
        delay = deadline - self.clock.now()
        if delay <= 0 or self._hurry:
            return
        self.waits += 1
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        self._sleeper = sleeper
        try:
            # asyncio.wait, not await: a sleep cancelled by hurry() must not cancel us.
            await asyncio.wait((sleeper,))
        finally:
            self._sleeper = None
            if not sleeper.done():
                sleeper.cancel()
