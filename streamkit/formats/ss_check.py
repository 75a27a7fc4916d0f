"""Checks of a ``.ss`` file beyond what its checksums cover -- sans-IO, for ``streamkit verify``.

The CRC of a frame covers its payload only. A damaged header interval, or a damaged seq,
timestamp or shard field, decodes without a checksum error; these functions look at what the
decoder returns (or at raw bytes handed to them) and say what disagrees. ``verify`` reads the
file and reports their findings; nothing here opens a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from streamkit.errors import FileFormatError
from streamkit.formats.ss import (
    HEADER_SIZE,
    MIN_BEACON_INTERVAL,
    Beacon,
    FileHeader,
    Item,
    SsDecoder,
    encode_header,
    is_eos,
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


@dataclass
class _Seen:
    seq: int
    timestamp: int
    offset: int


@dataclass
class SequenceChecker:
    """Seq continuity and timestamps against the beacons, per (key, shard).

    Feed it the decoder's items in file order with the offset of each message (``add``);
    ``warnings`` collects one line per finding, each naming the byte offset. What it flags:

    * a seq that does not grow on its (key, shard) (a repeat or a step back), and a jump of more
      than ``max_gap`` (a damaged seq field shows as a huge jump; SeaStreamer's producers number
      1, 2, 3 ... so any gap is unusual, but Redis-derived seqs jump by design: only a jump
      back or a gap wider than ``max_gap`` is reported);
    * a message timestamp outside the range its neighbouring beacons allow: not after the next
      beacon's marker for its stream (markers hold the highest timestamp so far), and not before
      the first timestamp of the previous beacon's interval by more than ``max_skew`` ms;
    * a beacon marker naming a (key, shard) no frame before it has, or claiming a seq or
      timestamp no frame before it reached (what the markers say must come from the frames).
    """

    max_gap: int = 1 << 32
    max_skew: int = 24 * 3600 * 1000
    warnings: list[str] = field(default_factory=list)
    limit: int = 100
    """At most this many warnings are kept; ``dropped`` counts the rest."""
    dropped: int = 0
    _streams: dict[tuple[str, int], _Seen] = field(default_factory=dict)
    _pending: list[tuple[Message, int]] = field(default_factory=list)
    _floor: int | None = None

    def warn(self, text: str) -> None:
        if len(self.warnings) < self.limit:
            self.warnings.append(text)
        else:
            self.dropped += 1

    def message(self, m: Message, offset: int) -> None:
        if m.stream_key == INTERNAL_KEY or is_eos(m):
            return
        stream = (m.stream_key, m.shard_id)
        ident = f"message {m.stream_key}:{m.shard_id}:{m.seq} at byte {offset}"
        seen = self._streams.get(stream)
        if seen is not None:
            if m.seq <= seen.seq:
                self.warn(
                    f"{ident}: seq does not grow on its stream (the one before, at byte "
                    f"{seen.offset}, has seq {seen.seq})"
                )
            elif m.seq - seen.seq > self.max_gap:
                self.warn(
                    f"{ident}: seq jumps by {m.seq - seen.seq} from {seen.seq} (at byte "
                    f"{seen.offset}); a damaged seq field?"
                )
        if self._floor is not None and m.timestamp < self._floor - self.max_skew:
            self.warn(
                f"{ident}: timestamp {format_ms(m.timestamp)} is far before the messages of the "
                f"previous beacon interval (from {format_ms(self._floor)}); a damaged "
                "timestamp field?"
            )
        if seen is None or m.seq > seen.seq:
            self._streams[stream] = _Seen(
                m.seq, max(m.timestamp, seen.timestamp if seen else 0), offset
            )
        self._pending.append((m, offset))

    def beacon(self, b: Beacon) -> None:
        where = f"beacon {b.index} at byte {b.offset}"
        marked = {(mk.stream_key, mk.shard_id): mk for mk in b.markers}
        for m, offset in self._pending:
            mk = marked.get((m.stream_key, m.shard_id))
            if mk is not None and m.timestamp > mk.timestamp:
                self.warn(
                    f"message {m.stream_key}:{m.shard_id}:{m.seq} at byte {offset}: timestamp "
                    f"{format_ms(m.timestamp)} is after what the next beacon ({where}) holds "
                    f"for its stream ({format_ms(mk.timestamp)}); a damaged timestamp field?"
                )
            if mk is not None and m.seq > mk.seq:
                self.warn(
                    f"message {m.stream_key}:{m.shard_id}:{m.seq} at byte {offset}: seq is above "
                    f"what the next beacon ({where}) holds for its stream ({mk.seq}); a damaged "
                    "seq field?"
                )
        for key, shard in marked:
            if (key, shard) not in self._streams:
                self.warn(
                    f"{where}: marker for {key}:{shard}, but no message before it has that "
                    "stream and shard (a damaged key or shard field?)"
                )
        stamps = [m.timestamp for m, _ in self._pending]
        if stamps:
            self._floor = min(stamps)
        self._pending = []

    def add(self, items: list[Item], start: int) -> int:
        """Items in file order, decoded from absolute offset ``start``; returns where the next
        batch starts. Offsets follow from the sizes: a frame is ``key + payload + 32`` bytes and a
        beacon that interrupts a frame comes right after that frame's message."""
        pos = start
        for item in items:
            if isinstance(item, Message):
                self.message(item, pos)
                pos += len(item.stream_key) + len(item.payload) + 32
            elif isinstance(item, Beacon):
                self.beacon(item)
                pos += item.size
            else:
                pos = HEADER_SIZE
        return pos
