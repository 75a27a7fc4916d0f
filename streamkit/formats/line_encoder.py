"""The line format's writer: ``encode_lines`` turns a batch of messages into one bytes object.

Batches whose messages all travel as plain lines are formatted column by column
(``_encode_columns``); any other batch one message at a time, with the separator and
escaping a payload needs. Overview: ``line.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat as _repeat
from operator import attrgetter, itemgetter
from operator import floordiv as _floordiv
from operator import mod as _mod

from streamkit.errors import DataError
from streamkit.formats.line_decoder import is_utf8
from streamkit.message import Message

__all__ = ["encode_lines"]

_shard_of = attrgetter("shard_id")
_line_of = attrgetter("line")
_payload_of = attrgetter("payload")
_timestamp_of = attrgetter("timestamp")
_stream_key_of = attrgetter("stream_key")
_seq_of = attrgetter("seq")
_first_byte = itemgetter(0)
_PLAIN_START = bytes(range(33, 128))  # a payload starting with one of these follows "] "
_MILLIS_TEXT = [b"%03d" % n for n in range(1000)]
_prefix_cache: dict[int, bytes] = {}


def _time_prefix(seconds: int) -> bytes:
    prefix = _prefix_cache.get(seconds)
    if prefix is None:
        import time

        # Not strftime's %Y: it writes years before 1000 with fewer than four digits.
        prefix = b"[%04d-%02d-%02dT%02d:%02d:%02d." % time.gmtime(seconds)[:6]
        if len(_prefix_cache) > 65536:
            _prefix_cache.clear()
        _prefix_cache[seconds] = prefix
    return prefix


def encode_lines(messages: Sequence[Message], stream_key: str | None = None) -> bytes:
    """``[ts | key | seq | shard] payload\\n`` for each message, as one bytes object.

    ``stream_key`` renames every message's stream. Raises DataError for a payload that cannot
    travel in the line format (a newline in it, or not UTF-8), naming the message.
    """
    if stream_key is None:
        kept = list(map(_line_of, messages))
        if None not in kept:  # every message still has the line it was read from: copy them
            kept.append(b"")
            return b"\n".join(kept)
    out = _encode_columns(messages, stream_key) if len(messages) >= 16 else None
    if out is None:
        out = _encode_each(messages, stream_key)
    if not out.isascii():
        try:
            out.decode("utf-8")
        except UnicodeDecodeError:
            for message in messages:
                if not is_utf8(message.payload):
                    raise _untravelable(message, "is not UTF-8 text") from None
    return out


def _encode_columns(messages: Sequence[Message], stream_key: str | None) -> bytes | None:
    """A batch formatted column by column in C (``map`` over each field, one ``join``).

    Returns None for a batch the per-message loop must handle: an empty payload, one that
    starts with a space or control byte (its separator needs a look at the text) or one with
    a newline (the loop names the message in its error).
    """
    payloads = list(map(_payload_of, messages))
    if b"" in payloads:
        return None
    starts = bytes(map(_first_byte, payloads))
    if starts.translate(None, _PLAIN_START):
        return None
    count = len(payloads)
    stamps = list(map(_timestamp_of, messages))
    seconds = list(map(_floordiv, stamps, _repeat(1000, count)))
    prefixes = {second: _time_prefix(second) for second in set(seconds)}
    if stream_key is not None:
        middles: list[bytes] = [b" | %s | " % stream_key.encode("ascii")] * count
    else:
        names = list(map(_stream_key_of, messages))
        middle_of = {name: b" | %s | " % name.encode("ascii") for name in set(names)}
        middles = list(map(middle_of.__getitem__, names))
    shards = list(map(_shard_of, messages))
    shard_ends = {shard: b" | %d] " % shard for shard in set(shards)}
    parts: list[bytes] = [b"\n"] * (7 * count)
    parts[0::7] = list(map(prefixes.__getitem__, seconds))
    parts[1::7] = list(map(_MILLIS_TEXT.__getitem__, map(_mod, stamps, _repeat(1000, count))))
    parts[2::7] = middles
    parts[3::7] = list(map(b"%d".__mod__, map(_seq_of, messages)))
    parts[4::7] = list(map(shard_ends.__getitem__, shards))
    parts[5::7] = payloads
    out = b"".join(parts)
    return out if out.count(b"\n") == count else None  # more: a payload holds a newline


def _encode_each(messages: Sequence[Message], stream_key: str | None) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    forced = stream_key.encode("ascii") if stream_key is not None else None
    keys: dict[str, bytes] = {}
    for message in messages:
        line = message.line
        if line is not None and (forced is None or message.stream_key == stream_key):
            append(line)
            continue
        payload = message.payload
        if b"\n" in payload:
            raise _untravelable(message, "contains a newline")
        seconds, millis = divmod(message.timestamp, 1000)
        key = forced
        if key is None:
            key = keys.get(message.stream_key)
            if key is None:
                key = keys[message.stream_key] = message.stream_key.encode("ascii")
        append(
            b"%s%03d | %s | %d | %d]%s%s"
            % (
                _time_prefix(seconds),
                millis,
                key,
                message.seq,
                message.shard_id,
                b" " if payload and 32 < payload[0] < 128 else _separator(payload),
                payload,
            )
        )
    parts.append(b"")
    return b"\n".join(parts)


def _separator(payload: bytes) -> bytes:
    """No space before an empty or whitespace-only payload: the reader keeps a whitespace-only
    rest verbatim, so ``"] "`` would add a space to it (an empty payload would come back as
    ``b" "``)."""
    try:
        blank = not payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        blank = False
    return b"" if blank else b" "


def _untravelable(message: Message, why: str) -> DataError:
    return DataError(
        f"payload {why}, which the line format cannot carry; use --output-format json "
        "or a file:// output",
        f"message {message.stream_key}:{message.shard_id}:{message.seq}",
    )
