"""Redis backend against a real private redis-server: layout, positions, shards, producer."""

from __future__ import annotations

import asyncio
import time

import pytest

from streamkit.backends.base import ProducerOptions
from streamkit.connect import connect
from streamkit.errors import BackendError, EndOfStream, UsageError
from streamkit.message import Message
from tests.backends.redis.helpers import drain, payloads, run, take
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.usefixtures("redis_codec")  # every test with both Redis codecs


def xrange_ids(server: RedisServer, key: str) -> list[str]:
    lines = server.cli("XRANGE", key, "-", "+").split()
    return [line for line in lines if "-" in line and line.split("-")[0].isdigit()]


def test_round_trip_keeps_order_and_maps_ids(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many([f"m{i}".encode() for i in range(25)])
            await producer.close()
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            return await drain(consumer)

    messages = run(main())
    assert payloads(messages) == [f"m{i}".encode() for i in range(25)]
    ids = xrange_ids(redis_server, unique_key)
    assert len(ids) == 25
    for message, entry_id in zip(messages, ids):
        ms, sub = (int(x) for x in entry_id.split("-"))
        assert message.seq == (ms << 16) | sub
        assert message.timestamp == ms
        assert (message.stream_key, message.shard_id) == (unique_key, 0)


def test_reads_entries_written_by_other_tools(redis_server: RedisServer, unique_key: str) -> None:
    redis_server.cli("XADD", unique_key, "1700000000000-5", "msg", "plain")
    redis_server.cli("XADD", unique_key, "1700000000001-0", "other", "no msg field")
    redis_server.cli("XADD", unique_key, "1700000000002-0", "x", "1", "msg", "second field")
    redis_server.cli("XADD", f"{unique_key}:2", "1700000000003-0", "msg", "shard two")
    redis_server.cli("SET", f"{unique_key}:meta", "not a stream")

    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            return await drain(consumer)

    messages = sorted(run(main()), key=lambda m: m.seq)
    assert [(m.shard_id, m.payload) for m in messages] == [
        (0, b"plain"),
        (0, b"second field"),
        (2, b"shard two"),
    ]
    assert messages[0].seq == (1700000000000 << 16) | 5
    assert messages[2].timestamp == 1700000000003


def test_message_keeps_timestamp_and_shard(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> None:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many(
                [
                    Message("ignored", 3, 0, 1700000000000, b"a"),
                    Message("ignored", 3, 0, 1700000000000, b"b"),
                    Message("ignored", 0, 0, 1700000000500, b"c"),
                    Message("ignored", 0, 0, 1600000000000, b"older than the stream"),
                ]
            )
            await producer.close()

    run(main())
    assert xrange_ids(redis_server, f"{unique_key}:3") == ["1700000000000-0", "1700000000000-1"]
    ids = xrange_ids(redis_server, unique_key)
    assert ids[0] == "1700000000500-0"
    # an older timestamp cannot go behind the stream's last id: it gets that id's millisecond
    assert ids[1] == "1700000000500-1"
    assert "msg" in redis_server.cli("XRANGE", f"{unique_key}:3", "-", "+")


def test_producer_without_key_routes_each_message(
    redis_server: RedisServer, unique_key: str
) -> None:
    async def main() -> None:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(None)
            await producer.send(Message(f"{unique_key}a", 0, 0, 1700000000000, b"x"))
            await producer.send(Message(f"{unique_key}b", 1, 0, 1700000000000, b"y"))
            with pytest.raises(UsageError, match="no stream key"):
                await producer.send(b"raw bytes need a key")
            await producer.close()

    run(main())
    assert xrange_ids(redis_server, f"{unique_key}a") == ["1700000000000-0"]
    assert xrange_ids(redis_server, f"{unique_key}b:1") == ["1700000000000-0"]


def _timed(key: str, stamps: list[int]) -> list[Message]:
    return [Message(key, 0, 0, ts, f"at{ts}".encode()) for ts in stamps]


def test_offset_seq_is_inclusive_and_since_until(
    redis_server: RedisServer, unique_key: str
) -> None:
    stamps = [1700000001000 + 1000 * i for i in range(10)]

    async def main() -> None:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many(_timed(unique_key, stamps))
            await producer.close()
            everything = await drain(
                await streamer.consumer(unique_key, offset="start", follow=False)
            )
            fourth = everything[3]
            got = await drain(await streamer.consumer(unique_key, offset=fourth.seq, follow=False))
            assert got[0].seq == fourth.seq and len(got) == 7
            got = await drain(
                await streamer.consumer(unique_key, since=stamps[4] - 1, follow=False)
            )
            assert [m.timestamp for m in got] == stamps[4:]
            got = await drain(await streamer.consumer(unique_key, since=stamps[4], follow=False))
            assert got[0].timestamp == stamps[4]
            # until in the past while following: ends once caught up, after the last ts <= until
            got = await drain(
                await streamer.consumer(unique_key, offset="start", until=stamps[6] + 1)
            )
            assert [m.timestamp for m in got] == stamps[:7]
            got = await drain(
                await streamer.consumer(unique_key, since=stamps[2], until=stamps[5], follow=False)
            )
            assert [m.timestamp for m in got] == stamps[2:6]
            got = await drain(
                await streamer.consumer(
                    unique_key, offset=fourth.seq, since=stamps[6], follow=False
                )
            )
            assert [m.timestamp for m in got] == stamps[6:]

    run(main())


def test_default_offset_is_end_and_follows(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many([b"old1", b"old2"])
            await producer.flush()
            consumer = await streamer.consumer(unique_key)
            await producer.send_many([b"new1", b"new2", b"new3"])
            await producer.flush()
            return await take(consumer, 3)

    assert payloads(run(main())) == [b"new1", b"new2", b"new3"]


def test_no_follow_stops_at_end_seen_at_start(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many([b"%d" % i for i in range(5)])
            await producer.flush()
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            await producer.send_many([b"late%d" % i for i in range(5)])
            await producer.flush()
            return await drain(consumer)

    assert payloads(run(main())) == [b"%d" % i for i in range(5)]


def test_no_follow_on_missing_stream_ends_at_once(
    redis_server: RedisServer, unique_key: str
) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            return await drain(await streamer.consumer(unique_key, offset="start", follow=False))

    assert run(main()) == []


def test_shards_found_by_scan_and_later_shards(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url, settings={"scan_interval": "0.2"}) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many(
                [Message(unique_key, i % 3, 0, 0, b"%d" % i) for i in range(9)]
            )
            await producer.flush()
            consumer = await streamer.consumer(unique_key, offset="start")
            first = await take(consumer, 9)
            await producer.send(Message(unique_key, 7, 0, 0, b"new shard"))
            await producer.flush()
            later = await take(consumer, 1, timeout=5)
            return first + later

    messages = run(main())
    by_shard: dict[int, list[bytes]] = {}
    for m in messages:
        by_shard.setdefault(m.shard_id, []).append(m.payload)
    assert by_shard == {0: [b"0", b"3", b"6"], 1: [b"1", b"4", b"7"], 2: [b"2", b"5", b"8"],
                        7: [b"new shard"]}  # fmt: skip
    stats = redis_server.cli("INFO", "commandstats")
    assert "cmdstat_scan" in stats and "cmdstat_keys" not in stats


def test_several_keys(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            for key in ("a", "b"):
                producer = await streamer.producer(unique_key + key)
                await producer.send_many([key.encode() * 2])
                await producer.close()
            consumer = await streamer.consumer(
                [unique_key + "a", unique_key + "b"], offset="start", follow=False
            )
            return await drain(consumer)

    assert sorted((m.stream_key[-1], m.payload) for m in run(main())) == [
        ("a", b"aa"),
        ("b", b"bb"),
    ]


def test_wrong_key_type_is_one_clear_error(redis_server: RedisServer, unique_key: str) -> None:
    redis_server.cli("SET", unique_key, "a string")

    async def main() -> None:
        async with connect(redis_server.url) as streamer:
            with pytest.raises(BackendError, match="WRONGTYPE") as consumed:
                await streamer.consumer(unique_key, offset="start")
            producer = await streamer.producer(unique_key)
            with pytest.raises(BackendError, match="WRONGTYPE") as produced:
                await producer.send(Message(unique_key, 0, 0, 1, b"x"))
                await producer.flush()
            raw = await streamer.producer(unique_key)
            with pytest.raises(BackendError, match="WRONGTYPE"):
                await raw.send(b"x")
                await raw.flush()
            for error in (consumed.value, produced.value):
                assert "\n" not in str(error) and unique_key in str(error)
                assert str(error).startswith(redis_server.url)

    run(main())


def test_maxlen_trims_approximately(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> None:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(unique_key, ProducerOptions(maxlen=100))
            await producer.send_many([b"x"] * 5000)
            await producer.close()

    run(main())
    length = int(redis_server.cli("XLEN", unique_key))
    assert 100 <= length < 400


def test_stop_cuts_a_blocking_read(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> float:
        async with connect(redis_server.url, settings={"block_ms": "30000"}) as streamer:
            consumer = await streamer.consumer(unique_key)
            asyncio.get_running_loop().call_later(0.2, consumer.stop)
            started = time.monotonic()
            with pytest.raises(EndOfStream):
                await consumer.next_batch()
            return time.monotonic() - started

    assert run(main()) < 5


def test_unsupported_options_are_refused(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> None:
        async with connect(redis_server.url) as streamer:
            with pytest.raises(UsageError, match="--beacon-interval"):
                await streamer.producer(unique_key, ProducerOptions(beacon_interval=4096))
            with pytest.raises(UsageError, match="--claim-idle"):
                await streamer.consumer(unique_key, claim_idle=1.0)
        with pytest.raises(UsageError, match="bogus"):
            await connect(redis_server.url, settings={"bogus": "1"})

    run(main())


def test_settings_of_other_clients_pass_by(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> int:
        settings = {"fetch.wait.max.ms": "10", "redis.page": "2"}
        async with connect(redis_server.url, settings=settings) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many([b"1", b"2", b"3"])
            await producer.close()
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            first = await consumer.next_batch(1000)
            return len(first)

    assert run(main()) == 2  # redis.page=2 reached the consumer's COUNT


def test_verbose_reports_start_positions(
    redis_server: RedisServer, unique_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    redis_server.cli("XADD", unique_key, "1700000000000-4", "msg", "x")

    async def main() -> None:
        async with connect(redis_server.url, verbose=True) as streamer:
            await streamer.consumer(unique_key, follow=False)  # -e: from the start
            await streamer.consumer(unique_key, offset="end", follow=False)

    run(main())
    err = capsys.readouterr().err
    assert f"reading {unique_key} after 0-0 (realtime) until the end" in err
    assert f"reading {unique_key} after 1700000000000-4 (realtime) until the end" in err


def test_a_full_millisecond_moves_on_to_the_next(
    redis_server: RedisServer, unique_key: str
) -> None:
    """A Redis id holds 65,536 entries per ms in this layout: the producer never writes more."""
    redis_server.cli("XADD", unique_key, "1700000000000-65530", "msg", "other client")
    burst = [Message("k", 0, 0, 1700000000000, b"b%d" % i) for i in range(65_540)]

    async def main() -> tuple[list[Message], int]:
        async with connect(redis_server.url) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many(burst[:3])  # 65531..65533 in the same ms
            await producer.send_many(burst[3:])
            await producer.close()
            later = producer.later  # type: ignore[attr-defined]
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            return await drain(consumer), later

    got, later = run(main())
    assert payloads(got) == [b"other client"] + [b"b%d" % i for i in range(65_540)]
    last = redis_server.cli("XREVRANGE", unique_key, "+", "-", "COUNT", "1").split()[0]
    # 5 fit after 65530 in ms 0; the other 65,535 fill ms 1 (65,536 of them would fit)
    assert last == "1700000000001-65534"
    assert later == 65_535
    seqs = [m.seq for m in got]
    assert seqs == sorted(set(seqs))
    assert [m.timestamp for m in got[-2:]] == [1700000000001] * 2


def test_ids_with_more_than_16_bits_of_n_are_read_and_counted(
    redis_server: RedisServer, unique_key: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Another client may write N > 65535: the reader delivers, shares the ms's last seq, counts."""
    for entry_id in ("5-1", "5-65535", "5-65536", "5-70000", "6-0"):
        redis_server.cli("XADD", unique_key, entry_id, "msg", f"e{entry_id}")
    group = f"g-{unique_key}"

    async def main() -> tuple[list[Message], list[Message], int, int]:
        async with connect(redis_server.url) as streamer:
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            plain = await drain(consumer)
            wide = consumer.wide_ids  # type: ignore[attr-defined]
            await consumer.close()
            grouped = await streamer.consumer(
                unique_key, offset="start", follow=False, mode="resumable", group=group
            )
            acked = await drain(grouped)
            await grouped.commit(acked)
            await grouped.close()
            return plain, acked, wide, grouped.wide_ids  # type: ignore[attr-defined]

    plain, acked, wide, group_wide = run(main())
    names = [b"e5-1", b"e5-65535", b"e5-65536", b"e5-70000", b"e6-0"]
    assert payloads(plain) == payloads(acked) == names
    top = (5 << 16) | 0xFFFF
    assert [m.seq for m in plain] == [(5 << 16) | 1, top, top, top, 6 << 16]
    assert (wide, group_wide) == (2, 2)
    err = capfd.readouterr().err
    assert err.count("2 entries had an id MS-N with N > 65535") == 2, err
    # every delivered entry was acknowledged by its real id, none twice, none left pending
    assert redis_server.cli("XPENDING", unique_key, group).split()[0] == "0"


def test_no_follow_end_among_wide_ids(redis_server: RedisServer, unique_key: str) -> None:
    for entry_id in ("7-65535", "7-65536", "7-70000"):
        redis_server.cli("XADD", unique_key, entry_id, "msg", entry_id)

    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            redis_server.cli("XADD", unique_key, "7-80000", "msg", "after the end")
            return await drain(consumer)

    assert payloads(run(main())) == [b"7-65535", b"7-65536", b"7-70000"]


def test_offset_minus_n_is_the_last_n_of_each_shard(
    redis_server: RedisServer, unique_key: str
) -> None:
    async def main() -> tuple[list[Message], list[Message]]:
        async with connect(redis_server.url, settings={"page": "3"}) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many(
                [Message(unique_key, i % 3, 0, 0, b"%d" % i) for i in range(30)]
                + [Message(unique_key, 5, 0, 0, b"short shard")]
            )
            await producer.close()
            last = await drain(await streamer.consumer(unique_key, offset=-4, follow=False))
            group = await streamer.consumer(
                unique_key, offset=-2, follow=False, mode="resumable", group=unique_key + "g"
            )
            grouped = await drain(group)
            return last, grouped

    last, grouped = run(main())
    by_shard: dict[int, list[bytes]] = {}
    for m in last:
        by_shard.setdefault(m.shard_id, []).append(m.payload)
    assert by_shard == {
        0: [b"18", b"21", b"24", b"27"],
        1: [b"19", b"22", b"25", b"28"],
        2: [b"20", b"23", b"26", b"29"],
        5: [b"short shard"],
    }
    assert sorted(m.payload for m in grouped) == sorted(
        [b"24", b"27", b"25", b"28", b"26", b"29", b"short shard"]
    )
