"""``decode``'s message objects for ``ndjson`` and ``ss-ndjson``: SeaStreamer's ss-decode shape.

    {"header":{"stream_key":"tick","shard_id":0,"sequence":4,"timestamp":"2026-...Z"},
     "payload":{"tick":4}}

The payload is re-serialised when it is JSON (compact, keys sorted, as ss-decode prints it, so
the two tools' output compares equal), else a JSON string of its text; a payload that is not
UTF-8 becomes a byte array, or a hex or base64 string with ``--binary``. ``ndjson`` prints only
these lines; ``ss-ndjson`` adds ss-decode's ``/* */`` header and beacon lines (``printer.py``).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import orjson

from streamkit.formats.printing.log import MILLIS, Times
from streamkit.message import Message

__all__ = ["json_line", "payload_json"]

_NDJSON_LINE = (
    b'{"header":{"stream_key":"%s","shard_id":%d,"sequence":%d,"timestamp":"%s"},"payload":%s}\n'
)
_BIG_NUMBER = re.compile(rb"\d{20}")
"""20+ digits in a row may be an integer beyond 64 bits, which orjson reads as a float (losing
digits): such payloads take the ``json`` path, which keeps every digit."""


def json_line(m: Message, times: Times, header_only: bool, binary: str) -> bytes:
    """One ndjson message line, built as bytes: the header part needs no JSON encoder (keys are
    ``[A-Za-z0-9._-]``, numbers are numbers, the timestamp text is cached per second) and the
    payload goes through orjson (``payload_json``)."""
    ts = m.timestamp
    stamp = times.prefix(ts // 1000)[1:] + MILLIS[ts % 1000]
    payload = b"null" if header_only else payload_json(m.payload, binary)
    return _NDJSON_LINE % (m.stream_key.encode("ascii"), m.shard_id, m.seq, stamp, payload)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Raw(str):
    """Already-serialised JSON, spliced into the message line as is."""


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


def payload_json(payload: bytes, binary: str) -> bytes:
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
