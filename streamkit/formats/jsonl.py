"""JSON lines: one object per message, lossless, in kcat's ``-J`` vocabulary — sans-IO.

    {"topic":"orders","partition":0,"offset":42,"ts":1795417200123,
     "key":"user-1","headers":["h1","v1"],"payload":{"id":1}}

``payload`` is the payload's own JSON text, verbatim, when the payload is a JSON object, array,
number, boolean or null on one line; otherwise a JSON string of its UTF-8 text; a binary payload
is written as ``"payload_base64"`` instead. JSON-string payloads (``"abc"``) are written as text
so that reading back can tell them apart. ``payload`` is always the last member, so a reader can
take its raw text span and get the exact bytes back. Keys and header values that are not UTF-8
are written as ``{"base64": "..."}``.

Parsing and writing go through orjson (several times faster than ``json``); whatever orjson
refuses and ``json`` accepts (``NaN``, ``1e400``, lone surrogates), and any text with an
integer that may not fit 64 bits, is handed to ``json``, so the accepted input, the output bytes
and the error texts are those of ``json`` (tests/formats/test_jsonl_orjson.py checks that).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from streamkit.errors import LineFormatError, UsageError
from streamkit.formats.line import LineBuffer
from streamkit.message import BROADCAST, Message, now_ms, validate_stream_key

__all__ = ["JsonLineDecoder", "encode_json_lines", "loads"]

_PAYLOAD_MEMBER = ',"payload":'
_orjson_loads = orjson.loads
_orjson_dumps = orjson.dumps
_OrjsonDecodeError = orjson.JSONDecodeError


# 19+ digits in a row may be an integer past 64 bits, which some orjson versions turn into a
# float without a word: such text goes to json (digits inside strings too; it is only slower).
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def _loads(text: str) -> Any:
    """``json.loads(text)``, by orjson when it can (same values; json's errors otherwise)."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return _orjson_loads(text)
        except _OrjsonDecodeError:
            pass
    return json.loads(text)


_LONG_DIGIT_BYTES = re.compile(rb"[0-9]{19}")


def loads(data: bytes | str) -> Any:
    """``json.loads(data)`` (the same values, the same errors), by orjson when it can.

    For JSON that streamkit reads but does not write back: ``--partition-by`` fields, ``collect``
    bodies. orjson is several times faster; what it refuses or might read differently (``NaN``,
    ``1e400``, a possible integer past 64 bits) goes to ``json``.
    """
    if isinstance(data, str):
        return _loads(data)
    if _LONG_DIGIT_BYTES.search(data) is None:
        try:
            return _orjson_loads(data)
        except _OrjsonDecodeError:
            pass
    return json.loads(data)


def _dumps(value: Any) -> str:
    """Compact JSON with non-ASCII kept, as ``json.dumps(value, separators=(",", ":"),
    ensure_ascii=False)`` writes it, for values WITHOUT floats (orjson writes ``1e16`` where
    json writes ``1e+16``); strings are escaped the same way by both."""
    try:
        return _orjson_dumps(value).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError: an int past 64 bits, a lone surrogate, ...
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text_or_base64(value: bytes) -> Any:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def _bytes_of(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get("base64"), str):
        return base64.b64decode(value["base64"], validate=True)
    raise ValueError(f'{what} must be a string or {{"base64": ...}}')


def _payload_member(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return ',"payload_base64":' + json.dumps(base64.b64encode(payload).decode("ascii"))
    stripped = text.strip()
    if stripped and stripped[0] not in '"' and "\n" not in text and text == stripped:
        try:
            _loads(text)
        except ValueError:
            pass
        else:
            return _PAYLOAD_MEMBER + text
    return _PAYLOAD_MEMBER + _dumps(text)


def encode_json_lines(messages: Sequence[Message], stream_key: str | None = None) -> bytes:
    """One JSON object per message, ``\\n``-terminated, as one bytes object."""
    lines = []
    for message in messages:
        head: dict[str, Any] = {
            "topic": stream_key or message.stream_key,
            "partition": message.shard_id,
            "offset": message.seq,
            "ts": message.timestamp,
        }
        if message.key is not None:
            head["key"] = _text_or_base64(message.key)
        if message.headers:
            flat: list[Any] = []
            for name, value in message.headers:
                flat.extend((name, _text_or_base64(value)))
            head["headers"] = flat
        text = _dumps(head)
        lines.append(text[:-1] + _payload_member(message.payload) + "}\n")
    return "".join(lines).encode("utf-8")


class JsonLineDecoder(LineBuffer):
    """Incremental decoder of JSON lines: the same interface as ``LineDecoder``."""

    def __init__(
        self,
        source: str = "<stdin>",
        *,
        on_invalid: str = "fail",
        clock: Callable[[], int] = now_ms,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(source, on_invalid, clock, warn)
        self._next_seq: dict[tuple[str, int], int] = {}

    def _decode(self, chunk: bytes) -> list[Message]:
        out: list[Message] = []
        self.broadcast = []
        for line in chunk.split(b"\n"):
            self.line_number += 1
            if not line.strip():
                continue
            try:
                message, broadcast = self._parse(line)
            # UsageError: a bad topic (stream key); RecursionError: absurdly deep nesting.
            except (ValueError, TypeError, KeyError, UsageError, RecursionError) as error:
                where = f"{self.source}:{self.line_number}"
                what = f"invalid JSON message: {error}"
                if self.on_invalid == "skip":
                    self.skipped += 1
                    if self.warn is not None:
                        self.warn(f"{where}: skipped invalid line: {what}")
                    continue
                if self.on_invalid == "raw":
                    message, broadcast = self._raw(line), True
                else:
                    self.error = LineFormatError(what, where, line_number=self.line_number)
                    return out
            out.append(message)
            self.broadcast.append(broadcast)
        return out

    def _raw(self, line: bytes) -> Message:
        return Message(BROADCAST, 0, self._take(BROADCAST, 0, None), self.clock(), line)

    def _take(self, key: str, shard: int, seq: int | None) -> int:
        value = self._next_seq.get((key, shard), 0) if seq is None else seq
        self._next_seq[(key, shard)] = value + 1
        return value

    def _parse(self, line: bytes) -> tuple[Message, bool]:
        text = line.decode("utf-8")
        obj = _loads(text)
        if not isinstance(obj, dict):
            raise ValueError("a line must be a JSON object")
        topic = obj.get("topic")
        broadcast = topic is None
        key_name = BROADCAST if topic is None else validate_stream_key(str(topic), where="topic")
        shard = int(obj.get("partition") or 0)
        seq_value = obj.get("offset")
        seq = self._take(key_name, shard, None if seq_value is None else int(seq_value))
        ts = obj.get("ts")
        timestamp = self.clock() if ts is None else int(ts)
        if "payload_base64" in obj:
            payload = base64.b64decode(obj["payload_base64"], validate=True)
        elif isinstance(obj.get("payload"), str):
            payload = obj["payload"].encode("utf-8")
        elif "payload" in obj:
            payload = self._raw_payload(text, obj["payload"])
        else:
            payload = b""
        record_key = None if obj.get("key") is None else _bytes_of(obj["key"], "key")
        headers: list[tuple[str, bytes]] = []
        flat = obj.get("headers") or []
        if isinstance(flat, dict):
            flat = [item for pair in flat.items() for item in pair]
        for index in range(0, len(flat) - 1, 2):
            headers.append((str(flat[index]), _bytes_of(flat[index + 1], "header value")))
        return (
            Message(key_name, shard, seq, timestamp, payload, record_key, tuple(headers)),
            broadcast,
        )

    @staticmethod
    def _raw_payload(text: str, value: Any) -> bytes:
        """The payload's exact text when it is the last member, else compact JSON."""
        # The first occurrence: members before the payload cannot contain this text (a '"'
        # inside a JSON string is escaped), while the payload itself may.
        end = text.rstrip().rfind("}")
        start = text.find(_PAYLOAD_MEMBER)
        while 0 <= start < end:
            raw = text[start + len(_PAYLOAD_MEMBER) : end]
            try:
                if _loads(raw) == value:
                    return raw.encode("utf-8")
            except ValueError:
                pass
            start = text.find(_PAYLOAD_MEMBER, start + 1)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
