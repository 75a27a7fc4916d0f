"""Messages and stream keys: the one data type every backend produces and consumes.

A message's identity is ``(stream_key, shard_id, seq)``. Timestamps are integer milliseconds since
the Unix epoch (UTC): the precision of the ``.ss`` format, Redis entry ids and Kafka timestamps, so
a message relayed between any two backends keeps its time exactly. Payloads are opaque bytes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from streamkit.errors import UsageError

__all__ = [
    "BROADCAST",
    "INTERNAL_KEY",
    "MAX_KEY_LENGTH",
    "MAX_U64",
    "Message",
    "ReadTime",
    "now_ms",
    "read_time_clock",
    "validate_stream_key",
]

BROADCAST = "broadcast"
"""The key of stdio lines that name no stream; such lines reach every consumer."""

INTERNAL_KEY = "SEA_STREAMER_INTERNAL"
"""SeaStreamer's reserved key for control frames (EOS, PULSE); never user data."""

MAX_KEY_LENGTH = 249
MAX_U64 = (1 << 64) - 1

_KEY_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_BAD_KEY_CHAR = re.compile(r"[^A-Za-z0-9._-]")


def validate_stream_key(key: str, *, where: str = "stream key") -> str:
    """Return ``key`` if it is a valid stream key, else raise a UsageError naming the problem.

    Empty keys are refused (SeaStreamer accepts them through its API by accident).
    """
    if _KEY_CHARS.fullmatch(key) and len(key) <= MAX_KEY_LENGTH:
        return key
    if not key:
        raise UsageError("empty stream key (a key is 1-249 characters of A-Z a-z 0-9 . _ -)", where)
    if len(key) > MAX_KEY_LENGTH:
        raise UsageError(f"stream key is {len(key)} characters long (at most 249)", where)
    bad = _BAD_KEY_CHAR.search(key)
    assert bad is not None
    raise UsageError(
        f"invalid character {bad.group()!r} in stream key {key!r} (allowed: A-Z a-z 0-9 . _ -)",
        where,
    )


def now_ms() -> int:
    """Wall-clock time in whole milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class ReadTime(int):
    """A timestamp streamkit filled in because the input carried none (spec: "timestamp = now").

    It is an ``int`` in every way (compares, formats, serialises and pickles as one); only its
    type records that the time is the moment of reading, not a time the data carries. The Kafka
    producer leaves such records for the client to stamp as it takes them (what ``kcat -P``
    does for every line): the same clock a moment later, and no timestamp to convert per record.
    """

    __slots__ = ()


def read_time_clock(clock: Callable[[], int]) -> Callable[[], ReadTime]:
    """``clock`` whose times say they were filled in (``ReadTime``): what decoders stamp with."""

    def read_time() -> ReadTime:
        return ReadTime(clock())

    return read_time


@dataclass(slots=True)
class Message:
    """One message of a stream.

    ``key`` and ``headers`` are the Kafka record key and headers; other backends leave them empty
    and the Kafka backend and the JSON line format carry them.
    """

    stream_key: str
    """The stream it belongs to: 1-249 of ``A-Z a-z 0-9 . _ -`` (SeaStreamer's rule)."""
    shard_id: int
    """The shard within the stream: the Kafka partition, the Redis key ``key:N``, 0 by default."""
    seq: int
    """Its sequence number in stream and shard: the Kafka offset, from the Redis id (see
    docs/redis.md), counted on by the line format; ``--offset N`` starts at it."""
    timestamp: int
    """Milliseconds since the Unix epoch, UTC."""
    payload: bytes
    """The body, bytes as sent (``text()`` decodes it)."""
    key: bytes | None = None
    """The Kafka record key (partitioning, compaction); None elsewhere."""
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    """The Kafka record headers, in order; empty elsewhere."""
    line: bytes | None = field(default=None, init=False, repr=False, compare=False)
    """The exact line-format text this message was read from, when that text is already in
    the canonical form the stdio producer writes; lets a relay copy it instead of formatting it
    again. Not an init field, so ``dataclasses.replace`` drops it. Messages are values: make a
    new one (``replace``) rather than assigning to a field of one that came from a decoder."""

    @property
    def datetime(self) -> datetime:
        """The timestamp as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp / 1000, tz=timezone.utc)

    def text(self) -> str:
        """The payload decoded as UTF-8 (raises UnicodeDecodeError for binary payloads)."""
        return self.payload.decode("utf-8")
