"""``streamkit verify FILE [--repair]``: check every frame, beacon and checksum of a ``.ss`` file.

Checked: the header; every frame's CRC, trailer and key; a beacon at every multiple of the
interval with a true ``remaining`` count (all by the decoder); each beacon's markers against the
state rebuilt from the frames (highest seq and timestamp, running checksum); nothing after EOS.
Marker disagreements are warnings, not damage: SeaStreamer's own appender resumes running
checksums wrongly (reference §10 Q9), and readers only use markers to seek.

``--repair`` keeps a backup copy, then truncates the file right after the last good message so it
can be appended to again. Everything after the first damage goes, which is why the backup is
written first.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

import click

from streamkit.backends.file_reader import SsFileReader
from streamkit.errors import FileFormatError
from streamkit.formats.crc16 import CRC16_INIT, crc16, word_table
from streamkit.formats.ss import HEADER_SIZE, Beacon, FileHeader, Item, is_eos
from streamkit.message import Message
from streamkit.timeutil import format_ms

__all__ = ["Report", "verify", "verify_file"]


@dataclass
class _Stream:
    count: int = 0
    first_seq: int = 0
    last_seq: int = 0
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
        out.append(f"streams: {len(self.streams)}")
        for (key, shard), s in sorted(self.streams.items()):
            out.append(
                f"  {key} shard {shard}: {s.count} messages, seq {s.first_seq}..{s.last_seq}"
            )
        out.append(f"beacons: {self.beacons}")
        if self.eos_at is not None:
            out.append(f"end: EOS at byte {self.eos_at}")
        elif self.damage is None:
            out.append("end: no EOS (the writer has not closed the file cleanly, or still writes)")
        out.extend(f"warning: {w}" for w in self.warnings)
        out.append("damaged" if self.damage is not None else "ok")
        return out


class _Checker:
    def __init__(self, report: Report) -> None:
        self.report = report
        self.table = word_table()

    def add(self, items: list[Item], last_start: int) -> None:
        report = self.report
        streams = report.streams
        table = self.table
        for item in items:
            if isinstance(item, Message):
                if is_eos(item):
                    report.eos_at = last_start  # EOS is the last message a decoder returns
                ts = item.timestamp
                s = streams.get((item.stream_key, item.shard_id))
                if s is None:
                    s = streams[(item.stream_key, item.shard_id)] = _Stream(
                        first_seq=item.seq, max_seq=item.seq, max_ts=ts, min_ts=ts
                    )
                s.count += 1
                s.last_seq = item.seq
                s.max_seq = max(s.max_seq, item.seq)
                s.max_ts = max(s.max_ts, ts)
                s.min_ts = min(s.min_ts, ts)
                s.running = table[s.running ^ (crc16(item.payload) if item.payload else 0xFFFF)]
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
                self.report.warnings.append(
                    f"{where}: marker for {m.stream_key}:{m.shard_id}, a stream with no "
                    "message before it"
                )
            elif (m.seq, m.timestamp, m.running_checksum) != (s.max_seq, s.max_ts, s.running):
                self.report.warnings.append(
                    f"{where}: marker for {m.stream_key}:{m.shard_id} says seq {m.seq}, "
                    f"ts {m.timestamp}, running checksum {m.running_checksum:#06x}; the frames "
                    f"say seq {s.max_seq}, ts {s.max_ts}, running checksum {s.running:#06x}"
                )


def verify_file(path: str) -> Report:
    """Check a whole file; damage is recorded in ``report.damage``, not raised."""
    reader = SsFileReader(path)
    report = Report(path, reader.size())
    checker = _Checker(report)
    try:
        if reader.size() == 0:
            report.damage = FileFormatError(
                "empty file (no .ss header)", f"{path} at byte 0", offset=0
            )
            report.good_end = 0
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
        return report
    finally:
        reader.close()


def _backup_path(path: str) -> str:
    candidate = path + ".bak"
    n = 1
    while os.path.exists(candidate):
        candidate = f"{path}.bak.{n}"
        n += 1
    return candidate


def repair_file(report: Report) -> str:
    """Back up, then truncate to ``report.good_end``; returns the backup's path."""
    if report.header is None:
        raise FileFormatError(
            "the header is damaged: nothing to keep, so no repair (restore the file instead)",
            f"{report.path} at byte 0",
            offset=0,
        )
    backup = _backup_path(report.path)
    shutil.copyfile(report.path, backup)
    with open(report.path, "r+b") as f:
        f.truncate(report.good_end)
        f.flush()
        os.fsync(f.fileno())
    return backup


_EXAMPLES = """
\b
Examples:
  streamkit verify ticks.ss
  streamkit verify ticks.ss --repair   # cut a damaged tail (a backup is written first)
"""


@click.command(epilog=_EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--repair",
    is_flag=True,
    help="Cut a damaged or half-written tail off after the last good message (keeps FILE.bak).",
)
def verify(file: str, repair: bool) -> None:
    """Check every frame, beacon and checksum of a .ss file; exit 3 if it is damaged."""
    report = verify_file(file)
    for line in report.lines():
        click.echo(line)
    if report.damage is None:
        if repair:
            click.echo("nothing to repair")
        return
    if not repair:
        raise report.damage
    click.echo(f"damage: {report.damage}")
    backup = repair_file(report)
    click.echo(
        f"repaired: backup written to {backup}; truncated from {report.size} to "
        f"{report.good_end} bytes ({report.size - report.good_end} dropped)"
    )
