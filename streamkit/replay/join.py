"""``streamkit.join``: several consumers merged into one, in timestamp order.

Each input has a reader task that fills a bounded buffer in a ``Merger``; the join's
``next_batch`` hands out what the merger says is safe. An input that is waited on and has not
delivered anything for ``max_lateness`` seconds while blocked in a read is *silent*: the merge
moves on without it, so a silent input delays output by at most ``max_lateness``. What it
delivers later is merged again; messages older than what was already output are late
(delivered and counted, or dropped with ``late="drop"``). An input that ends leaves the merge.

The join is a ``Consumer``: ``batches(n)``, ``recv()``, ``async for`` and ``stop()`` work as on
any other. It owns its input consumers: ``close()`` closes them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from streamkit.backends.base import Consumer, ConsumerOptions
from streamkit.errors import EndOfStream, UsageError
from streamkit.message import Message
from streamkit.replay.merge import LATE_POLICIES, Merger

__all__ = ["Join", "join"]


class Join(Consumer):
    """What ``join()`` returns: one consumer over several, merged by timestamp, so a relay or a
    processor reads many streams as one timeline. ``late``, ``dropped`` and ``skipped`` count
    what the merge did (``relay`` with several inputs reports them at the end)."""

    def __init__(
        self,
        consumers: Sequence[Consumer],
        *,
        max_lateness: float = 1.0,
        late: str = "deliver",
        buffer: int = 10_000,
        keys: Sequence[str | None] | None = None,
        read_size: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        on_late: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(ConsumerOptions())
        if not consumers:
            raise UsageError("join needs at least one consumer", "join")
        if not max_lateness >= 0:
            raise UsageError(f"invalid max_lateness {max_lateness!r}", "--max-lateness")
        if late not in LATE_POLICIES:
            raise UsageError(f"invalid value {late!r}: use deliver or drop", "--late")
        if buffer < 1 or read_size < 1:
            raise UsageError("buffer and read_size must be at least 1", "join")
        self.consumers = list(consumers)
        self.max_lateness = max_lateness
        if keys is not None and len(keys) != len(self.consumers):
            raise UsageError(f"{len(keys)} keys for {len(self.consumers)} consumers", "join")
        self._merger = Merger(len(self.consumers), late=late, keys=keys)
        self._capacity = buffer
        self._read_size = read_size
        self._clock = clock
        self._on_late = on_late
        self._reported_late = 0
        count = len(self.consumers)
        self._reading_since: list[float | None] = [None] * count
        """When each reader's current read began (None: not in a read, e.g. its buffer is full)."""
        self._grow = [False] * count
        self._paused = [False] * count
        self._space = [asyncio.Event() for _ in range(count)]
        self._changed = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self._error: BaseException | None = None
        self._ready: list[Message] = []
        self._ready_pos = 0

    @property
    def late(self) -> int:
        """Messages delivered although older than what was already output."""
        return self._merger.late

    @property
    def dropped(self) -> int:
        """Late messages left out (``late="drop"``)."""
        return self._merger.dropped

    @property
    def skipped(self) -> int:
        """Invalid input lines the inputs skipped (``--on-invalid skip``), summed."""
        return sum(int(getattr(c, "skipped", 0) or 0) for c in self.consumers)

    def _start(self) -> None:
        if not self._readers:
            self._readers = [
                asyncio.ensure_future(self._read(index)) for index in range(len(self.consumers))
            ]

    async def _read(self, index: int) -> None:
        consumer = self.consumers[index]
        merger = self._merger
        space = self._space[index]
        try:
            while True:
                while merger.pending(index) >= self._capacity and not self._grow[index]:
                    space.clear()
                    self._paused[index] = True
                    try:
                        await space.wait()
                    finally:
                        self._paused[index] = False
                self._grow[index] = False
                self._reading_since[index] = self._clock()
                try:
                    batch = await consumer.next_batch(self._read_size)
                except EndOfStream:
                    merger.end(index)
                    return
                finally:
                    self._reading_since[index] = None
                merger.push(index, batch)
                self._changed.set()
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            if self._error is None:
                self._error = error
        finally:
            self._changed.set()

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        self._start()
        merger = self._merger
        while True:
            ready = self._ready
            if self._ready_pos < len(ready):
                start = self._ready_pos
                if start == 0 and len(ready) <= max_messages:
                    self._ready = []
                    return ready
                end = start + max_messages
                self._ready_pos = end if end < len(ready) else len(ready)
                return ready[start:end]
            if self._error is not None:
                raise self._error
            window = merger.take()
            if window:
                self._ready = window
                self._ready_pos = 0
                for event in self._space:
                    event.set()
                if self._on_late is not None and merger.late + merger.dropped > self._reported_late:
                    self._reported_late = merger.late + merger.dropped
                    self._on_late(self._reported_late)
                continue
            if merger.finished:
                raise EndOfStream
            self._changed.clear()
            timeout = self._silence(merger.blocking())
            if timeout == 0.0:
                continue
            if timeout is None:
                await self._changed.wait()
            else:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except asyncio.TimeoutError:
                    pass

    def _silence(self, blocking: list[int]) -> float | None:
        """Mark blocking inputs silent once they waited ``max_lateness`` in a read.

        Returns 0.0 when one was marked (try again now), else how long until the next one
        would be (None: nothing to time, wait for a change).
        """
        now = self._clock()
        soonest = math.inf
        for index in blocking:
            if self._paused[index]:
                # Its buffer is full of messages at the bound: let it read on.
                self._grow[index] = True
                self._space[index].set()
                continue
            since = self._reading_since[index]
            if since is None:  # between reads (or not started yet): about to read
                since = self._reading_since[index] = now
            left = since + self.max_lateness - now
            if left <= 0:
                self._merger.silence(index)
                return 0.0
            soonest = min(soonest, left)
        return None if soonest == math.inf else soonest

    def stop(self) -> None:
        super().stop()
        for consumer in self.consumers:
            consumer.stop()

    async def close(self) -> None:
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.cancel()
        for reader in readers:
            try:
                await reader
            except asyncio.CancelledError:
                pass
        for consumer in self.consumers:
            await consumer.close()


def join(
    consumers: Sequence[Consumer],
    *,
    max_lateness: float = 1.0,
    late: str = "deliver",
    buffer: int = 10_000,
    keys: Sequence[str | None] | None = None,
) -> Join:
    """Merge ``consumers`` into one consumer in timestamp order.

    Equal timestamps come in stream-key order, then in the order the consumers were given.
    Output waits at most ``max_lateness`` seconds for an input that has nothing to say; what
    it says later and is older than what was already output is *late*: delivered (counted in
    ``.late``) or, with ``late="drop"``, left out (counted in ``.dropped``). Each input holds
    at most about ``buffer`` messages. The join owns the consumers and closes them.

    ``keys`` names, per consumer, the one stream key it reads (None where it reads several or
    it is not known). With it, an input's newest message goes out as soon as nothing else can
    come before it; without it, a message at an input's newest timestamp waits until that
    input sends something newer, ends, or is quiet for ``max_lateness`` (another message with
    the same timestamp and a smaller key might still come).

        consumer = streamkit.join([a, b, c], max_lateness=0.5)
        async for batch in consumer.batches(1000):
            ...
    """
    return Join(consumers, max_lateness=max_lateness, late=late, buffer=buffer, keys=keys)
