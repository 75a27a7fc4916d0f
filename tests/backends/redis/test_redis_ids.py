"""The SeaStreamer id and key mapping (pure functions)."""

from __future__ import annotations

import pytest

from streamkit.backends.redis.ids import (
    id_after,
    id_before,
    parse_entry_id,
    redis_key,
    seq_of,
    seq_to_id,
    split_redis_key,
)
from streamkit.errors import DataError


def test_keys_and_shards() -> None:
    assert redis_key("orders", 0) == "orders"
    assert redis_key("orders", 12) == "orders:12"
    assert split_redis_key("orders") == ("orders", 0)
    assert split_redis_key("orders:12") == ("orders", 12)
    assert split_redis_key("orders:meta") is None
    assert split_redis_key("orders:1:2") is None
    assert split_redis_key("orders:" + "9" * 30) is None


@pytest.mark.parametrize("ms,sub", [(0, 0), (1, 65535), (1700000000000, 7), ((1 << 48) - 1, 3)])
def test_seq_round_trip(ms: int, sub: int) -> None:
    seq = seq_of(ms, sub)
    assert seq >> 16 == ms and seq & 0xFFFF == sub
    assert seq_to_id(seq) == b"%d-%d" % (ms, sub)
    assert parse_entry_id(seq_to_id(seq), "here") == (ms, sub)


def test_ids_that_do_not_fit_a_seq() -> None:
    # N > 65535 (another client's burst) is read, with the last seq of its millisecond
    assert parse_entry_id(b"5-65536", "redis://x") == (5, 65536)
    assert seq_of(5, 65536) == seq_of(5, 65535) == (5 << 16) | 0xFFFF
    assert seq_of(5, 1 << 63) == seq_of(5, 65535)
    with pytest.raises(DataError, match="past 2\\^48"):
        parse_entry_id(b"%d-0" % (1 << 48), "redis://x")


def test_exclusive_neighbours() -> None:
    assert id_before(5, 3) == b"5-2"
    assert id_before(5, 0) == b"4-18446744073709551615"
    assert id_before(0, 0) == b"0-0"
    assert id_after(b"5-2") == b"5-3"
    assert id_after(b"5-18446744073709551615") == b"6-0"
