"""How the units arriving at a stage reach its workers: round-robin, broadcast, or by key.

- ``RoundRobin``: one shared queue; a chunk is cut into one piece per worker so a large batch
  keeps every worker busy, and the next free worker takes the next piece (demand-driven: plain
  round-robin when workers are equally fast, no head-of-line blocking when they are not).
- ``Broadcast``: every worker gets every chunk (a cache per worker, several outputs per input).
- ``Partition``: one queue per worker; a chunk is grouped by key and the messages of one key
  always go to the same worker, which handles them in arrival order.

Splitting bumps the source batch's ``outstanding`` count by the number of extra pieces, which is
how the resequencer knows when every piece is back.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Hashable

from streamkit.message import Message
from streamkit.pipeline.chunks import Chunk, Entry, Group
from streamkit.pipeline.queues import BoundedQueue

__all__ = [
    "Broadcast",
    "Dispatch",
    "KeyFunction",
    "Partition",
    "RoundRobin",
    "key_function",
    "make_dispatch",
]

Unit = Chunk | Group
KeyFunction = Callable[[Message], Hashable]

DISPATCH_MODES = ("round-robin", "broadcast", "partition")


class Dispatch(abc.ABC):
    """The input side of a stage with ``workers`` workers."""

    def __init__(self, workers: int, capacity_per_worker: int = 2) -> None:
        if workers < 1:
            raise ValueError("a stage needs at least one worker")
        self.workers = workers
        self.capacity = capacity_per_worker

    @abc.abstractmethod
    def queue_for(self, worker: int) -> BoundedQueue[Unit]:
        """The queue worker number ``worker`` takes its units from."""

    @abc.abstractmethod
    async def put(self, unit: Unit) -> None:
        """Route one unit (waiting while the target queue is full)."""

    @abc.abstractmethod
    def close(self) -> None:
        """End of input: workers drain their queues and stop."""

    @abc.abstractmethod
    def depth(self) -> int:
        """Units queued for this stage."""


class RoundRobin(Dispatch):
    def __init__(self, workers: int, capacity_per_worker: int = 2) -> None:
        super().__init__(workers, capacity_per_worker)
        self._queue: BoundedQueue[Unit] = BoundedQueue(workers * capacity_per_worker)

    def queue_for(self, worker: int) -> BoundedQueue[Unit]:
        return self._queue

    async def put(self, unit: Unit) -> None:
        if isinstance(unit, Group) or self.workers == 1 or len(unit) < 2:
            await self._queue.put(unit)
            return
        for piece in split(unit, self.workers):
            await self._queue.put(piece)

    def close(self) -> None:
        self._queue.close()

    def depth(self) -> int:
        return len(self._queue)


def split(chunk: Chunk, pieces: int) -> list[Chunk]:
    """Cut ``chunk`` into at most ``pieces`` contiguous pieces of nearly equal size."""
    size = -(-len(chunk) // pieces)
    items = chunk.items
    if size >= len(items):
        return [chunk]
    out: list[Chunk] = []
    for begin in range(0, len(items), size):
        part = items[begin : begin + size]
        if chunk.index is None:
            out.append(Chunk(chunk.batch, part, start=chunk.start + begin, simple=chunk.simple))
        else:
            index = chunk.index[begin : begin + size]
            out.append(Chunk(chunk.batch, part, index=index, simple=chunk.simple))
    chunk.batch.outstanding += len(out) - 1
    return out


class _PerWorker(Dispatch):
    def __init__(self, workers: int, capacity_per_worker: int = 2) -> None:
        super().__init__(workers, capacity_per_worker)
        self._queues: list[BoundedQueue[Unit]] = [
            BoundedQueue(capacity_per_worker) for _ in range(workers)
        ]

    def queue_for(self, worker: int) -> BoundedQueue[Unit]:
        return self._queues[worker]

    def close(self) -> None:
        for queue in self._queues:
            queue.close()

    def depth(self) -> int:
        return sum(len(queue) for queue in self._queues)


class Broadcast(_PerWorker):
    async def put(self, unit: Unit) -> None:
        extra = self.workers - 1
        if isinstance(unit, Group):
            for batch in unit.claims:
                batch.outstanding += extra
        else:
            if unit.index is None:  # per-position merge keeps each input's outputs together
                unit = Chunk(unit.batch, unit.items, index=unit.positions(), simple=unit.simple)
            unit.batch.outstanding += extra
        for queue in self._queues:
            await queue.put(unit)


class Partition(_PerWorker):
    def __init__(self, workers: int, key: KeyFunction, capacity_per_worker: int = 2) -> None:
        super().__init__(workers, capacity_per_worker)
        self.key = key

    async def put(self, unit: Unit) -> None:
        workers = self.workers
        if isinstance(unit, Group):
            await self._queues[hash(unit.key) % workers].put(unit)
            return
        key = self.key
        items: list[list[Entry]] = [[] for _ in range(workers)]
        index: list[list[int]] = [[] for _ in range(workers)]
        for position, entry in zip(unit.positions(), unit.items):
            if entry is None:
                continue
            first = entry if isinstance(entry, Message) else entry[0] if entry else None
            if first is None:
                continue
            target = hash(key(first)) % workers
            items[target].append(entry)
            index[target].append(position)
        pieces = [
            (worker, Chunk(unit.batch, items[worker], index=index[worker], simple=unit.simple))
            for worker in range(workers)
            if items[worker]
        ]
        if not pieces:  # nothing left to route; the empty chunk still closes the batch
            pieces = [(0, Chunk(unit.batch, [], index=[], simple=True))]
        unit.batch.outstanding += len(pieces) - 1
        for worker, piece in pieces:
            await self._queues[worker].put(piece)


def key_function(field: str) -> KeyFunction:
    """``key``: the message key; anything else: that top-level field of a JSON object payload.

    A payload that is not a JSON object, or lacks the field, has the key None — it is still
    processed, all such messages by one worker.
    """
    if field == "key":
        return _message_key
    from streamkit.formats.jsonl import loads  # orjson, json's semantics; only when asked for

    def json_field(message: Message) -> Hashable:
        try:
            document = loads(message.payload)
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        value = document.get(field)
        if isinstance(value, (dict, list)):
            return json.dumps(value, sort_keys=True)
        result: Hashable = value
        return result

    return json_field


def _message_key(message: Message) -> Hashable:
    return message.key


def make_dispatch(
    mode: str, workers: int, key: KeyFunction | None = None, capacity_per_worker: int = 2
) -> Dispatch:
    if mode == "round-robin":
        return RoundRobin(workers, capacity_per_worker)
    if mode == "broadcast":
        return Broadcast(workers, capacity_per_worker)
    if mode == "partition":
        if key is None:
            raise ValueError("partition dispatch needs a key function")
        return Partition(workers, key, capacity_per_worker)
    raise ValueError(f"unknown dispatch {mode!r}; use {', '.join(DISPATCH_MODES)}")
