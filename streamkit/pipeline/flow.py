"""The in-flight window: how many source batches may be between the source and the sink.

Bounded queues alone would let work pile up in places that are not queues (the resequencer,
the batcher, the outbox). The window bounds all of them at once: the source takes a slot per
batch read and the sink gives it back once the batch's outputs are written. ``starved`` tells
a batcher that the source is waiting for a slot, so holding messages back for a fuller batch
would only stall the pipeline: it should flush now.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["Window"]


class Window:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.starved = False

    @property
    def in_flight(self) -> int:
        return self.size - self._free

    async def acquire(self) -> None:
        while self._free <= 0:
            self.starved = True
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.starved = False
        self._free -= 1

    def release(self, count: int = 1) -> None:
        self._free += count
        while self._waiters and self._free > 0:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
