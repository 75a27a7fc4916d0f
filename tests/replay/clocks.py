"""A fake clock for pacing tests: time moves only when the code under test sleeps or works."""

from __future__ import annotations

import asyncio


class FakeClock:
    """``now()`` is virtual seconds; ``sleep(s)`` advances it by ``s`` (plus ``oversleep``,
    the late wake-up a real event loop adds) and yields to the loop once."""

    def __init__(self, start: float = 5000.0, oversleep: float = 0.0) -> None:
        self.time = start
        self.oversleep = oversleep
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds) + self.oversleep
        await asyncio.sleep(0)

    def work(self, seconds: float) -> None:
        """Time spent outside sleeps (sending a batch, say)."""
        self.time += seconds
