"""Consumer groups on a real broker: commits after the downstream write, resuming, sharing."""

from __future__ import annotations

import asyncio

from streamkit.backends.base import ConsumerOptions
from streamkit.message import Message
from tests.backends.kafka.helpers import collect, drain, produce, run, streamer
from tests.servers.kafka_broker import KafkaBroker

# tansu holds a join for about half the session timeout: a short one keeps the tests quick.
FAST_GROUPS = {"session.timeout.ms": "1500", "heartbeat.interval.ms": "100"}


def _group(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.topic("group")


def test_resumable_group_resumes_after_the_last_committed_message(
    kafka_broker: KafkaBroker,
) -> None:
    topic, group = kafka_broker.topic(), _group(kafka_broker)
    kafka_broker.create_topic(topic, partitions=1)
    options = ConsumerOptions(offset="start", mode="resumable", group=group)

    async def main() -> tuple[list[Message], list[Message]]:
        async with streamer(kafka_broker.address, settings=FAST_GROUPS) as s:
            await produce(s, topic, [b"m%d" % i for i in range(10)])
            first = await s.consumer(topic, options)
            got = await collect(first, 10)
            # Only the first six were "written downstream".
            await first.commit(got[:6])
            await first.close()
            second = await s.consumer(topic, options)
            rest = await collect(second, 4)
            await second.commit(rest)
            await second.close()
            return got, rest

    got, rest = run(main())
    assert [m.seq for m in got] == list(range(10))
    # The commit stored seq+1: the resumed member starts at the first unhandled message.
    assert [m.seq for m in rest] == [6, 7, 8, 9]
    assert [m.payload for m in rest] == [b"m6", b"m7", b"m8", b"m9"]


def test_uncommitted_messages_are_delivered_again(kafka_broker: KafkaBroker) -> None:
    topic, group = kafka_broker.topic(), _group(kafka_broker)
    kafka_broker.create_topic(topic, partitions=1)
    options = ConsumerOptions(offset="start", mode="resumable", group=group, follow=False)

    async def main() -> tuple[list[Message], list[Message]]:
        async with streamer(kafka_broker.address, settings=FAST_GROUPS) as s:
            await produce(s, topic, [b"a", b"b", b"c"])
            first = await drain(await s.consumer(topic, options))  # never commits
            second = await drain(await s.consumer(topic, options))
            return first, second

    first, second = run(main())
    assert [m.payload for m in first] == [b"a", b"b", b"c"]
    assert [m.payload for m in second] == [b"a", b"b", b"c"]


def test_no_follow_in_a_group_ends_at_the_start_time_end(kafka_broker: KafkaBroker) -> None:
    """kcat -G hangs here; the run must end although a writer keeps adding messages."""
    topic, group = kafka_broker.topic(), _group(kafka_broker)
    kafka_broker.create_topic(topic, partitions=2)
    options = ConsumerOptions(offset="start", mode="load-balanced", group=group, follow=False)

    async def main() -> tuple[list[Message], int]:
        async with streamer(kafka_broker.address, settings=FAST_GROUPS) as s:
            await produce(
                s, topic, [Message(topic, 0, 0, 0, b"%d" % i, b"%d" % i) for i in range(30)]
            )
            writer = await s.producer(topic)
            stop = asyncio.Event()
            written = 0

            async def keep_writing() -> None:
                nonlocal written
                while not stop.is_set():
                    await writer.send_many([Message(topic, 0, 0, 0, b"late", b"%d" % written)])
                    await writer.flush()
                    written += 1
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(keep_writing())
            consumer = await s.consumer(topic, options)
            out: list[Message] = []
            async for batch in consumer.batches(7):
                out.extend(batch)
                await consumer.commit(batch)
            await consumer.close()
            stop.set()
            await task
            await writer.close()
            return out, written

    got, written = run(main(), timeout=30)
    assert sorted(int(m.payload) for m in got if m.payload != b"late") == list(range(30))
    # The group join takes over a second, so the writer wrote many messages the run ignored.
    assert written > 20
    assert sum(m.payload == b"late" for m in got) < written


def test_load_balanced_members_share_the_partitions(kafka_broker: KafkaBroker) -> None:
    topic, group = kafka_broker.topic(), _group(kafka_broker)
    kafka_broker.create_topic(topic, partitions=4)
    options = ConsumerOptions(offset="start", mode="load-balanced", group=group, follow=False)
    sent = [Message(topic, 0, 0, 0, b"%d" % i, b"key-%d" % i) for i in range(200)]

    async def member(s: object) -> list[Message]:
        consumer = await s.consumer(topic, options)  # type: ignore[attr-defined]
        out: list[Message] = []
        async for batch in consumer.batches(50):
            out.extend(batch)
            await consumer.commit(batch)
            await asyncio.sleep(0.05)  # slow enough for the second member to join
        await consumer.close()
        return out

    async def main() -> tuple[list[Message], list[Message]]:
        async with streamer(kafka_broker.address, settings=FAST_GROUPS) as s:
            await produce(s, topic, sent)
            a, b = await asyncio.gather(member(s), member(s))
            return a, b

    a, b = run(main(), timeout=60)
    everything = sorted(int(m.payload) for m in a + b)
    # At-least-once: nothing lost; a rebalance may hand over a partition (redelivery allowed).
    assert set(everything) == set(range(200))
    assert a and b, "both members received partitions"


def test_a_member_still_reading_outlives_a_rebalance_when_the_other_leaves(
    kafka_broker: KafkaBroker,
) -> None:
    """--no-follow in a group: a member ends once every partition it was given is done. While a
    rebalance has taken its partitions and not yet handed them back it has none, and "none left
    to read" must not count as done, or the partition it was reading is left unread."""
    from confluent_kafka import Producer as RdProducer

    topic, group = kafka_broker.topic(), _group(kafka_broker)
    kafka_broker.create_topic(topic, partitions=2)
    raw = RdProducer({"bootstrap.servers": kafka_broker.address, "linger.ms": 5})
    raw.produce(topic, b"short", partition=0)
    for i in range(300):
        raw.produce(topic, b"long %d" % i, partition=1)
    raw.flush(10)
    del raw
    options = ConsumerOptions(offset="start", mode="load-balanced", group=group, follow=False)

    async def member(s: object, pace: float) -> list[Message]:
        consumer = await s.consumer(topic, options)  # type: ignore[attr-defined]
        out: list[Message] = []
        async for batch in consumer.batches(10):
            out.extend(batch)
            await consumer.commit(batch)
            await asyncio.sleep(pace)  # the reader of the long partition is slow
        await consumer.close()
        return out

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address, settings=FAST_GROUPS) as s:
            a, b = await asyncio.gather(member(s, 0.05), member(s, 0.05))
            return a + b

    got = run(main(), timeout=90)
    payloads = {m.payload for m in got}
    assert payloads == {b"short"} | {b"long %d" % i for i in range(300)}
