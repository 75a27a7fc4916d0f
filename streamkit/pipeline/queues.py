"""Bounded, closable queues between pipeline stages (after trio's memory channels).

A full queue makes ``put`` wait: that wait is the backpressure that slows the source when a stage
falls behind, so memory stays bounded however long the stream is. ``close`` lets the receivers
drain what is queued and then see ``QueueClosed`` — the way the end of input propagates stage by
stage. ``asyncio.Queue`` has no close, hence this small class.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BoundedQueue", "QueueClosed", "QueueStats"]

T = TypeVar("T")


class QueueClosed(Exception):
    """The queue was closed and everything in it has been taken."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    depth: int
    capacity: int
    closed: bool
    waiting_putters: int
    waiting_getters: int


class BoundedQueue(Generic[T]):
    """A FIFO of at most ``capacity`` items for one event loop; many putters, many getters."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be at least 1")
        self.capacity = capacity
        self._items: collections.deque[T] = collections.deque()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._putters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> QueueStats:
        return QueueStats(
            len(self._items), self.capacity, self._closed, len(self._putters), len(self._getters)
        )

    async def put(self, item: T) -> None:
        """Wait for room, then append. Putting into a closed queue is a programming error."""
        while len(self._items) >= self.capacity:
            if self._closed:
                raise RuntimeError("put into a closed queue")
            waiter = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                self._pass_on(waiter, self._putters)
                raise
            finally:
                if waiter in self._putters:
                    self._putters.remove(waiter)
        if self._closed:
            raise RuntimeError("put into a closed queue")
        self._items.append(item)
        self._wake(self._getters)

    def get_nowait(self) -> T | None:
        """An item if one is ready, else None (never waits, never raises QueueClosed)."""
        if not self._items:
            return None
        item = self._items.popleft()
        self._wake(self._putters)
        return item

    async def get(self) -> T:
        """The next item; waits while empty; QueueClosed once closed and drained."""
        while not self._items:
            if self._closed:
                raise QueueClosed
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                self._pass_on(waiter, self._getters)
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        item = self._items.popleft()
        self._wake(self._putters)
        return item

    def close(self) -> None:
        """No more puts; getters drain the rest and then get QueueClosed."""
        self._closed = True
        for waiter in (*self._getters, *self._putters):
            if not waiter.done():
                waiter.set_result(None)

    def _pass_on(
        self, waiter: asyncio.Future[None], waiters: collections.deque[asyncio.Future[None]]
    ) -> None:
        """A woken waiter was cancelled before it ran: give its wake-up to the next one."""
        if waiter.done() and not waiter.cancelled():
            self._wake(waiters)

    @staticmethod
    def _wake(waiters: collections.deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
