"""Kafka backend against a real broker: mapping, positions, time windows, ends, partitioning."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from streamkit.backends.base import ConsumerOptions
from streamkit.errors import EndOfStream
from streamkit.message import Message, now_ms
from tests.backends.kafka.helpers import collect, drain, messages, produce, run, streamer
from tests.servers.kafka_broker import KafkaBroker

pytestmark = pytest.mark.usefixtures("produce_loop")  # the pure produce path, then the C loop


async def produce_then_read_all(
    broker: KafkaBroker, topic: str, sent: list[Message]
) -> list[Message]:
    async with streamer(broker.address) as s:
        await produce(s, topic, sent)
        return await drain(await s.consumer(topic, offset="start", follow=False))


def test_roundtrip_keeps_payload_key_headers_and_timestamp(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=3)
    sent = [
        Message(
            topic, 0, 0, 1_700_000_000_000 + i, b"v%d" % i, b"k%d" % (i % 4), (("h", b"%d" % i),)
        )
        for i in range(40)
    ]

    got = run(produce_then_read_all(kafka_broker, topic, sent))
    assert sorted((m.payload, m.key, m.headers, m.timestamp) for m in got) == sorted(
        (m.payload, m.key, m.headers, m.timestamp) for m in sent
    )
    by_key: dict[bytes | None, set[int]] = {}
    for m in got:
        assert m.stream_key == topic
        by_key.setdefault(m.key, set()).add(m.shard_id)
    # The key decides the partition: one partition per key.
    assert all(len(shards) == 1 for shards in by_key.values())
    for shard in {m.shard_id for m in got}:
        seqs = [m.seq for m in got if m.shard_id == shard]
        assert seqs == list(range(len(seqs)))


def test_plain_payloads_get_broker_time_and_empty_key(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    before = now_ms()

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, [b"a", "b"])
            return await drain(await s.consumer(topic, offset="start", follow=False))

    got = run(main())
    assert sorted(m.payload for m in got) == [b"a", b"b"]
    assert all(m.key is None and m.headers == () for m in got)
    assert all(before - 1000 <= m.timestamp <= now_ms() + 1000 for m in got)


def test_offset_n_starts_at_n_inclusive(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, messages(topic, 20))
            return await drain(await s.consumer(topic, offset=7, follow=False))

    got = run(main())
    assert [m.seq for m in got] == list(range(7, 20))
    assert got[0].payload == b"payload-7"


def test_offset_end_delivers_only_new_messages(kafka_broker: KafkaBroker) -> None:
    """A big first batch makes tansu's ListOffsets high mark wrong; end must still be the end."""
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, messages(topic, 3000))
            consumer = await s.consumer(topic, offset="end")
            await produce(s, topic, [b"new-1", b"new-2", b"new-3"])
            got = await collect(consumer, 3)
            with pytest.raises(TimeoutError):
                await collect(consumer, 1, timeout=0.5)
            await consumer.close()
            return got

    got = run(main())
    assert sorted(m.payload for m in got) == [b"new-1", b"new-2", b"new-3"]


def test_default_position_is_end_and_follows(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, [b"old"])
            consumer = await s.consumer(topic)
            got: list[Message] = []
            for i in range(3):  # several waits: it keeps following
                await produce(s, topic, [b"live-%d" % i])
                got += await collect(consumer, 1)
            await consumer.close()
            return got

    assert [m.payload for m in run(main())] == [b"live-0", b"live-1", b"live-2"]


def test_since_and_until_select_a_time_window(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)
    sent = [
        Message(topic, 0, 0, 1_700_000_000_000 + 10 * i, b"%d" % i, b"k%d" % i, ())
        for i in range(50)
    ]

    async def main() -> tuple[list[Message], list[Message], list[Message]]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, sent)
            window = await drain(
                await s.consumer(
                    topic, since=1_700_000_000_100, until=1_700_000_000_200, follow=False
                )
            )
            since_only = await drain(await s.consumer(topic, since=1_700_000_000_450, follow=False))
            # until in the past ends a following consumer too, once every partition is read.
            until_follow = await drain(
                await s.consumer(topic, offset="start", until=1_700_000_000_030)
            )
            return window, since_only, until_follow

    window, since_only, until_follow = run(main())
    assert sorted(int(m.payload) for m in window) == list(range(10, 21))
    assert sorted(int(m.payload) for m in since_only) == list(range(45, 50))
    assert sorted(int(m.payload) for m in until_follow) == [0, 1, 2, 3]


def test_since_later_than_everything_starts_at_the_end(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, messages(topic, 100))
            consumer = await s.consumer(topic, since=now_ms() - 1000)
            await produce(s, topic, [b"fresh"])
            got = await collect(consumer, 1)
            await consumer.close()
            return got

    assert [m.payload for m in run(main())] == [b"fresh"]


def test_verbose_prints_start_position_per_partition(
    kafka_broker: KafkaBroker, capfd: pytest.CaptureFixture[str]
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)

    async def main() -> None:
        async with streamer(kafka_broker.address, verbose=True) as s:
            await produce(
                s,
                topic,
                [
                    Message(topic, 0, 0, 1_700_000_000_000 + i, b"x", b"%d" % i, ())
                    for i in range(10)
                ],
            )
            await drain(await s.consumer(topic, since=1_700_000_000_005, follow=False))

    run(main())
    err = capfd.readouterr().err
    assert f"{topic}[0] starts at offset" in err
    assert f"{topic}[1] starts at offset" in err
    assert "since 2023-11-14T22:13:20.005" in err


def test_no_follow_stops_at_the_end_fixed_at_start_while_writers_continue(
    kafka_broker: KafkaBroker,
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)

    async def main() -> tuple[list[Message], int]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, [b"before-%d" % i for i in range(2000)])
            writer = await s.producer(topic)
            written = 0
            stop = asyncio.Event()

            async def keep_writing() -> None:
                nonlocal written
                while not stop.is_set():
                    await writer.send_many([b"after-%d" % (written + i) for i in range(50)])
                    await writer.flush()
                    written += 50
                    await asyncio.sleep(0.005)

            task = asyncio.create_task(keep_writing())
            await asyncio.sleep(0.2)
            consumer = await s.consumer(topic, offset="start", follow=False)
            got = await drain(consumer)
            stop.set()
            await task
            await writer.close()
            return got, written

    got, written = run(main())
    payloads = [m.payload for m in got]
    assert written > 0
    assert sum(p.startswith(b"before-") for p in payloads) == 2000
    assert len(set(payloads)) == len(payloads)
    # Writers continued after the run started; the consumer stopped anyway, before all of it.
    assert len(payloads) < 2000 + written + 50


def test_no_follow_on_an_empty_topic_ends_at_once(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=3)

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            return await drain(await s.consumer(topic, offset="start", follow=False))

    assert run(main(), timeout=15) == []


def test_stop_ends_a_following_consumer(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)

    async def main() -> None:
        async with streamer(kafka_broker.address) as s:
            consumer = await s.consumer(topic)
            waiting = asyncio.create_task(consumer.next_batch())
            await asyncio.sleep(0.3)
            consumer.stop()
            with pytest.raises(EndOfStream):
                await asyncio.wait_for(waiting, 2)
            await consumer.close()

    run(main())


def test_partition_by_json_field_sets_the_record_key(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=4)
    users = ["ann", "bob", "cyd", "dan", "eve"]
    payloads = [json.dumps({"user": users[i % 5], "n": i}).encode() for i in range(100)]
    payloads.append(b"not json")

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, payloads, partition_by="user")
            return await drain(await s.consumer(topic, offset="start", follow=False))

    got = run(main())
    assert len(got) == 101
    shards: dict[str, set[int]] = {}
    for m in got:
        if m.payload == b"not json":
            assert m.key is None
            continue
        user = json.loads(m.payload)["user"]
        assert m.key == user.encode()
        shards.setdefault(user, set()).add(m.shard_id)
    assert all(len(s) == 1 for s in shards.values())
    # Per-user order survives because a user lives in one partition.
    for user in users:
        ns = [
            json.loads(m.payload)["n"]
            for m in sorted(got, key=lambda m: m.seq)
            if m.key == user.encode()
        ]
        assert ns == sorted(ns)


def test_consumer_of_several_topics(kafka_broker: KafkaBroker) -> None:
    a, b = kafka_broker.topic("a"), kafka_broker.topic("b")

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, a, [b"1", b"2"])
            await produce(s, b, [b"3"])
            return await drain(
                await s.consumer([a, b], ConsumerOptions(offset="start", follow=False))
            )

    got = run(main())
    assert sorted((m.stream_key, m.payload) for m in got) == [(a, b"1"), (a, b"2"), (b, b"3")]


def test_generic_producer_writes_each_message_to_its_own_topic(kafka_broker: KafkaBroker) -> None:
    a, b = kafka_broker.topic("a"), kafka_broker.topic("b")

    async def main() -> tuple[list[Message], list[Message]]:
        async with streamer(kafka_broker.address) as s:
            producer = await s.producer()
            await producer.send_many(
                [
                    Message(a, 0, 0, 1_700_000_000_001, b"x"),
                    Message(b, 0, 0, 1_700_000_000_002, b"y"),
                ]
            )
            await producer.close()
            return (
                await drain(await s.consumer(a, offset="start", follow=False)),
                await drain(await s.consumer(b, offset="start", follow=False)),
            )

    got_a, got_b = run(main())
    assert [(m.payload, m.timestamp) for m in got_a] == [(b"x", 1_700_000_000_001)]
    assert [(m.payload, m.timestamp) for m in got_b] == [(b"y", 1_700_000_000_002)]


def test_a_large_batch_without_headers_keeps_keys_timestamps_and_order(
    kafka_broker: KafkaBroker,
) -> None:
    # Batches of Messages for one topic take the column-wise produce path.
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)
    sent = [
        Message(topic, 0, 0, 1_700_000_000_000 + i, b"v%d" % i, b"k%d" % (i % 3) if i % 5 else None)
        for i in range(3000)
    ]

    got = run(produce_then_read_all(kafka_broker, topic, sent))
    assert sorted((m.payload, m.key, m.timestamp) for m in got) == sorted(
        (m.payload, m.key, m.timestamp) for m in sent
    )
    for shard in {m.shard_id for m in got}:  # per partition, in the order sent
        payloads = [m.payload for m in got if m.shard_id == shard]
        assert payloads == [p for p in (m.payload for m in sent) if p in set(payloads)]


@pytest.mark.parametrize("queue_limit", [None, "7"])
def test_a_refused_record_mid_batch_fails_after_producing_the_ones_before(
    kafka_broker: KafkaBroker, queue_limit: str | None
) -> None:
    # Record 20 is over message.max.bytes: produce() refuses it synchronously. With a queue of
    # 7 messages, librdkafka's queue also fills (BufferError) several times before that.
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic)
    sent = messages(topic, 40)
    sent[20] = Message(topic, 0, 0, 1_700_000_000_000, b"x" * 3_000_000)
    settings = {"queue.buffering.max.messages": queue_limit} if queue_limit else {}

    async def main() -> tuple[str, list[Message]]:
        async with streamer(kafka_broker.address, settings=settings) as s:
            producer = await s.producer(topic)
            with pytest.raises(Exception) as failure:
                await producer.send_many(sent)
            await producer.close()
            return str(failure.value), await drain(
                await s.consumer(topic, offset="start", follow=False)
            )

    error, got = run(main())
    assert topic in error and "large" in error.lower()
    assert [m.payload for m in got] == [m.payload for m in sent[:20]]


def test_offset_minus_n_is_the_last_n_of_each_partition(kafka_broker: KafkaBroker) -> None:
    """Many record batches per partition: tansu's ListOffsets high watermark is a batch short
    there, so the ends come from a fetch."""
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=3)
    sent = [
        Message(topic, 0, 0, 1_700_000_000_000 + i, b"v%d" % i, b"k%d" % (i % 7), ())
        for i in range(6000)
    ]

    async def main() -> tuple[list[Message], list[Message], list[Message]]:
        async with streamer(kafka_broker.address) as s:
            for start in range(0, len(sent), 500):
                await produce(s, topic, sent[start : start + 500])
            everything = await drain(await s.consumer(topic, offset="start", follow=False))
            last = await drain(await s.consumer(topic, offset=-4, follow=False))
            following = await s.consumer(topic, offset=-1)
            tails = await collect(following, 3)
            await following.close()
            return everything, last, tails

    everything, last, tails = run(main())
    assert len(everything) == 6000
    expected: list[tuple[int, int, bytes]] = []
    for partition in sorted({m.shard_id for m in everything}):
        mine = sorted((m.seq, m.payload) for m in everything if m.shard_id == partition)
        expected += [(partition, seq, payload) for seq, payload in mine[-4:]]
    assert sorted((m.shard_id, m.seq, m.payload) for m in last) == expected
    assert sorted((m.shard_id, m.seq, m.payload) for m in tails) == expected[3::4]


def test_a_refused_connection_fails_at_once_naming_the_broker() -> None:
    from streamkit.errors import ConnectError
    from tests.servers.kafka_broker import free_port

    address = f"127.0.0.1:{free_port()}"

    async def main() -> None:
        async with streamer(address):  # default connect_timeout: 10 s
            pass

    started = time.monotonic()
    with pytest.raises(
        ConnectError, match=f"no Kafka broker at {address} \\(connection refused\\)"
    ):
        run(main())
    assert time.monotonic() - started < 2.0
