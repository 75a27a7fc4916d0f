"""The whole-file scan behind ``verify`` and ``stat``: every frame decoded, every CRC and
beacon checked, the fields the CRC does not cover checked too (``formats/ss_check.py``), and a
damaged header told apart from damaged frames. I/O on one file; the CLI prints the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from streamkit.backends.file.reader import SsFileReader
from streamkit.errors import FileFormatError
from streamkit.formats.crc16 import CRC16_INIT, crc16, crc16_calc, word_table
from streamkit.formats.ss import HEADER_SIZE, Beacon, FileHeader, Item, is_eos
from streamkit.formats.ss_check import (
    SequenceChecker,
    beacon_candidates,
    decodes_cleanly,
    with_interval,
)
from streamkit.message import INTERNAL_KEY, Message
from streamkit.timeutil import format_ms

__all__ = ["ProgressSink", "Report", "check_header_interval", "verify_file"]


class ProgressSink(Protocol):
    """Where the scan reports its progress (a bar on a terminal)."""

    def to(self, done: int) -> None: ...

    def close(self) -> None: ...


class _NoProgress:
    def to(self, done: int) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class _Stream:
    count: int = 0
    min_seq: int = 0
    max_seq: int = 0
    max_ts: int = 0
    min_ts: int = 0
    running: int = CRC16_INIT


@dataclass
class Report:
    path: str
    size: int
    header: FileHeader | None = None
    messages: int = 0
    payload_bytes: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    beacons: int = 0
    eos_at: int | None = None
    good_end: int = HEADER_SIZE
    """The byte after the last good message (EOS included): where a repair cuts."""
    streams: dict[tuple[str, int], _Stream] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    damage: FileFormatError | None = None
    header_damaged: bool = False
    """The header disagrees with the file (its beacon interval): repair must not cut there."""

    def lines(self) -> list[str]:
        out = [f"file: {self.path} ({self.size} bytes)"]
        if self.header is not None:
            h = self.header
            out.append(
                f"header: name {h.file_name!r}, created {format_ms(h.created_at)}, "
                f"beacon interval {h.beacon_interval}"
            )
        out.append(f"messages: {self.messages} ({self.payload_bytes} payload bytes)")
        if self.first_ts is not None and self.last_ts is not None:
            out.append(f"time range: {format_ms(self.first_ts)} .. {format_ms(self.last_ts)}")
        if self.size == 0:
            out.append("empty file: no header and no messages yet (an appender writes the header)")
        streams = {ks: s for ks, s in self.streams.items() if ks[0] != INTERNAL_KEY}
        out.append(f"streams: {len(streams)}")
        for (key, shard), s in sorted(streams.items()):
            out.append(f"  {key} shard {shard}: {s.count} messages, seq {s.min_seq}..{s.max_seq}")
        out.append(f"beacons: {self.beacons}")
        if self.eos_at is not None:
            out.append(f"end: EOS at byte {self.eos_at}")
        elif self.damage is None and self.size:
            out.append("end: no EOS (the writer has not closed the file cleanly, or still writes)")
        if self.warnings:
            out.append(f"warnings: {len(self.warnings)} (on stderr)")
        out.append("damaged" if self.damage is not None else "ok")
        return out


_TABLE_AFTER = 8192
"""Messages checked before the running checksums switch to ``word_table()``: building its 65,536
entries costs about as much as feeding this many words to ``crc16_calc`` one call each, so a
small file (most ``stat`` and ``verify`` runs) never pays for it and a big one still gets the
single-lookup update. Both give the same checksum (``T[r ^ w]`` is ``r`` fed the word ``w``)."""


class _Checker:
    def __init__(self, report: Report) -> None:
        self.report = report
        self.table: list[int] | None = None
        self.seen = 0

    def add(self, items: list[Item], last_start: int) -> None:
        report = self.report
        streams = report.streams
        table = self.table
        if table is None and self.seen >= _TABLE_AFTER:
            table = self.table = word_table()
        self.seen += len(items)
        for item in items:
            if isinstance(item, Message):
                if is_eos(item):
                    report.eos_at = last_start  # EOS is the last message a decoder returns
                ts = item.timestamp
                s = streams.get((item.stream_key, item.shard_id))
                if s is None:
                    s = streams[(item.stream_key, item.shard_id)] = _Stream(
                        min_seq=item.seq, max_seq=item.seq, max_ts=ts, min_ts=ts
                    )
                s.count += 1
                s.min_seq = min(s.min_seq, item.seq)
                s.max_seq = max(s.max_seq, item.seq)
                s.max_ts = max(s.max_ts, ts)
                s.min_ts = min(s.min_ts, ts)
                frame_crc = crc16(item.payload) if item.payload else 0xFFFF
                if table is not None:
                    s.running = table[s.running ^ frame_crc]
                else:
                    s.running = crc16_calc(frame_crc.to_bytes(2, "big"), s.running)
                if is_eos(item):
                    continue
                report.messages += 1
                report.payload_bytes += len(item.payload)
                if report.first_ts is None or ts < report.first_ts:
                    report.first_ts = ts
                if report.last_ts is None or ts > report.last_ts:
                    report.last_ts = ts
            elif isinstance(item, Beacon):
                report.beacons += 1
                self.check_markers(item)
            elif isinstance(item, FileHeader):
                report.header = item

    def check_markers(self, beacon: Beacon) -> None:
        for m in beacon.markers:
            s = self.report.streams.get((m.stream_key, m.shard_id))
            where = f"beacon {beacon.index} at byte {beacon.offset}"
            if s is None:
                continue  # SequenceChecker names a marker for a stream no message has
            if (m.seq, m.timestamp, m.running_checksum) != (s.max_seq, s.max_ts, s.running):
                self.report.warnings.append(
                    f"{where}: marker for {m.stream_key}:{m.shard_id} says seq {m.seq}, "
                    f"ts {m.timestamp}, running checksum {m.running_checksum:#06x}; the frames "
                    f"say seq {s.max_seq}, ts {s.max_ts}, running checksum {s.running:#06x}"
                )


def verify_file(path: str, progress: ProgressSink | None = None) -> Report:
    """Check a whole file; damage is recorded in ``report.damage``, not raised.

    ``progress``: told the bytes read after each chunk (the CLI's bar, ``cli/progress.py``).
    """
    reader = SsFileReader(path)
    report = Report(path, reader.size())
    bar = progress if progress is not None else _NoProgress()
    checker = _Checker(report)
    fields: SequenceChecker | None = None
    position = 0
    try:
        if reader.size() == 0:
            report.good_end = 0  # an empty file: nothing to check (docs/file-format.md)
            return report
        while True:
            try:
                items = reader.read_items(4096)
            except FileFormatError as exc:
                report.damage = exc
                break
            if not items:
                break
            decoder = reader.decoder
            if decoder.last_message_end > 0:
                report.good_end = decoder.last_message_end
            checker.add(items, decoder.last_message_start)
            if fields is None and report.header is not None:
                fields = SequenceChecker(report.header.beacon_interval)
            if fields is not None:
                position = fields.add(items, position)
            bar.to(reader.bytes_read)
        bar.close()
        if fields is not None:
            report.warnings.extend(fields.warnings)
            if fields.dropped:
                report.warnings.append(f"... and {fields.dropped} more like these")
        decoder = reader.decoder
        if decoder.ended and report.damage is None and decoder.tell() < report.size:
            extra = report.size - decoder.tell()
            report.damage = FileFormatError(
                f"{extra} bytes follow the end-of-stream frame; readers stop at EOS and never "
                "see them",
                f"{path} at byte {decoder.tell()}",
                offset=decoder.tell(),
            )
        if report.header is None:
            report.good_end = 0
        elif report.damage is not None:
            wrong = check_header_interval(path, report)
            if wrong is not None:
                report.damage = wrong
                report.header_damaged = True
        return report
    finally:
        bar.close()
        reader.close()


_SCAN = 16 << 20
"""How far past the first damage ``check_header_interval`` looks for the file's first beacon."""
_TRIALS = 50


def check_header_interval(path: str, report: Report) -> FileFormatError | None:
    """Damage that is really a damaged header: the beacons sit at another interval.

    A wrong interval in the header makes the decoder expect beacons where frames are (or frames
    where beacons are), so the "damage" is at the first beacon offset, and a repair would cut
    everything after it. The file's own first beacon gives its true interval: look for beacons
    after the damage, and accept an interval when the file decodes cleanly past the damage
    with it.
    """
    header, damage = report.header, report.damage
    if header is None or damage is None or damage.offset is None:
        return None
    interval = header.beacon_interval
    start = max(report.good_end, HEADER_SIZE)  # where the first damaged item starts
    trials = 0
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
        f.seek(start)
        window = f.read(min(_SCAN, report.size - start))
        for p, beacon in beacon_candidates(window, start, start):
            if p == interval or p > report.size:
                continue
            trials += 1
            if trials > _TRIALS:
                break
            end = min(report.size, max(p, start) + 2 * p + 65536)
            f.seek(HEADER_SIZE)
            data = with_interval(head, header, p) + f.read(end - HEADER_SIZE)
            reached = decodes_cleanly(data, complete=end == report.size)
            if reached > start and reached >= min(end, p + beacon.size):
                field_at = 12 + len(header.file_name.encode("utf-8"))
                return FileFormatError(
                    f"the header says beacon interval {interval}, but the beacons in the file "
                    f"are at {p} (the first at byte {p}; read with interval {p} the file "
                    f"decodes cleanly past byte {start}, where the header's interval "
                    "fails): the header is damaged",
                    f"{path} at byte {field_at}",
                    offset=field_at,
                )
    return None
