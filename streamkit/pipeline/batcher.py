"""Groups messages for a batch handler by size and/or time, optionally one group per key.

A group is handed on when it holds ``size`` messages, when ``timeout`` seconds have passed since
its first message, when the source is starved for window slots (holding back would stall the
whole pipeline), or at the end of input. So a group never exceeds the size, and never waits
longer than the timeout plus one scheduling delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable

from streamkit.message import Message
from streamkit.pipeline.chunks import Chunk, Group, SourceBatch
from streamkit.pipeline.dispatch import Dispatch, KeyFunction
from streamkit.pipeline.flow import Window
from streamkit.pipeline.queues import BoundedQueue, QueueClosed

__all__ = ["Batcher"]

_STARVATION_POLL = 0.02


class Batcher:
    def __init__(
        self,
        size: int | None,
        timeout: float | None,
        key: KeyFunction | None,
        *,
        capacity: int = 4,
    ) -> None:
        if size is not None and size < 1:
            raise ValueError("batch size must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("batch timeout must be positive")
        self.size = size
        self.timeout = timeout
        self.key = key
        self.input: BoundedQueue[Chunk] = BoundedQueue(capacity)
        self._groups: dict[Hashable, Group] = {}

    @property
    def held(self) -> int:
        """Messages waiting in open groups."""
        return sum(len(group) for group in self._groups.values())

    async def run(
        self,
        downstream: Dispatch,
        release: Callable[[SourceBatch], None],
        window: Window,
    ) -> None:
        """Read chunks until the input closes; hand full/old groups to ``downstream``."""
        try:
            while True:
                chunk = await self._next_chunk(downstream, window)
                if chunk is None:
                    continue
                for group in self._absorb(chunk):
                    await downstream.put(group)
                release(chunk.batch)
        except QueueClosed:
            for group in self._take_all():
                await downstream.put(group)
        finally:
            downstream.close()

    async def _next_chunk(self, downstream: Dispatch, window: Window) -> Chunk | None:
        """The next chunk, or None after handing on the groups that became due meanwhile."""
        ready = self.input.get_nowait()
        if ready is not None:
            return ready
        if not self._groups:
            return await self.input.get()
        wait = _STARVATION_POLL
        if self.timeout is not None:
            earliest = min(g.deadline for g in self._groups.values() if g.deadline is not None)
            wait = min(wait, max(0.0, earliest - time.monotonic()))
        try:
            return await asyncio.wait_for(self.input.get(), wait)
        except asyncio.TimeoutError:
            pass
        if window.starved:
            due = self._take_all()
        else:
            now = time.monotonic()
            due = [g for g in self._groups.values() if g.deadline is not None and g.deadline <= now]
            for group in due:
                del self._groups[group.key]
        for group in due:
            await downstream.put(group)
        return None

    def _absorb(self, chunk: Chunk) -> list[Group]:
        batch = chunk.batch
        full: list[Group] = []
        groups = self._groups
        key = self.key
        size = self.size
        for position, entry in zip(chunk.positions(), chunk.items):
            if entry is None:
                continue
            messages: list[Message] = [entry] if isinstance(entry, Message) else entry
            for message in messages:
                group_key = key(message) if key is not None else None
                group = groups.get(group_key)
                if group is None:
                    deadline = None if self.timeout is None else time.monotonic() + self.timeout
                    group = groups[group_key] = Group(group_key, deadline)
                claims = group.claims
                if not claims or (claims[-1] is not batch and batch not in claims):
                    claims.append(batch)
                    batch.outstanding += 1
                if group.first is None:
                    group.first = (batch, position)
                group.messages.append(message)
                group.last = (batch, position)
                if size is not None and len(group.messages) >= size:
                    full.append(groups.pop(group_key))
        return full

    def _take_all(self) -> list[Group]:
        groups = list(self._groups.values())
        self._groups.clear()
        return groups
