"""NDJSON request bodies → rows, fast: one JSON parse (orjson) per body, not one per line.

The lines are joined into one JSON array and parsed by one C call; a payload that is JSON (an
object, array, number...) keeps its exact text, sliced out of its line when ``payload`` is the
line's last member (it always is in what ``--output-format json`` and kcat -J write), else
re-serialised compactly. Any body this path cannot take whole (a line that is not a JSON object,
bad base64, a bad key) goes through ``formats.jsonl.JsonLineDecoder`` instead, which is slower
but names the offending line: both paths accept exactly the same input.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from streamkit.collect.writer import Row
from streamkit.formats.jsonl import JsonLineDecoder, loads
from streamkit.message import now_ms

__all__ = ["ndjson_rows"]

_MEMBER = b'"payload":'
_KNOWN = frozenset({"topic", "partition", "offset", "ts", "key", "headers", "payload",
                    "payload_base64"})  # fmt: skip


def ndjson_rows(key: str, body: bytes) -> list[Row] | str:
    """Rows of an NDJSON body, or the one-line reason it is refused (nothing is taken then)."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        return "no message in the body (NDJSON: one JSON object per line)"
    try:
        objects = loads(b"[" + b",".join(lines) + b"]")
        rows = _rows(key, lines, objects)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        rows = None
    if rows is not None:
        return rows
    return _slow_rows(key, body)


def _rows(key: str, lines: list[bytes], objects: list[Any]) -> list[Row] | str | None:
    """None: leave this body to the line-by-line decoder (it words the error)."""
    if len(objects) != len(lines):
        return None  # a line held more than one value ("1,2")
    now = now_ms()
    rows: list[Row] = []
    append = rows.append
    for line, obj in zip(lines, objects):
        if type(obj) is not dict or not _KNOWN.issuperset(obj):
            return None
        topic = obj.get("topic")
        if topic is not None and topic != key:
            return _other_stream(topic, key)
        ts = obj.get("ts")
        if "payload_base64" in obj:
            payload = base64.b64decode(obj["payload_base64"], validate=True)
        else:
            value = obj.get("payload")
            if type(value) is str:
                payload = value.encode()
            elif "payload" not in obj:
                payload = b""
            else:
                payload = _raw(line, obj, value)
        record_key = obj.get("key")
        headers = obj.get("headers")
        append(
            (
                key,
                int(obj.get("partition") or 0),
                now if ts is None else int(ts),
                payload,
                None if record_key is None else _bytes(record_key),
                _headers(headers) if headers else (),
            )
        )
    return rows


def _raw(line: bytes, obj: dict[str, Any], value: Any) -> bytes:
    # A '"' inside a JSON string is escaped, so the first '"payload":' is a member name; when
    # payload is the last member its text runs from there to the closing brace.
    if next(reversed(obj)) == "payload":
        start = line.find(_MEMBER)
        end = line.rfind(b"}")
        if 0 <= start < end:
            return line[start + len(_MEMBER) : end].strip()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _bytes(value: Any) -> bytes:
    if type(value) is str:
        return value.encode()
    if type(value) is dict and type(value.get("base64")) is str:
        return base64.b64decode(value["base64"], validate=True)
    raise ValueError("not a string")


def _headers(flat: Any) -> tuple[tuple[str, bytes], ...]:
    if type(flat) is dict:
        flat = [item for pair in flat.items() for item in pair]
    return tuple((str(flat[i]), _bytes(flat[i + 1])) for i in range(0, len(flat) - 1, 2))


def _other_stream(topic: Any, key: str) -> str:
    return (
        f"a line names stream {topic!r} in a request to /streams/{key} "
        "(leave topic out, or post it to its own URL)"
    )


def _slow_rows(key: str, body: bytes) -> list[Row] | str:
    decoder = JsonLineDecoder("body", clock=now_ms)
    messages = decoder.feed(body if body.endswith(b"\n") else body + b"\n")
    if decoder.error is not None:
        return f"{decoder.error} (nothing of this request was taken)"
    rows: list[Row] = []
    for m, unnamed in zip(messages, decoder.broadcast):
        if not unnamed and m.stream_key != key:
            return _other_stream(m.stream_key, key)
        rows.append((key, m.shard_id, m.timestamp, m.payload, m.key, m.headers))
    if not rows:
        return "no message in the body (NDJSON: one JSON object per line)"
    return rows
