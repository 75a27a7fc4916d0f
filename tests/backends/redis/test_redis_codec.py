"""The Redis codec (XADD packing, XREAD entries → Messages): both implementations, and the two
compared on random input (hypothesis). No server: these are pure functions."""

from __future__ import annotations

import collections
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.backends.redis import resp as pure
from streamkit.backends.redis.positions import _Shard
from streamkit.backends.redis.reading import WideIds, read_entries
from streamkit.backends.redis.resp import AUTO, Entry
from streamkit.errors import DataError
from streamkit.message import Message
from tests.backends.redis.conftest import compiled

MAX_U64 = (1 << 64) - 1
PREFIX = b"*5\r\n$4\r\nXADD\r\n$6\r\norders\r\n"
MAXLEN_PREFIX = b"*8\r\n$4\r\nXADD\r\n$1\r\nk\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$3\r\n100\r\n"


def old_pack(entries: list[Entry]) -> bytes:
    """The producer's formatting before the codec existed (what the server has always got)."""
    out = []
    for _key, payload, prefix, ms in entries:
        if ms == AUTO:
            id_part = b"$1\r\n*\r\n$3\r\nmsg\r\n"
        else:
            text = b"%d-*" % ms
            id_part = b"$%d\r\n%s\r\n$3\r\nmsg\r\n" % (len(text), text)
        out.append(b"%s%s$%d\r\n%s\r\n" % (prefix, id_part, len(payload), payload))
    return b"".join(out)


# ------------------------------------------------------------------------------ packing


def test_pack_known_bytes(redis_codec: ModuleType) -> None:
    entries: list[Entry] = [
        ("orders", b"hello", PREFIX, 1700000000000),
        ("orders", b"", PREFIX, AUTO),
        ("k", b"a\r\nb\x00", MAXLEN_PREFIX, 0),
    ]
    assert redis_codec.pack_xadd(entries) == (
        b"*5\r\n$4\r\nXADD\r\n$6\r\norders\r\n$15\r\n1700000000000-*\r\n$3\r\nmsg\r\n"
        b"$5\r\nhello\r\n"
        b"*5\r\n$4\r\nXADD\r\n$6\r\norders\r\n$1\r\n*\r\n$3\r\nmsg\r\n$0\r\n\r\n"
        + MAXLEN_PREFIX
        + b"$3\r\n0-*\r\n$3\r\nmsg\r\n$5\r\na\r\nb\x00\r\n"
    )
    assert redis_codec.pack_xadd([]) == b""


@pytest.mark.parametrize("ms", [9, 10, 99, 100, (1 << 48) - 1, 1 << 48, (1 << 63) - 1])
def test_pack_id_lengths(redis_codec: ModuleType, ms: int) -> None:
    entries: list[Entry] = [("k", b"x" * 10, PREFIX, ms), ("k", b"y" * 100, PREFIX, ms)]
    assert redis_codec.pack_xadd(entries) == old_pack(entries)


@pytest.mark.parametrize(
    "entries",
    [
        [("k", bytearray(b"abc"), PREFIX, 5)],  # a payload that is not bytes
        [("k", b"abc", PREFIX, 1 << 70)],  # a millisecond past 64 bits
        [("k", b"abc", PREFIX, -7)],  # below AUTO
        [("k", b"abc", PREFIX, True)],  # an int subclass
        (("k", b"abc", PREFIX, 5),),  # a tuple of entries
    ],
)
def test_pack_unusual_items_as_the_pure_packer(redis_codec: ModuleType, entries: Any) -> None:
    assert redis_codec.pack_xadd(entries) == pure.pack_xadd(entries)


@pytest.mark.parametrize("entries", [[("k", b"abc", PREFIX)], [("k", "text", PREFIX, 5)], [5]])
def test_pack_errors_as_the_pure_packer(redis_codec: ModuleType, entries: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as expected:
        pure.pack_xadd(entries)
    with pytest.raises(type(expected.value)) as got:
        redis_codec.pack_xadd(entries)
    assert str(got.value) == str(expected.value)


ms_values = st.one_of(
    st.just(AUTO),
    st.integers(0, 20),
    st.integers(0, 1 << 50),
    st.sampled_from([(1 << 48) - 1, 1 << 48, (1 << 63) - 1, 10**12, 10**13 - 1]),
)
entries_strategy = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=10),
        st.binary(max_size=300),
        st.sampled_from([PREFIX, MAXLEN_PREFIX, b""]),
        ms_values,
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(entries_strategy)
def test_pack_differential(entries: list[Entry]) -> None:
    expected = old_pack(entries)
    assert pure.pack_xadd(entries) == expected
    assert compiled().pack_xadd(entries) == expected


# ------------------------------------------------------------------------------ reading

NO_LIMIT = 1 << 70


def convert(impl: ModuleType, entries: Any, **kw: Any) -> tuple[tuple[int, bool], list[Message]]:
    out: list[Message] = []
    args = dict(start=0, key="orders", shard=2, end_seq=NO_LIMIT, until=NO_LIMIT, field=b"msg")
    args.update(kw)
    result = impl.convert_entries(
        entries,
        args["start"],
        args["key"],
        args["shard"],
        args["end_seq"],
        args["until"],
        args["field"],
        out,
    )
    return result, out


def test_convert_plain_entries(redis_codec: ModuleType) -> None:
    payload = b"\x00\xff binary"
    entries = [
        [b"1700000000000-0", [b"msg", payload]],
        [b"1700000000000-65534", [b"msg", b"", b"other", b"x"]],
        [b"0-0", (b"msg", b"z")],
    ]
    result, out = convert(redis_codec, entries)
    assert result == (3, False)
    assert out == [
        Message("orders", 2, 1700000000000 << 16, 1700000000000, payload),
        Message("orders", 2, (1700000000000 << 16) | 65534, 1700000000000, b""),
        Message("orders", 2, 0, 0, b"z"),
    ]
    assert out[0].payload is payload  # the reply's own bytes, not a copy
    assert out[0].headers == () and out[0].key is None and out[0].line is None


@pytest.mark.parametrize(
    "entry",
    [
        [b"5-65535", [b"msg", b"a"]],  # N at or past 65535: the per-entry rules
        [b"5-65536", [b"msg", b"a"]],
        [b"%d-0" % (1 << 48), [b"msg", b"a"]],
        [b"5-1", None],  # deleted pending entry
        [b"5-1", [b"other", b"x", b"msg", b"a"]],  # payload not the first field
    ],
)
def test_convert_stops_at_entries_for_the_full_rules(
    redis_codec: ModuleType, entry: list[Any]
) -> None:
    entries = [[b"4-0", [b"msg", b"x"]], entry, [b"6-0", [b"msg", b"y"]]]
    result, out = convert(redis_codec, entries)
    assert result == (1, False)
    assert [m.payload for m in out] == [b"x"]


@pytest.mark.parametrize("fields", [[b"msg"], []])
def test_broken_fields_raise_what_the_rules_raise(redis_codec: ModuleType, fields: Any) -> None:
    # C leaves such an entry to reading.py, the pure loop trips on it itself: the same error
    entries = [[b"4-0", [b"msg", b"x"]], [b"5-1", fields]]
    result = read_all(redis_codec.convert_entries, entries, None, None, False)
    assert result[0] == (IndexError, "list index out of range")
    assert [m.payload for m in result[2]] == [b"x"]


def test_convert_stops_past_the_end_and_until(redis_codec: ModuleType) -> None:
    entries = [[b"4-0", [b"msg", b"x"]], [b"4-1", None], [b"5-0", [b"msg", b"y"]]]
    assert convert(redis_codec, entries, end_seq=4 << 16)[0] == (1, True)  # before the fields
    assert convert(redis_codec, entries, until=4)[0] == (1, False)  # None: the full rules
    assert convert(redis_codec, entries, start=2, until=4)[0] == (2, True)
    assert convert(redis_codec, entries, until=-1)[0] == (0, True)
    assert convert(redis_codec, entries, start=2)[0] == (3, False)
    assert convert(redis_codec, entries, start=3) == ((3, False), [])


def test_convert_field_name_and_ids_it_does_not_judge(redis_codec: ModuleType) -> None:
    entries = [[b"4-0", [b"payload", b"x"]]]
    assert convert(redis_codec, entries, field=b"payload")[0] == (1, False)
    assert convert(redis_codec, entries)[0] == (0, False)


# a wide range of ids, canonical or not, around every boundary the rules have
ids = st.one_of(
    st.builds(
        lambda ms, sub: b"%d-%d" % (ms, sub),
        st.one_of(st.integers(0, 50), st.sampled_from([(1 << 48) - 1, 1 << 48, MAX_U64])),
        st.one_of(st.integers(0, 3), st.sampled_from([65534, 65535, 65536, 1 << 40, MAX_U64])),
    ),
    st.sampled_from([b"+5-1", b"5", b"5-", b"-1", b"05-01", b" 5-1", b"5-1_0", b"x-1"]),
)
fields = st.one_of(
    st.none(),
    st.builds(lambda p: [b"msg", p], st.binary(max_size=20)),
    st.builds(lambda p: [b"other", b"o", b"msg", p], st.binary(max_size=20)),
    st.sampled_from([[b"other", b"o"], [], [b"msg"]]),
)
replies = st.lists(st.builds(lambda i, f: [i, f], ids, fields), min_size=1, max_size=12)


def read_all(
    convert_impl: Any,
    entries: list[Any],
    end: tuple[int, int] | None,
    until: int | None,
    grouped: bool,
) -> tuple[Any, ...]:
    shard = _Shard("orders", 3, "orders:3", end=end)
    out: list[Message] = []
    skip: list[tuple[str, bytes]] = []
    wide: WideIds = {}
    try:
        result: Any = read_entries(
            entries,
            shard,
            out,
            until=until,
            field_name=b"msg",
            grouped=grouped,
            where="redis://x",
            skip_acks=skip,
            wide=wide,
            convert=convert_impl,
        )
    except (ValueError, IndexError, DataError) as error:
        result = (type(error), str(error))
    return result, shard.done, out, skip, {k: list(v) for k, v in wide.items()}


@settings(max_examples=500, deadline=None)
@given(
    replies,
    st.none() | st.tuples(st.integers(0, 60), st.sampled_from([0, 2, 65535, 65536, MAX_U64])),
    st.none() | st.integers(-1, 60),
    st.booleans(),
)
def test_read_entries_differential(
    entries: list[Any], end: tuple[int, int] | None, until: int | None, grouped: bool
) -> None:
    expected = read_all(pure.convert_entries, entries, end, until, grouped)
    assert read_all(compiled().convert_entries, entries, end, until, grouped) == expected


def test_read_entries_rules(redis_codec: ModuleType) -> None:
    entries = [
        [b"5-1", [b"msg", b"a"]],
        [b"5-70000", [b"msg", b"wide"]],
        [b"5-70001", [b"other", b"o", b"msg", b"wide2"]],
        [b"6-0", None],
        [b"6-1", [b"other", b"o"]],
        [b"6-2", [b"msg", b"b"]],
        [b"7-0", [b"msg", b"late"]],
    ]
    shard = _Shard("orders", 0, "orders")
    out: list[Message] = []
    skip: list[tuple[str, bytes]] = []
    wide: WideIds = {}
    last, over = read_entries(
        entries,
        shard,
        out,
        until=6,
        field_name=b"msg",
        grouped=True,
        where="redis://x",
        skip_acks=skip,
        wide=wide,
        convert=redis_codec.convert_entries,
    )
    assert (last, over, shard.done) == (b"7-0", 2, True)
    assert [(m.seq, m.timestamp, m.payload) for m in out] == [
        ((5 << 16) | 1, 5, b"a"),
        ((5 << 16) | 65535, 5, b"wide"),
        ((5 << 16) | 65535, 5, b"wide2"),
        ((6 << 16) | 2, 6, b"b"),
    ]
    assert skip == [("orders", b"6-0"), ("orders", b"6-1")]
    assert wide == {
        ("orders", 0, (5 << 16) | 65535): collections.deque(
            [("orders", b"5-70000"), ("orders", b"5-70001")]
        )
    }
    with pytest.raises(DataError, match="past 2\\^48"):
        read_entries(
            [[b"%d-0" % (1 << 48), [b"msg", b"x"]]],
            _Shard("orders", 0, "orders"),
            [],
            until=None,
            field_name=b"msg",
            grouped=False,
            where="redis://x",
            skip_acks=[],
            wide={},
            convert=redis_codec.convert_entries,
        )
