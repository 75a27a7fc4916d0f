"""The end of the stages: results back in input order (or not), ready for the sink.

Ordered mode holds each source batch until every piece of it is back, then releases finished
batches strictly by batch number: workers may finish out of order, the sink never sees it. The
buffer is bounded because the source may only have ``window`` batches in flight
(``flow.Window``), and its depth (finished batches waiting for an earlier one) is reported.

Unordered mode passes each piece's outputs on as soon as it arrives; a worker's pieces still
arrive in the order it handled them, which is what keeps one partition key in order.

Either way a batch is reported as *done* once all its outputs are in the outbox, so the sink can
commit sources only after their outputs were written.

A failure under the ``fail`` policy sets a *cut*: the input position (batch number, position in
the batch) of the earliest failing message seen so far. Ordered mode releases batch N only once
every part of it went through every stage, so by then every failure at or before batch N has
been recorded: outputs before the cut are released, nothing at or after it. Unordered mode
filters what arrives after the cut was set; outputs that were posted before a failure was seen
stay posted (docs/processor.md says so).
"""

from __future__ import annotations

import asyncio
import collections

from streamkit.message import Message
from streamkit.pipeline.chunks import Chunk, Entry, Group, SourceBatch, flatten
from streamkit.pipeline.queues import QueueClosed

__all__ = ["Collector"]


class Collector:
    """Receives final results from the last stage; the sink ``take``s them in write order."""

    def __init__(self, *, ordered: bool) -> None:
        self.ordered = ordered
        self._waiting: dict[int, SourceBatch] = {}
        self._next = 0
        self._outbox: collections.deque[tuple[list[Message], list[SourceBatch]]] = (
            collections.deque()
        )
        self._ready = asyncio.Event()
        self._finished = False
        self.cut: tuple[int, int] | None = None
        """(batch number, position): the earliest failing input position, once one failed."""

    def cut_at(self, number: int, position: int) -> bool:
        """Nothing from input position (``number``, ``position``) on is written; True if that
        moved the cut earlier (the failure there is now the first one)."""
        if self.cut is not None and self.cut <= (number, position):
            return False
        self.cut = (number, position)
        return True

    def after_cut(self, number: int) -> bool:
        """Whether all of batch ``number`` lies after the cut (no need to process it)."""
        return self.cut is not None and number > self.cut[0]

    @property
    def depth(self) -> int:
        """Finished batches held back until an earlier batch finishes (ordered mode)."""
        return len(self._waiting)

    @property
    def pending_outputs(self) -> int:
        return len(self._outbox)

    def put_chunk(self, chunk: Chunk, entries: list[Entry], simple: bool) -> None:
        """The final entries of ``chunk`` (aligned with its positions)."""
        batch = chunk.batch
        if self.ordered:
            if chunk.index is None:
                batch.add_run(chunk.start, entries, simple)
            else:
                batch.add_scattered(chunk.index, entries)
        else:
            cut = self.cut
            if cut is not None and batch.number >= cut[0]:
                limit = cut[1] if batch.number == cut[0] else 0
                entries = [e for p, e in zip(chunk.positions(), entries) if p < limit]
                simple = False
            outputs = _messages(entries, simple)
            if outputs:
                self._post(outputs, [])
        self.release(batch)

    def put_group(self, group: Group, entry: Entry) -> None:
        """The result of one batch-handler call; it sits at the group's last input position."""
        cut, last = self.cut, group.last
        if not self.ordered and cut is not None and last and (last[0].number, last[1]) >= cut:
            entry = None
        if entry is not None:
            if self.ordered:
                assert group.last is not None
                batch, position = group.last
                batch.add_scattered([position], [entry])
            else:
                self._post(flatten([entry]), [])
        for batch in group.claims:
            self.release(batch)

    def release(self, batch: SourceBatch) -> None:
        """One unit holding part of ``batch`` is finished."""
        batch.outstanding -= 1
        if batch.outstanding:
            return
        if not self.ordered:
            self._post([], [batch])
            return
        cut = self.cut
        if cut is None or batch.number < cut[0]:
            batch.outputs = batch.assemble()
        elif batch.number == cut[0]:
            batch.outputs = batch.assemble(cut[1])
        else:
            batch.outputs = []
        batch.parts = []
        batch.slots = None
        if batch.number != self._next:
            self._waiting[batch.number] = batch
            return
        self._post_in_order(batch)
        self._next += 1
        waiting = self._waiting
        while self._next in waiting:
            self._post_in_order(waiting.pop(self._next))
            self._next += 1

    def _post_in_order(self, batch: SourceBatch) -> None:
        # the cut may have moved to an earlier batch since this one was assembled
        self._post([] if self.after_cut(batch.number) else batch.outputs, [batch])

    def finish(self) -> None:
        """No more results will come; ``take`` drains the outbox, then raises QueueClosed."""
        self._finished = True
        self._ready.set()

    async def take(self) -> tuple[list[Message], list[SourceBatch]]:
        """Everything ready so far as one write: outputs, and the batches they complete."""
        while not self._outbox:
            if self._finished:
                raise QueueClosed
            self._ready.clear()
            await self._ready.wait()
        outbox = self._outbox
        if len(outbox) == 1:
            return outbox.popleft()
        outputs: list[Message] = []
        done: list[SourceBatch] = []
        while outbox:
            more, finished = outbox.popleft()
            outputs.extend(more)
            done.extend(finished)
        return outputs, done

    def _post(self, outputs: list[Message], done: list[SourceBatch]) -> None:
        self._outbox.append((outputs, done))
        self._ready.set()


def _messages(entries: list[Entry], simple: bool) -> list[Message]:
    if simple:
        return entries  # type: ignore[return-value]  # all entries are Messages
    return flatten(entries)
