"""``streamkit decode FILE``: a ``.ss`` file as log lines, strict NDJSON, or ss-decode's ndjson.

``log`` and ``ss-ndjson`` match SeaStreamer's ss-decode line for line (scripts written for one
work with the other), with streamkit's fixed three-digit millisecond timestamps (DESIGN §6).
Beacons print where ss-decode prints them: after the message they interrupt, or, for a beacon
between two messages, after the message that follows it. ``ndjson`` is strict NDJSON -- the same
message objects and nothing else (ss-decode's ``/* */`` comment lines and its EOS line stop
``jq``), which is what a user piping into an NDJSON reader expects.

The ``log`` path is the fast one: lines are built as bytes with one ``%`` format each, timestamps
come from a per-second cache, UTF-8 is checked once per batch (an all-ASCII batch needs no
per-payload check), and each batch is one write to stdout (the environment may make stdout
unbuffered, so no per-line writes).
"""

from __future__ import annotations

import base64
import gc
import json
import operator
import re
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

import click
import orjson

from streamkit.backends.file.reader import SeekTarget, SsFileReader, ss_path
from streamkit.cli.progress import Progress
from streamkit.errors import FileFormatError, UsageError
from streamkit.formats.codec import SsDecoder, encode_log_lines  # C loops when built
from streamkit.formats.line import is_utf8
from streamkit.formats.ss import Beacon, FileHeader, Item, is_eos
from streamkit.message import INTERNAL_KEY, Message, validate_stream_key
from streamkit.timeutil import format_ms, parse_time

__all__ = ["decode", "decode_file"]

BLOB = b"<BINARY BLOB>"
_MILLIS = [b"%03d" % ms for ms in range(1000)]
_JUST_MESSAGES = {Message}
_stream_key = operator.attrgetter("stream_key")


class _Times:
    """``[`` and the date part of ``format_ms`` as bytes, cached per second."""

    def __init__(self) -> None:
        self._cache: dict[int, bytes] = {}

    def prefix(self, seconds: int) -> bytes:
        text = self._cache.get(seconds)
        if text is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            text = self._cache[seconds] = b"[" + format_ms(seconds * 1000)[:-3].encode("ascii")
        return text


def _header_json(header: FileHeader) -> str:
    return json.dumps(
        {
            "file_name": header.file_name,
            "created_at": format_ms(header.created_at),
            "beacon_interval": header.beacon_interval,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _meta(key: str, shard: int, seq: int, ts: int) -> dict[str, Any]:
    return {"stream_key": key, "shard_id": shard, "sequence": seq, "timestamp": format_ms(ts)}


def _beacon_json(beacon: Beacon) -> str:
    return json.dumps(
        [
            {
                "header": _meta(m.stream_key, m.shard_id, m.seq, m.timestamp),
                "running_checksum": m.running_checksum,
            }
            for m in beacon.markers
        ],
        separators=(",", ":"),
    )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_payload(payload: bytes, binary: str) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        if binary == "hex":
            return payload.hex()
        if binary == "base64":
            return base64.b64encode(payload).decode("ascii")
        return list(payload)
    try:
        return _Raw(
            json.dumps(
                json.loads(text, parse_constant=_no_constants),
                separators=(",", ":"),
                sort_keys=True,
                ensure_ascii=False,
            )
        )
    except (ValueError, RecursionError):
        return text


class _Raw(str):
    """Already-serialised JSON, spliced into the message line as is."""


class _Printer:
    def __init__(
        self, out: BinaryIO, fmt: str, header_only: bool, binary: str, internal: bool = False
    ) -> None:
        self.out = out
        self.fmt = fmt
        self.strict = fmt == "ndjson"
        """Strict NDJSON: message objects only -- no header, beacon or EOS lines."""
        self.internal = internal
        """The internal stream was asked for by name (--stream): its frames print."""
        self.header_only = header_only
        self.binary = binary
        self.times = _Times()
        self.held: list[Beacon] = []
        self.keyparts: dict[str, bytes] = {}

    def header(self, header: FileHeader) -> None:
        if self.strict:
            return
        text = _header_json(header)
        line = f"# {text}\n" if self.fmt == "log" else f"/* {text} */\n"
        self.out.write(line.encode("utf-8"))

    def _beacon_line(self, beacon: Beacon) -> bytes:
        text = _beacon_json(beacon)
        return (f"# {text}\n" if self.fmt == "log" else f"/* {text} */\n").encode("utf-8")

    def batch(self, items: list[Item], wanted: Callable[[Message], bool] | None) -> None:
        """Print messages that pass ``wanted`` (None: all), and beacons where ss-decode does."""
        if wanted is None and not self.held and Beacon not in set(map(type, items)):
            selected: list[Message | Beacon] = items  # type: ignore[assignment]
        else:
            selected = self._select(items, wanted)
        chunk = self._render(selected)
        if self.fmt == "log" and not chunk.isascii() and not is_utf8(chunk):
            chunk = self._render([self._printable(item) for item in selected])
        self.out.write(chunk)

    def _select(
        self, items: list[Item], wanted: Callable[[Message], bool] | None
    ) -> list[Message | Beacon]:
        selected: list[Message | Beacon] = []
        append = selected.append
        held = self.held
        for item in items:
            if isinstance(item, Message):
                if wanted is None or wanted(item):
                    append(item)
                if held:
                    selected.extend(held)
                    held.clear()
            elif isinstance(item, Beacon):
                if item.remaining:  # it interrupted the message just before it
                    append(item)
                else:  # between messages: ss-decode prints it after the next one
                    held.append(item)
        return selected

    def _render(self, selected: list[Message | Beacon]) -> bytes:
        if self.strict:
            internal = self.internal
            return b"".join(
                self._json_line(item)
                for item in selected
                if isinstance(item, Message) and (internal or item.stream_key != INTERNAL_KEY)
            )
        if self.fmt == "log" and not self.header_only and encode_log_lines is not None:
            data = encode_log_lines(selected, self._beacon_line)  # in C, the same bytes
            if data is not None:
                return data
        if self.fmt != "log":
            return b"".join(
                self._json_line(item) if isinstance(item, Message) else self._beacon_line(item)
                for item in selected
            )
        # The hot loop of `decode`: one % format per message; the date text is cached per second
        # and the " | key | " part per stream.
        parts: list[bytes] = []
        append = parts.append
        keyparts = self.keyparts
        prefix_of = self.times.prefix
        lo = hi = 0
        prefix = b""
        last_key = ""
        keypart = b""
        millis = _MILLIS
        form = b"%s%s%s%d | %d]\n" if self.header_only else b"%s%s%s%d | %d] %s\n"
        for item in selected:
            if item.__class__ is not Message:
                assert isinstance(item, Beacon)
                append(self._beacon_line(item))
                continue
            assert isinstance(item, Message)
            ts = item.timestamp
            if not lo <= ts < hi:
                lo = ts - ts % 1000
                hi = lo + 1000
                prefix = prefix_of(lo // 1000)
            if item.stream_key is not last_key:
                last_key = item.stream_key
                keypart = keyparts.get(last_key) or b""
                if not keypart:
                    keypart = keyparts[last_key] = b" | %s | " % last_key.encode("ascii")
            if self.header_only:
                append(form % (prefix, millis[ts - lo], keypart, item.seq, item.shard_id))
            else:
                append(
                    form % (prefix, millis[ts - lo], keypart, item.seq, item.shard_id, item.payload)
                )
        return b"".join(parts)

    def _printable(self, item: Message | Beacon) -> Message | Beacon:
        """The message with a binary payload replaced by its printed form."""
        if isinstance(item, Beacon) or is_utf8(item.payload):
            return item
        text = self._binary_text(item.payload)
        return Message(item.stream_key, item.shard_id, item.seq, item.timestamp, text)

    def _binary_text(self, payload: bytes) -> bytes:
        if self.binary == "hex":
            return payload.hex().encode("ascii")
        if self.binary == "base64":
            return base64.b64encode(payload)
        return BLOB

    def _json_line(self, m: Message) -> bytes:
        """One ndjson message line, built as bytes: the header part needs no JSON encoder
        (keys are ``[A-Za-z0-9._-]``, numbers are numbers, the timestamp text is cached per
        second) and the payload goes through orjson (``_payload_json``)."""
        ts = m.timestamp
        stamp = self.times.prefix(ts // 1000)[1:] + _MILLIS[ts % 1000]
        payload = b"null" if self.header_only else _payload_json(m.payload, self.binary)
        return _NDJSON_LINE % (m.stream_key.encode("ascii"), m.shard_id, m.seq, stamp, payload)


_NDJSON_LINE = (
    b'{"header":{"stream_key":"%s","shard_id":%d,"sequence":%d,"timestamp":"%s"},"payload":%s}\n'
)
_BIG_NUMBER = re.compile(rb"\d{20}")
"""20+ digits in a row may be an integer beyond 64 bits, which orjson reads as a float (losing
digits): such payloads take the ``json`` path, which keeps every digit."""


def _payload_json(payload: bytes, binary: str) -> bytes:
    """A payload as JSON text: re-serialised compactly with sorted keys if it is JSON (orjson,
    ~10x the ``json`` module), else a string, else (not UTF-8) bytes as ``binary`` says.

    Whatever orjson refuses (lone surrogates, NaN, nesting past 1024, 20+ digit numbers) takes
    the ``json`` path, which decides as before; its output is kept ASCII-escaped where it would
    not encode as UTF-8 (a lone surrogate), so a line is always valid UTF-8.
    """
    if payload and not _BIG_NUMBER.search(payload):
        try:
            return orjson.dumps(orjson.loads(payload), option=orjson.OPT_SORT_KEYS)
        except orjson.JSONDecodeError:
            pass
        except orjson.JSONEncodeError:  # pragma: no cover - whatever loads gives, dumps takes
            pass
    value = _json_payload(payload, binary)
    if isinstance(value, _Raw):
        text: str = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(json.loads(text), ensure_ascii=True, separators=(",", ":")).encode()


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
        printer = _Printer(out, fmt, header_only, binary, INTERNAL_KEY in streams)
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
    type=click.Choice(["log", "ndjson", "ss-ndjson"]),
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
