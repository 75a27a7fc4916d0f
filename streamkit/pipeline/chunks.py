"""Units of work that travel through the pipeline: batches of messages with their input positions.

Queues move chunks, not messages, so the per-message cost of the pipeline is a few list
operations. Every source batch becomes a ``SourceBatch`` (numbered in read order); the chunks
cut from it remember where their messages sat in it (``start`` for a contiguous run, ``index``
for scattered positions after a partition split). Those positions are what lets the resequencer
put results back in input order, and ``outstanding`` (how many units still hold a part of the
batch) is what tells it — and the commit logic — that a batch is finished.

An entry of ``Chunk.items`` is what one input position has produced so far: one Message (the
common case, ``simple`` chunks contain only those), a list (fan-out), or None (dropped).
"""

from __future__ import annotations

from collections.abc import Hashable

from streamkit.message import Message

__all__ = ["Chunk", "Entry", "Group", "SourceBatch", "flatten"]

Entry = Message | list[Message] | None


class SourceBatch:
    """One batch as read from the source consumer."""

    __slots__ = ("number", "outputs", "outstanding", "parts", "read_at", "slots", "sources")

    def __init__(self, number: int, sources: list[Message], read_at: float) -> None:
        self.number = number
        self.sources = sources
        self.read_at = read_at
        self.outstanding = 1
        self.parts: list[tuple[int, list[Entry], bool]] = []
        """Ordered mode: entries of contiguous runs, as (start, entries, simple).

        Entries, not flattened outputs, so a failure can cut the batch at an input position."""
        self.slots: list[list[Message]] | None = None
        """Ordered mode: outputs per input position, once a scattered part arrived."""
        self.outputs: list[Message] = []
        """Ordered mode: the outputs in input order, once complete."""

    def __len__(self) -> int:
        return len(self.sources)

    def add_run(self, start: int, entries: list[Entry], simple: bool) -> None:
        self.parts.append((start, entries, simple))

    def add_scattered(self, index: list[int], entries: list[Entry]) -> None:
        slots = self.slots
        if slots is None:
            slots = self.slots = [[] for _ in range(len(self.sources))]
        for position, entry in zip(index, entries):
            if entry is None:
                continue
            if isinstance(entry, Message):
                slots[position].append(entry)
            else:
                slots[position].extend(entry)

    def assemble(self, limit: int | None = None) -> list[Message]:
        """All outputs in input order (ordered mode, once ``outstanding`` is 0).

        ``limit``: only the outputs of input positions before it (the first failing message).
        """
        parts = self.parts
        if self.slots is None and limit is None:
            if len(parts) == 1:
                _, entries, simple = parts[0]
                return entries if simple else flatten(entries)  # type: ignore[return-value]
            parts.sort(key=_start)
            out: list[Message] = []
            for _, entries, simple in parts:
                out.extend(entries if simple else flatten(entries))  # type: ignore[arg-type]
            return out
        slots = self.slots
        if slots is None:
            slots = [[] for _ in range(len(self.sources))]
        for start, entries, _ in parts:  # runs and scattered parts mixed: a run sits at its start
            for position, entry in enumerate(entries, start):
                if entry is None:
                    continue
                if isinstance(entry, Message):
                    slots[position].append(entry)
                else:
                    slots[position].extend(entry)
        if limit is not None:
            slots = slots[:limit]
        return [message for slot in slots for message in slot]


def _start(part: tuple[int, list[Entry], bool]) -> int:
    return part[0]


class Chunk:
    """A piece of one source batch on its way through the stages."""

    __slots__ = ("batch", "index", "items", "simple", "start")

    def __init__(
        self,
        batch: SourceBatch,
        items: list[Entry],
        *,
        start: int = 0,
        index: list[int] | None = None,
        simple: bool = True,
    ) -> None:
        self.batch = batch
        self.items = items
        self.start = start
        self.index = index
        self.simple = simple

    def __len__(self) -> int:
        return len(self.items)

    def positions(self) -> list[int]:
        if self.index is not None:
            return self.index
        return list(range(self.start, self.start + len(self.items)))


class Group:
    """Messages collected by the batcher for one call of a batch handler.

    A group can span several source batches; it holds one ``outstanding`` count on each batch in
    ``claims``. Its result belongs to the input position of its last message; a failure of the
    call counts as a failure at its first message (``first``).
    """

    __slots__ = ("claims", "deadline", "first", "key", "last", "messages")

    def __init__(self, key: Hashable, deadline: float | None) -> None:
        self.key = key
        self.deadline = deadline
        self.messages: list[Message] = []
        self.claims: list[SourceBatch] = []
        self.first: tuple[SourceBatch, int] | None = None
        self.last: tuple[SourceBatch, int] | None = None

    def __len__(self) -> int:
        return len(self.messages)


def flatten(entries: list[Entry]) -> list[Message]:
    """The messages of a list of entries, in order (fan-out lists spliced, drops left out)."""
    out: list[Message] = []
    for entry in entries:
        if entry is None:
            continue
        if isinstance(entry, Message):
            out.append(entry)
        else:
            out.extend(entry)
    return out
