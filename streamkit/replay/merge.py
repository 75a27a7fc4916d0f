"""The k-way merge behind ``join``, sans I/O: batches in, merged runs out.

Each input is expected in timestamp order (a recording, a Redis stream, one Kafka partition).
An input's last delivered timestamp is then a lower bound for everything it will still
deliver, so every buffered message older than the smallest such bound (over the inputs still
waited for) is safe to emit: nothing can come before it any more. ``take`` returns all of
those at once, sorted, so the per-message work is one C-level sort of a few presorted runs.

Order of the output: timestamp, then stream key, then input order (the order the inputs were
given), then the order within an input. An input that has ended no longer bounds anything; an
input marked ``silent`` (the async ``Join`` does that after ``max_lateness`` without a batch)
is not waited for until it delivers again. A message older than what was already emitted is
*late*: with ``late="deliver"`` it goes out with the next run (counted in ``late``), with
``late="drop"`` it is counted in ``dropped`` and left out, so the output stays sorted.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from itertools import chain
from operator import attrgetter

from streamkit.message import Message

__all__ = ["LATE_POLICIES", "Merger"]

LATE_POLICIES = ("deliver", "drop")

_TS = attrgetter("timestamp")
_KEY = attrgetter("stream_key")
_TS_KEY = attrgetter("timestamp", "stream_key")
_MIXED = ""
"""``_Input.key`` once an input has delivered more than one stream key (keys are never empty)."""


class _Input:
    """One input's buffered messages: a queue of the batches it delivered."""

    __slots__ = (
        "declared",
        "ended",
        "index",
        "key",
        "last_ts",
        "pending",
        "pos",
        "segments",
        "silent",
    )

    def __init__(self, index: int, declared: str | None) -> None:
        self.index = index
        self.declared = declared
        """The one stream key this input can deliver, when the caller knows it."""
        self.segments: deque[Sequence[Message]] = deque()
        self.pos = 0
        """Messages of ``segments[0]`` already taken."""
        self.pending = 0
        self.last_ts: int | None = None
        self.ended = False
        self.silent = False
        self.key: str | None = None
        """The one stream key this input has delivered so far, or ``_MIXED``."""

    def take_below(self, bound: float) -> list[Sequence[Message]]:
        """Remove and return the buffered messages older than ``bound`` (a prefix)."""
        parts: list[Sequence[Message]] = []
        segments = self.segments
        while segments:
            segment = segments[0]
            pos = self.pos
            if segment[-1].timestamp < bound:
                parts.append(segment[pos:] if pos else segment)
                self.pending -= len(segment) - pos
                segments.popleft()
                self.pos = 0
                continue
            end = bisect_left(segment, bound, pos, key=_TS)
            if end > pos:
                parts.append(segment[pos:end])
                self.pending -= end - pos
                self.pos = end
            break
        return parts


class Merger:
    """Merge batches from ``inputs`` inputs into one timestamp-ordered sequence."""

    def __init__(
        self, inputs: int, *, late: str = "deliver", keys: Sequence[str | None] | None = None
    ) -> None:
        if late not in LATE_POLICIES:
            raise ValueError(f"late must be one of {LATE_POLICIES}, not {late!r}")
        declared = list(keys) if keys is not None else [None] * inputs
        if len(declared) != inputs:
            raise ValueError(f"{len(declared)} keys for {inputs} inputs")
        self._inputs = [_Input(i, declared[i]) for i in range(inputs)]
        self._drop_late = late == "drop"
        self.watermark = -math.inf
        """The newest timestamp emitted so far."""
        self.late = 0
        """Messages emitted although older than the watermark (``late="deliver"``)."""
        self.dropped = 0
        """Messages left out because they were older than the watermark (``late="drop"``)."""
        self.emitted = 0

    def push(self, index: int, batch: Sequence[Message]) -> None:
        """Input ``index`` delivered ``batch`` (in its own order). The input is heard again."""
        if not batch:
            return
        entry = self._inputs[index]
        if entry.ended:
            raise ValueError(f"input {index} already ended")
        entry.segments.append(batch)
        entry.pending += len(batch)
        entry.last_ts = batch[-1].timestamp
        entry.silent = False
        if entry.key != _MIXED:
            keys = set(map(_KEY, batch))
            if entry.declared is not None and keys != {entry.declared}:
                entry.declared = None  # not what the caller said: no longer trusted
            if entry.key is not None:
                keys.add(entry.key)
            entry.key = keys.pop() if len(keys) == 1 else _MIXED

    def end(self, index: int) -> None:
        """Input ``index`` will deliver nothing more; what it buffered is still emitted."""
        self._inputs[index].ended = True

    def silence(self, index: int) -> None:
        """Stop waiting for input ``index`` until it delivers again."""
        self._inputs[index].silent = True

    def pending(self, index: int) -> int:
        return self._inputs[index].pending

    def is_silent(self, index: int) -> bool:
        return self._inputs[index].silent

    @property
    def buffered(self) -> int:
        return sum(entry.pending for entry in self._inputs)

    @property
    def finished(self) -> bool:
        """Every input ended and everything was emitted."""
        return all(entry.ended and not entry.pending for entry in self._inputs)

    def _bound(self) -> float:
        """Messages older than this are safe to emit; -inf while a waited-for input said nothing."""
        bound = math.inf
        for entry in self._inputs:
            if entry.ended or entry.silent:
                continue
            if entry.last_ts is None:
                return -math.inf
            if entry.last_ts < bound:
                bound = entry.last_ts
        return bound

    def _tie_limit(self, bound: float) -> tuple[str, int] | None:
        """Which messages AT the bound are safe too: those sorting before every future one.

        An input at the bound may still deliver messages with that very timestamp. When each
        such input declared its one stream key, its future messages sort at (key, index) or
        later, so buffered messages at the bound up to the smallest of those are safe. Without
        this, a quiet input's newest message would wait until it delivers something newer.
        """
        limit: tuple[str, int] | None = None
        for entry in self._inputs:
            if entry.ended or entry.silent or entry.last_ts != bound:
                continue
            if entry.declared is None:
                return None
            mark = (entry.declared, entry.index)
            if limit is None or mark < limit:
                limit = mark
        return limit

    def blocking(self) -> list[int]:
        """The inputs whose silence holds output back (those at the bound), in input order.

        Empty when nothing is buffered or nothing holds it back.
        """
        if not self.buffered:
            return []
        bound = self._bound()
        return [
            entry.index
            for entry in self._inputs
            if not entry.ended
            and not entry.silent
            and (entry.last_ts is None or entry.last_ts <= bound)
        ]

    def take(self) -> list[Message]:
        """Remove and return every message that is safe to emit now, in output order."""
        bound = self._bound()
        if bound == -math.inf:
            return []
        limit = self._tie_limit(bound) if bound != math.inf else None
        if bound < self.watermark:
            # Older than what was already emitted: late whatever happens, so out at once.
            bound, limit = self.watermark, None
        parts: list[Sequence[Message]] = []
        keys: list[str] = []
        for entry in self._inputs:
            if entry.pending:
                below = bound
                if limit is not None and entry.key and (entry.key, entry.index) <= limit:
                    below = bound + 1  # integer timestamps: everything AT the bound too
                taken = entry.take_below(below)
                if taken:
                    parts.extend(taken)
                    keys.extend([entry.key or _MIXED] * len(taken))
        if not parts:
            return []
        if _MIXED not in keys:
            # One stream key per input: ordering the runs by (key, input) and sorting stably by
            # timestamp alone gives the documented tie order without a tuple per message.
            if len(set(keys)) > 1:
                order = sorted(range(len(parts)), key=keys.__getitem__)
                parts = [parts[i] for i in order]
            window = list(chain.from_iterable(parts)) if len(parts) > 1 else list(parts[0])
            window.sort(key=_TS)
        else:
            window = list(chain.from_iterable(parts))
            window.sort(key=_TS_KEY)
        if window[0].timestamp < self.watermark:
            cut = bisect_left(window, self.watermark, key=_TS)
            if self._drop_late:
                self.dropped += cut
                del window[:cut]
            else:
                self.late += cut
        if window:
            last = window[-1].timestamp
            if last > self.watermark:
                self.watermark = last
            self.emitted += len(window)
        return window
