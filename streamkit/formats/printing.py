"""A ``.ss`` file's items as text: ``decode``'s log lines, strict NDJSON and ss-decode's ndjson.

``log`` and ``ss-ndjson`` match SeaStreamer's ss-decode line for line (scripts written for one
work with the other), with streamkit's fixed three-digit millisecond timestamps (DESIGN §6).
Beacons print where ss-decode prints them: after the message they interrupt, or, for a beacon
between two messages, after the message that follows it. ``ndjson`` is strict NDJSON -- the same
message objects and nothing else (ss-decode's ``/* */`` comment lines and its EOS line stop
``jq``), which is what a user piping into an NDJSON reader expects.

The ``log`` path is the fast one: lines are built as bytes with one ``%`` format each, timestamps
come from a per-second cache, UTF-8 is checked once per batch (an all-ASCII batch needs no
per-payload check), and each batch is one write (the environment may make stdout unbuffered, so
no per-line writes). ``SsPrinter`` writes to the binary stream it is given and opens nothing;
``cli/decode.py`` reads the file and hands it the items.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any, BinaryIO

import orjson

from streamkit.formats.codec import encode_log_lines  # C loops when built
from streamkit.formats.line import is_utf8
from streamkit.formats.ss import Beacon, FileHeader, Item
from streamkit.message import INTERNAL_KEY, Message
from streamkit.timeutil import format_ms

__all__ = ["BLOB", "SsPrinter"]

BLOB = b"<BINARY BLOB>"
_MILLIS = [b"%03d" % ms for ms in range(1000)]


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


class SsPrinter:
    """Prints batches of items in one of ``decode``'s formats (``fmt``) to ``out``."""

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
