"""``decode``'s log lines: ``[2026-12-01T07:00:00.123 | key | seq | shard] payload``.

The line format's own four-field form (a log line reads back with ``relay --input stdio://``),
with streamkit's fixed three-digit milliseconds. The fast path of ``decode``: lines are built as
bytes with one ``%`` format each, the date text comes from a per-second cache and the
`` | key | `` part from a per-stream one, and a batch is one bytes object. When the C codec is
built, ``encode_log_lines`` writes the same bytes (``SsPrinter`` tries it first).

A payload that is not UTF-8 prints as ``--binary`` says (``<BINARY BLOB>``, hex or base64),
never as raw bytes: a log line is always text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from streamkit.formats.ss import Beacon
from streamkit.message import Message
from streamkit.timeutil import format_ms

__all__ = ["BLOB", "MILLIS", "Times", "binary_text", "log_lines"]

BLOB = b"<BINARY BLOB>"
"""What a non-UTF-8 payload prints as by default (ss-decode's text)."""
MILLIS = [b"%03d" % ms for ms in range(1000)]
"""The three-digit millisecond text of 0..999, as bytes."""


class Times:
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


def binary_text(payload: bytes, binary: str) -> bytes:
    """A non-UTF-8 payload as ``--binary`` prints it: ``hex``, ``base64`` or the blob text."""
    if binary == "hex":
        return payload.hex().encode("ascii")
    if binary == "base64":
        return base64.b64encode(payload)
    return BLOB


def log_lines(
    selected: list[Message | Beacon],
    times: Times,
    keyparts: dict[str, bytes],
    header_only: bool,
    beacon_line: Callable[[Beacon], bytes],
) -> bytes:
    """The log lines of ``selected`` (messages; ``beacon_line`` for beacons) as one bytes object.

    ``times`` and ``keyparts`` are the caller's caches, kept from batch to batch.
    """
    # The hot loop of `decode`: one % format per message; the date text is cached per second
    # and the " | key | " part per stream.
    parts: list[bytes] = []
    append = parts.append
    prefix_of = times.prefix
    lo = hi = 0
    prefix = b""
    last_key = ""
    keypart = b""
    millis = MILLIS
    form = b"%s%s%s%d | %d]\n" if header_only else b"%s%s%s%d | %d] %s\n"
    for item in selected:
        if item.__class__ is not Message:
            assert isinstance(item, Beacon)
            append(beacon_line(item))
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
        if header_only:
            append(form % (prefix, millis[ts - lo], keypart, item.seq, item.shard_id))
        else:
            append(form % (prefix, millis[ts - lo], keypart, item.seq, item.shard_id, item.payload))
    return b"".join(parts)
