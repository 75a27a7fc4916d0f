"""SeaStreamer's Redis layout: stream keys ↔ Redis keys, entry ids ↔ (seq, timestamp).

A stream key ``k`` lives in Redis key ``k`` (shard 0) and ``k:N`` (shard N). An entry id
``MS-N`` is the message's timestamp ``MS`` (milliseconds) and sequence number
``MS << 16 | N``; SeaStreamer packs it so, and streams written by either tool read the same.

Redis allows ``N`` up to 2^64-1; other clients can write ``N`` > 65,535 (more than 65,536
entries in one millisecond). Such an entry is read with the last sequence number of its
millisecond, ``MS << 16 | 65535`` (``seq_of`` clamps): it keeps its place in the order, shares
that number with its neighbours, and readers count it. streamkit's producer never writes one.
"""

from __future__ import annotations

from streamkit.errors import DataError

__all__ = [
    "MAX_SUB",
    "id_after",
    "id_before",
    "parse_entry_id",
    "redis_key",
    "seq_of",
    "seq_to_id",
    "split_redis_key",
]

MAX_SUB = 0xFFFF
_MAX_U64 = (1 << 64) - 1


def redis_key(stream_key: str, shard: int) -> str:
    return stream_key if shard == 0 else f"{stream_key}:{shard}"


def split_redis_key(name: str) -> tuple[str, int] | None:
    """``k`` → (k, 0), ``k:3`` → (k, 3); None for a name that is not in the layout."""
    key, sep, suffix = name.partition(":")
    if not sep:
        return key, 0
    if suffix.isdigit() and suffix.isascii() and int(suffix) <= _MAX_U64:
        return key, int(suffix)
    return None


def parse_entry_id(entry_id: bytes, where: str) -> tuple[int, int]:
    """``b"1700000000000-3"`` → (1700000000000, 3); a millisecond past 2^48 is refused (no
    sequence number can hold it; that is 6,900 years after 1970)."""
    ms, _, sub = entry_id.partition(b"-")
    ms_value, sub_value = int(ms), int(sub)
    if ms_value >= 1 << 48:
        raise DataError(
            f"entry id {entry_id.decode()} does not fit a 64-bit sequence number "
            "(its millisecond is past 2^48)",
            where,
        )
    return ms_value, sub_value


def seq_of(ms: int, sub: int) -> int:
    """The sequence number of entry ``ms-sub``; ``sub`` > 65535 is read as 65535 (see above)."""
    return (ms << 16) | (sub if sub <= MAX_SUB else MAX_SUB)


def seq_to_id(seq: int) -> bytes:
    return b"%d-%d" % (seq >> 16, seq & MAX_SUB)


def id_before(ms: int, sub: int) -> bytes:
    """The greatest id below ``ms-sub``: XREAD's exclusive start that makes ``ms-sub`` inclusive."""
    if sub > 0:
        return b"%d-%d" % (ms, sub - 1)
    if ms > 0:
        return b"%d-%d" % (ms - 1, _MAX_U64)
    return b"0-0"


def id_after(entry_id: bytes) -> bytes:
    """The least id above ``entry_id`` (for paging XRANGE-style reads)."""
    ms, _, sub = entry_id.partition(b"-")
    if int(sub) < _MAX_U64:
        return b"%s-%d" % (ms, int(sub) + 1)
    return b"%d-0" % (int(ms) + 1)
