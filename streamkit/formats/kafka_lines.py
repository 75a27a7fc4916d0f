"""Kafka records straight to the line format: the relay's path with no Message per record.

``kafka_lines(raw, i, topic, last, out_key, sink)`` appends to ``sink`` the line that
``encode_lines`` would write for the Message of each record ``raw[i:]`` (stream key = the topic
or ``out_key``, seq = offset, shard = partition, the record's timestamp and value; the line
format carries neither the record's key nor its headers) and returns the index of the first
record it leaves to the caller's reference path (a Message, then ``encode_lines``): an error
or partition-EOF event, a value that is null, empty, not bytes, starts with a blank or control
byte, holds a newline or is not UTF-8, a timestamp outside the years 1-9999, or (with ``last``,
a dict partition -> last offset to deliver, for one ``topic``) an offset at or past its
partition's last, or one of no partition in it. A stream key that is not ASCII is left to the
reference too (``encode_lines`` raises for it). Every
record before that index was written, so the caller counts ``returned - i`` messages.

This is the pure-Python twin of ``_speedups.kafka_lines`` (same arguments, same bytes, same
stopping point); the records are duck-typed (confluent-kafka's ``Message`` methods), so the
format layer does not import the client library.
"""

from __future__ import annotations

from typing import Any

from streamkit.formats.line_encoder import _time_prefix

__all__ = ["kafka_lines"]

_FIRST_MS = -62_135_596_800_000
"""0001-01-01T00:00:00.000Z in epoch milliseconds: the first time the line format writes."""
_LAST_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last."""


def kafka_lines(
    raw: list[Any],
    i: int,
    topic: str | None,
    last: dict[int, int] | None,
    out_key: str | None,
    sink: bytearray,
) -> int:
    """The lines of the plain records from ``raw[i]`` on (see the module docstring)."""
    if i < 0:
        raise ValueError("kafka_lines(): i must not be negative")
    named = out_key if out_key is not None else topic
    if named is not None and not named.isascii():
        return i  # the reference raises encode_lines' error (stream keys are ASCII)
    fixed = named.encode() if named is not None else None
    parts: list[bytes] = []
    append = parts.append
    names: dict[str, bytes] = {}
    second, prefix = None, b""
    size = len(raw)
    index = i
    while index < size:
        m = raw[index]
        if m.error() is not None:
            break
        value = m.value()
        if (
            type(value) is not bytes
            or not value
            or not 32 < value[0] < 128
            or b"\n" in value
            or (not value.isascii() and not _utf8(value))
        ):
            break
        partition = m.partition()
        offset = m.offset()
        if last is not None and offset >= last.get(partition, -1):
            break
        stamp = m.timestamp()[1]
        if not _FIRST_MS <= stamp <= _LAST_MS:
            break
        key = fixed
        if key is None:
            name = m.topic()
            key = names.get(name)
            if key is None:
                if not name.isascii():
                    break
                key = names[name] = name.encode()
        seconds, millis = divmod(stamp, 1000)
        if seconds != second:
            second, prefix = seconds, _time_prefix(seconds)
        append(b"%s%03d | %s | %d | %d] %s\n" % (prefix, millis, key, offset, partition, value))
        index += 1
    if parts:
        sink += b"".join(parts)
    return index


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
