"""Checks of a ``.ss`` file beyond what its checksums cover -- sans-IO, for ``streamkit verify``.

The CRC of a frame covers its payload only. A damaged header interval, or a damaged seq,
timestamp or shard field, decodes without a checksum error; these functions look at what the
decoder returns (or at raw bytes handed to them) and say what disagrees. ``verify`` reads the
file and reports their findings; nothing here opens a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from streamkit.errors import FileFormatError
from streamkit.formats.ss import (
    HEADER_SIZE,
    MIN_BEACON_INTERVAL,
    Beacon,
    FileHeader,
    Item,
    SsDecoder,
    encode_header,
    num_markers,
    parse_beacon,
)
from streamkit.message import INTERNAL_KEY, Message
from streamkit.timeutil import format_ms

__all__ = ["SequenceChecker", "beacon_candidates", "decodes_cleanly", "with_interval"]

_KEY = re.compile(rb"[A-Za-z0-9._-]+")


def beacon_candidates(window: bytes, offset: int, start: int) -> Iterable[tuple[int, Beacon]]:
    """Offsets ``p >= start`` in ``window`` (which begins at absolute ``offset``) where a beacon
    of a file with interval ``p`` could start -- the first beacon of a file is at its interval.

    A cheap byte test (lead 0x0D, ``remaining`` below ``p``, a marker count that fits, a valid
    first key) throws out the frame trailers that also hold 0x0D before a full parse.
    """
    j = max(start - offset, 0)
    end = len(window)
    while True:
        j = window.find(b"\r", j)
        if j < 0 or j + 7 > end:
            return
        p = offset + j
        if p >= MIN_BEACON_INTERVAL + 0 and p >= HEADER_SIZE:
            remaining = int.from_bytes(window[j + 1 : j + 5], "big")
            count = window[j + 5]
            if remaining < p and count <= num_markers(p):
                first = window[j + 6]
                if (count == 0 and first == 13) or (
                    count > 0 and first > 0 and _KEY.fullmatch(window[j + 7 : j + 7 + first])
                ):
                    try:
                        beacon = parse_beacon(
                            window[j:], p, FileHeader("", 0, p), source="<candidate>"
                        )
                    except FileFormatError:
                        beacon = None
                    if beacon is not None:
                        yield p, beacon
        j += 1


def with_interval(header_bytes: bytes, header: FileHeader, interval: int) -> bytes:
    """The 128 header bytes with the beacon interval replaced (name and time kept)."""
    return encode_header(header.file_name, header.created_at, interval)[:HEADER_SIZE]


def decodes_cleanly(data: bytes, *, complete: bool) -> int:
    """How far ``data`` (a file's first bytes, header included) decodes without damage: where
    the first damaged item starts (not the offset its error names, which can lie further on),
    or ``len(data)`` (``complete``: the data is the whole file, so a cut-off end is damage)."""
    decoder = SsDecoder(source="<check>")
    decoder.feed(data)
    if complete:
        decoder.eof()
    try:
        while decoder.read(65536):
            pass
    except FileFormatError:
        return decoder.tell()
    return len(data) if not decoder.ended else decoder.tell()


class _Stream:
    __slots__ = ("before_ts", "last", "marker_ts", "offset", "seq", "steps")

    def __init__(self, seq: int, offset: int) -> None:
        self.seq = seq
        self.offset = offset
        self.last: tuple[Message, int] | None = None
        """The stream's latest message and its offset; ``before_ts``: the timestamp before it."""
        self.before_ts: int | None = None
        self.steps = 0
        """Steps of exactly +1 so far; -1 once the stream had a gap (gaps are its habit)."""
        self.marker_ts: int | None = None
        """The timestamp the latest beacon's marker holds for this stream (its highest so far)."""


class SequenceChecker:
    """What a frame's CRC does not cover: seq, timestamp, key and shard fields, per stream.

    Feed the decoder's items in file order (``add``); ``warnings`` collects one line per finding,
    each naming the message and its byte offset. None of these is damage SeaStreamer would
    refuse (``verify`` still exits 0), but each is what a flipped bit in an uncovered field
    looks like:

    * **seq continuity** per (key, shard): a seq that does not grow (a repeat or a step back);
      a jump in a stream numbered 1, 2, 3 … so far (streams with gaps from the start, such as
      Redis-derived seqs, are not held to this);
    * **timestamps within the neighbouring beacons' range**: not after what the next beacon's
      marker holds for its stream (markers hold the highest timestamp so far), and not more than
      ``max_skew`` ms before what the previous beacon's marker held;
    * **key and shard against the markers**: a beacon that has room for every stream lists
      every stream seen so far, so a message whose (key, shard) is missing there has a damaged
      key or shard; a marker for a (key, shard) no message before it has is the other side.
    """

    def __init__(
        self, interval: int, *, max_skew: int = 24 * 3600 * 1000, limit: int = 100
    ) -> None:
        self.capacity = num_markers(interval)
        self.max_skew = max_skew
        self.limit = limit
        self.warnings: list[str] = []
        self.dropped = 0
        """Warnings beyond ``limit``, counted but not kept."""
        self._streams: dict[tuple[str, int], _Stream] = {}
        self._pending: list[tuple[Message, int]] = []

    def warn(self, text: str) -> None:
        if len(self.warnings) < self.limit:
            self.warnings.append(text)
        else:
            self.dropped += 1

    def add(self, items: Iterable[Item], start: int) -> int:
        """Items in file order, decoded from absolute offset ``start``; returns where the next
        batch starts. Offsets follow from the sizes: a frame is ``key + payload + 32`` bytes,
        and a beacon that interrupts a frame comes right after that frame's message."""
        pos = start
        for item in items:
            if item.__class__ is Message:
                assert isinstance(item, Message)
                if item.stream_key != INTERNAL_KEY:
                    self.message(item, pos)
                pos += len(item.stream_key) + len(item.payload) + 32
            elif isinstance(item, Beacon):
                self.beacon(item)
                pos += item.size
            else:
                pos = HEADER_SIZE
        return pos

    def message(self, m: Message, offset: int) -> None:
        key = (m.stream_key, m.shard_id)
        s = self._streams.get(key)
        if s is None:
            self._streams[key] = s = _Stream(m.seq, offset)
        else:
            step = m.seq - s.seq
            if step <= 0:
                self.warn(
                    f"{_ident(m, offset)}: seq does not grow on its stream (the message before, "
                    f"at byte {s.offset}, has seq {s.seq}); a damaged seq field?"
                )
            elif step == 1:
                if s.steps >= 0:
                    s.steps += 1
            else:
                if s.steps > 0:
                    self.warn(
                        f"{_ident(m, offset)}: seq jumps from {s.seq} (at byte {s.offset}) in a "
                        f"stream numbered one by one so far ({s.steps} steps); a damaged seq field?"
                    )
                s.steps = -1
            if step > 0:
                s.seq = m.seq
                s.offset = offset
        self._outlier(s, m, offset)
        if s.marker_ts is not None and m.timestamp < s.marker_ts - self.max_skew:
            self.warn(
                f"{_ident(m, offset)}: timestamp {format_ms(m.timestamp)} is more than "
                f"{self.max_skew // 3_600_000} h before what the previous beacon holds for its "
                f"stream ({format_ms(s.marker_ts)}); a damaged timestamp field?"
            )
        self._pending.append((m, offset))

    def _outlier(self, s: _Stream, m: Message, offset: int) -> None:
        """A timestamp far from both neighbours in its stream, which agree with each other:
        what a flipped bit does (works without beacons too). Far: more than a second and more
        than 8 times the gap between the neighbours, so a stream's own jitter never counts."""
        last = s.last
        if last is not None and s.before_ts is not None:
            ts = last[0].timestamp
            far = max(1000, 8 * abs(m.timestamp - s.before_ts))
            if abs(ts - s.before_ts) > far and abs(m.timestamp - ts) > far:
                self.warn(
                    f"{_ident(*last)}: timestamp {format_ms(ts)} is far from the messages "
                    f"before and after it in its stream ({format_ms(s.before_ts)}, "
                    f"{format_ms(m.timestamp)}); a damaged timestamp field?"
                )
        s.before_ts = last[0].timestamp if last is not None else None
        s.last = (m, offset)

    def beacon(self, b: Beacon) -> None:
        where = f"beacon {b.index} at byte {b.offset}"
        marked = {(mk.stream_key, mk.shard_id): mk for mk in b.markers}
        complete = len(b.markers) < self.capacity  # room to spare: every stream is listed
        for m, offset in self._pending:
            mk = marked.get((m.stream_key, m.shard_id))
            if mk is None:
                if complete:
                    self.warn(
                        f"{_ident(m, offset)}: {where} lists every stream written so far but not "
                        f"{m.stream_key}:{m.shard_id}; a damaged key or shard field?"
                    )
                continue
            if m.timestamp > mk.timestamp:
                self.warn(
                    f"{_ident(m, offset)}: timestamp {format_ms(m.timestamp)} is after the "
                    f"highest the next beacon ({where}) holds for its stream "
                    f"({format_ms(mk.timestamp)}); a damaged timestamp field?"
                )
            if m.seq > mk.seq:
                self.warn(
                    f"{_ident(m, offset)}: seq is above the highest the next beacon ({where}) "
                    f"holds for its stream ({mk.seq}); a damaged seq field?"
                )
        for key, mk in marked.items():
            s = self._streams.get(key)
            if s is None:
                self.warn(
                    f"{where}: marker for {key[0]}:{key[1]}, but no message before it has that "
                    "key and shard; a damaged key or shard field?"
                )
            else:
                s.marker_ts = mk.timestamp
        self._pending = []


def _ident(m: Message, offset: int) -> str:
    return f"message {m.stream_key}:{m.shard_id}:{m.seq} at byte {offset}"
