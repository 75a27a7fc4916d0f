"""``streamkit decode FILE``: a ``.ss`` file as log lines, strict NDJSON, or ss-decode's ndjson.

Reading, seeking and filtering live here; the formats themselves (what each line looks like, the
fast ``log`` path) are the ``formats/printing/`` package.

``ndjson`` is strict NDJSON (``jq`` reads it); ``log`` and ``ss-ndjson`` match SeaStreamer's
ss-decode line for line.
"""

from __future__ import annotations

import gc
import operator
import sys
from typing import Any, BinaryIO

import click

from streamkit.backends.file.reader import SeekTarget, SsFileReader, ss_path
from streamkit.cli.progress import Progress
from streamkit.errors import FileFormatError, UsageError
from streamkit.formats.codec import SsDecoder  # C loops when built
from streamkit.formats.printing import DECODE_FORMATS
from streamkit.formats.printing.printer import SsPrinter
from streamkit.formats.ss import FileHeader, Item, is_eos
from streamkit.message import INTERNAL_KEY, Message, validate_stream_key
from streamkit.timeutil import parse_time

__all__ = ["decode", "decode_file"]

_JUST_MESSAGES = {Message}
_stream_key = operator.attrgetter("stream_key")


class _PipeSource:
    """``decode -``: the same items from stdin (no seeking there: ``--since`` only filters)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.decoder = SsDecoder(source="<stdin>")
        self.pending: list[Item] = []
        self.fed = 0

    def size(self) -> int:
        return self.fed

    def read_header(self) -> FileHeader | None:
        items = self.read_items(4096)
        if items and isinstance(items[0], FileHeader):
            self.pending = items[1:]
            return items[0]
        return None

    def read_items(self, max_items: int) -> list[Item]:
        if self.pending:
            items, self.pending = self.pending, []
            return items
        while True:
            items = self.decoder.read(max_items)
            if items or self.decoder.ended:
                return items
            chunk = self.stream.read(1 << 20)
            if not chunk:
                self.decoder.eof()
                return self.decoder.read(max_items)
            self.fed += len(chunk)
            self.decoder.feed(chunk)

    def close(self) -> None:
        pass


def decode_file(
    path: str,
    out: BinaryIO,
    *,
    fmt: str = "log",
    header_only: bool = False,
    streams: tuple[str, ...] = (),
    since: int | None = None,
    until: int | None = None,
    binary: str = "blob",
    progress: bool = False,
) -> int:
    """Print ``path`` (``-``: stdin) to ``out``; returns the number of messages printed.

    Raises FileFormatError at damage, after printing everything before it. ``progress``: a bar
    on stderr when it is a terminal and stdout is not (``cli/progress.py``).
    """
    reader = _PipeSource(sys.stdin.buffer) if path == "-" else SsFileReader(path)
    total = reader.size() if progress and isinstance(reader, SsFileReader) else 0
    bar = Progress(total, "decode", prints_to_stdout=True)
    try:
        header = reader.read_header()
        if header is None and reader.size() == 0:
            return 0  # an empty file: no header yet, no messages (docs/file-format.md)
        if header is None:
            raise FileFormatError(
                f"file is {reader.size()} bytes long, too short for the 128-byte .ss header",
                f"{path} at byte 0",
                offset=0,
            )
        printer = SsPrinter(out, fmt, header_only, binary, INTERNAL_KEY in streams)
        printer.header(header)
        keys = frozenset(streams) if streams else None
        if since is not None and isinstance(reader, SsFileReader):
            reader.seek(SeekTarget(keys, None, since))
        printed = 0
        stop = False

        def wanted(m: Message) -> bool:
            nonlocal printed, stop
            if stop:
                return False
            if keys is not None:
                if m.stream_key not in keys:
                    return False
            elif m.stream_key == INTERNAL_KEY and not is_eos(m):
                return False
            if since is not None and m.timestamp < since:
                return False
            if until is not None and m.timestamp > until and not is_eos(m):
                stop = True
                return False
            printed += 1
            return True

        plain = keys is None and since is None and until is None
        while not stop:
            items = reader.read_items(4096)
            if not items:
                break
            if items[0].__class__ is FileHeader:
                items = items[1:]
            if plain and set(map(type, items)) == _JUST_MESSAGES:
                # Internal frames other than EOS (PULSE) are never data; they are never written
                # either, so this C-speed check almost never leads to the copy.
                if INTERNAL_KEY in set(map(_stream_key, items)):
                    items = [i for i in items if _stream_key(i) != INTERNAL_KEY or is_eos(i)]  # type: ignore[arg-type]
                printed += len(items)
                printer.batch(items, None)
            else:
                printer.batch(items, wanted)  # beacons in the batch, or filters
            if bar.shown:
                assert isinstance(reader, SsFileReader)
                bar.to(reader.bytes_read)
        out.flush()
        return printed
    finally:
        bar.close()
        reader.close()


def _decode_file_to_stdout(path: str, **options: Any) -> None:
    """``decode_file`` to stdout; a reader that goes away (``| head``) ends it quietly.

    Caught here because click turns an escaping EPIPE into exit code 1.
    """
    try:
        decode_file(path, sys.stdout.buffer, **options)
    except BrokenPipeError:
        from streamkit.cli.runner import silence_stdout  # here: runner imports asyncio

        silence_stdout()


_EXAMPLES = """
\b
Examples:
  streamkit decode ticks.ss
  streamkit decode ticks.ss --format ndjson | jq .payload.tick
  streamkit decode ticks.ss --format ss-ndjson   # ss-decode's ndjson, /* comment */ lines too
  streamkit decode ticks.ss --stream tick --since 2026-11-23T07:00:02 --until -1m
  streamkit decode ticks.ss --header-only --binary hex
"""


@click.command(epilog=_EXAMPLES)
@click.argument("file")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(DECODE_FORMATS)),
    default="log",
    show_default=True,
    help="log: '# header', '[ts | key | seq | shard] payload' lines; ndjson: strict NDJSON, one "
    "JSON object per message and nothing else (jq reads it); ss-ndjson: SeaStreamer's ss-decode "
    "ndjson, with its /* header */ and /* beacon */ comment lines and the EOS frame.",
)
@click.option("--header-only", is_flag=True, help="Print message headers without payloads.")
@click.option(
    "--stream",
    "streams",
    multiple=True,
    metavar="KEY",
    help="Only messages of this stream (repeat, or KEY1,KEY2).",
)
@click.option("--since", metavar="TIME", help="Start at this time: ISO-8601, epoch s, or -10m.")
@click.option("--until", metavar="TIME", help="Stop after the last message at or before TIME.")
@click.option(
    "--binary",
    type=click.Choice(["blob", "hex", "base64"]),
    default="blob",
    show_default=True,
    help="How a non-UTF-8 payload prints (blob: <BINARY BLOB>; ndjson: a byte array).",
)
def decode(
    file: str,
    fmt: str,
    header_only: bool,
    streams: tuple[str, ...],
    since: str | None,
    until: str | None,
    binary: str,
) -> None:
    """Print a .ss file (SeaStreamer's format; a path, file://PATH, or - for stdin) as log
    lines or ndjson."""
    file = ss_path(file, "decode")
    keys = tuple(
        validate_stream_key(k.strip(), where="--stream")
        for text in streams
        for k in text.split(",")
        if k.strip()
    )
    if streams and not keys:
        raise UsageError("no stream key given", "--stream")
    since_ms = parse_time(since, what="--since time") if since is not None else None
    until_ms = parse_time(until, what="--until time") if until is not None else None
    # Decoding allocates a million short-lived, cycle-free objects per million messages; the
    # cyclic collector only slows that down (~10%), so it rests while this command runs.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _decode_file_to_stdout(
            file,
            fmt=fmt,
            header_only=header_only,
            streams=keys,
            since=since_ms,
            until=until_ms,
            binary=binary,
            progress=True,
        )
    finally:
        if gc_was_enabled:
            gc.enable()
