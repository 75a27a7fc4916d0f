"""``streamkit stat URI``: what a file, Redis or Kafka holds, and how far behind every group is.

Thin: the figures come from ``streamkit.stats`` (one model for every backend, the same one
``MemoryStreamer.stat()`` returns); this module only renders them as a table or one JSON object
per look, and repeats the look with ``--watch`` (redrawn in place on a terminal, appended when
stdout is a pipe or file, so a log keeps every look). It only reads: no group, topic, key or
file is ever created.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from streamkit.cli.options import DURATION, connect_options, connect_options_from
from streamkit.errors import UsageError
from streamkit.stats import GroupStat, StatReport, StreamStat, open_stat_source
from streamkit.timeutil import format_ms
from streamkit.uri import StreamUri, parse_stream_uri, parse_streamer_uri

if TYPE_CHECKING:
    from streamkit.cli.runner import Shutdown

__all__ = ["parse_stat_uri", "render_table", "stat"]

_CLEAR = "\x1b[H\x1b[2J"


def parse_stat_uri(text: str) -> StreamUri:
    """A URI, or a bare path meaning ``file://PATH``; ``file://F.ss/k1,k2`` narrows to keys."""
    if "://" not in text:
        text = "file://" + text
    if text.startswith("file://"):
        rest = text[len("file://") :].rstrip("/")
        head, sep, tail = rest.rpartition("/")
        if sep and tail and os.path.isfile(head) and not os.path.exists(rest):
            return parse_stream_uri("file://" + rest)
        return parse_streamer_uri(text)
    uri = parse_streamer_uri(text)
    if uri.scheme == "memory":
        raise UsageError(
            "memory:// streams live inside one Python process, so another process cannot see "
            "them; call streamer.stat() in that process instead (docs/memory.md)",
            uri.redacted(),
        )
    return uri


def _ts(ms: int | None) -> str:
    return "-" if ms is None else format_ms(ms)


def _val(value: Any) -> str:
    return "-" if value is None else str(value)


def _columns(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    ]


def _stream_lines(stream: StreamStat, backend: str) -> list[str]:
    out = [
        f"stream {stream.key}: {stream.messages} messages, {len(stream.shards)} shard(s), "
        f"{_ts(stream.first_ts)} .. {_ts(stream.last_ts)}"
    ]
    ids = any(s.first_id is not None for s in stream.shards)
    ends = any(s.next_seq is not None for s in stream.shards)
    head = ["SHARD", "MESSAGES", "FIRST ID" if ids else "FIRST", "LAST ID" if ids else "LAST"]
    head += ["END"] if ends else []
    head += ["FIRST TIME", "LAST TIME"]
    rows = [head]
    for s in stream.shards:
        row = [str(s.shard), str(s.messages)]
        row += [_val(s.first_id), _val(s.last_id)] if ids else [_val(s.first_seq), _val(s.last_seq)]
        row += [_val(s.next_seq)] if ends else []
        row += [_ts(s.first_ts), _ts(s.last_ts)]
        rows.append(row)
    out.extend(_columns(rows))
    for group in stream.groups:
        out.extend(_group_lines(group))
    if not stream.groups and backend != "file":
        out.append("  no consumer groups")
    return out


def _group_lines(group: GroupStat) -> list[str]:
    consumers = "? consumers" if group.consumers is None else f"{group.consumers} consumer(s)"
    if group.members:
        consumers += f" ({', '.join(group.members)})"
    state = f" [{group.state}]" if group.state else ""
    out = [
        f"  group {group.name}{state}: {consumers}, pending {_val(group.pending)}, "
        f"lag {_val(group.lag)}"
    ]
    redis = any(s.last_delivered is not None for s in group.shards)
    rows = [["SHARD", "LAST DELIVERED" if redis else "COMMITTED", "PENDING", "LAG"]]
    for s in group.shards:
        position = s.last_delivered if redis else s.committed
        rows.append([str(s.shard), _val(position), _val(s.pending), _val(s.lag)])
    out.extend(_columns(rows, "    "))
    return out


def render_table(report: StatReport) -> str:
    lines = [f"{report.uri} ({report.backend}) at {format_ms(report.taken_at)}"]
    f = report.file
    if f is not None:
        lines.append(
            f"file {f.path}: {f.size} bytes, header name {f.name!r}, created {_ts(f.created_at)}, "
            f"beacon interval {_val(f.beacon_interval)}, {f.beacons} beacon(s), "
            f"{f.payload_bytes} payload bytes"
        )
        lines.append("end: " + (f"EOS at byte {f.eos_at}" if f.eos_at is not None else "no EOS"))
        lines.append(f"damage: {f.damage}" if f.damage else "damage: none")
        lines.extend(f"warning: {w}" for w in f.warnings)
    if not report.streams:
        lines.append("no streams")
    for stream in report.streams:
        lines.extend(_stream_lines(stream, report.backend))
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines) + "\n"


def _render(report: StatReport, fmt: str, compact: bool) -> str:
    if fmt == "json":
        import json

        if compact:
            return json.dumps(report.to_json(), separators=(",", ":")) + "\n"
        return json.dumps(report.to_json(), indent=2) + "\n"
    return render_table(report)


_EXAMPLES = """
\b
Examples:
  streamkit stat ticks.ss                          # a .ss file: streams, beacons, EOS, damage
  streamkit stat redis://127.0.0.1:6379/orders     # shards, groups, pending, lag
  streamkit stat kafka://127.0.0.1:9092 --format json
  streamkit stat kafka://127.0.0.1:9092/orders --watch 2s
"""


@click.command(epilog=_EXAMPLES)
@click.argument("uri")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or one JSON object per look (fields: docs/stat.md).",
)
@click.option(
    "--watch",
    type=DURATION,
    default=None,
    help="Look again every INTERVAL (redrawn in place on a terminal, appended otherwise).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="With --watch: stop after N looks (default: until interrupted).",
)
@connect_options
def stat(uri: str, fmt: str, watch: float | None, count: int | None, **values: Any) -> int:
    """Show each stream's size, seq and time range, and every consumer group's lag.

    URI is a file (a path or file://PATH, optionally /KEYS), redis://HOST:PORT[/KEYS] or
    kafka://HOST:PORT[/TOPICS]; with no keys, every stream there. Only reads: never creates a
    group, topic, key or file. A named stream that does not exist: one line, exit 1.
    memory:// is refused (exit 2): it lives inside one process; use streamer.stat() there.
    """
    if count is not None and watch is None:
        raise UsageError("--count needs --watch", "--count")
    target = parse_stat_uri(uri)
    options = connect_options_from(values)
    if target.scheme == "file" and watch is None:
        # One look at a file is one plain scan: no event loop, whose modules (asyncio, ssl)
        # were a third of this command's start-up. Ctrl-C ends it with 130, as decode's.
        from streamkit.backends.file.stats import FileStatSource
        from streamkit.cli.progress import file_progress

        report = FileStatSource(target).look(file_progress(target.path, "stat"))
        sys.stdout.write(_render(report, fmt, compact=False))
        return 0
    from streamkit.cli.runner import run_async

    return run_async(lambda shutdown: _run(target, options, fmt, watch, count, shutdown))


async def _run(
    uri: StreamUri,
    options: Any,
    fmt: str,
    watch: float | None,
    count: int | None,
    shutdown: Shutdown,
) -> int:
    import asyncio

    stopped = asyncio.Event()
    shutdown.on_stop(stopped.set)
    terminal = sys.stdout.isatty()
    source = await open_stat_source(uri, options)
    try:
        looks = 0
        while True:
            report = await source.collect()
            text = _render(report, fmt, compact=watch is not None and not terminal)
            if watch is not None and terminal:
                text = _CLEAR + text
            elif watch is not None and fmt == "table" and looks:
                text = "\n" + text
            sys.stdout.write(text)
            sys.stdout.flush()
            looks += 1
            if watch is None or (count is not None and looks >= count):
                return 0
            try:
                await asyncio.wait_for(stopped.wait(), watch)
            except asyncio.TimeoutError:
                continue
            return 0
    finally:
        await source.close()
