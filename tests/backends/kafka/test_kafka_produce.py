"""The Kafka producer's fast paths against a real broker: what they must not change."""

from __future__ import annotations

from collections import UserList
from collections.abc import Callable, Sequence

import pytest
from confluent_kafka.admin import AdminClient

from streamkit.backends.kafka.producer import KafkaProducer
from streamkit.errors import BackendError
from streamkit.message import Message, ReadTime, now_ms
from tests.backends.kafka.helpers import drain, messages, produce, run, streamer
from tests.servers.kafka_broker import KafkaBroker

Container = Callable[[list[Message]], Sequence[Message]]

pytestmark = pytest.mark.usefixtures("produce_loop")  # the pure path, then the C loop


@pytest.mark.parametrize("container", [tuple, UserList], ids=["tuple", "UserList"])
def test_a_refused_record_in_any_sequence_fails_after_the_ones_before(
    kafka_broker: KafkaBroker, container: Container
) -> None:
    # Where the column-wise path resumes after a refused record must not depend on the kind
    # of sequence it was given (a list is covered in test_kafka.py).
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic)
    sent = messages(topic, 40)
    sent[25] = Message(topic, 0, 0, 1_700_000_000_000, b"x" * 3_000_000)

    async def main() -> tuple[str, list[Message]]:
        async with streamer(kafka_broker.address) as s:
            producer = await s.producer(topic)
            with pytest.raises(BackendError) as failure:
                await producer.send_many(container(sent))
            await producer.close()
            return str(failure.value), await drain(
                await s.consumer(topic, offset="start", follow=False)
            )

    error, got = run(main())
    assert topic in error and "large" in error.lower()
    assert [m.payload for m in got] == [m.payload for m in sent[:25]]


def test_a_batch_mixing_messages_bytes_and_str_delivers_all_in_order(
    kafka_broker: KafkaBroker,
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic)
    sent: list[Message | bytes | str] = [*messages(topic, 30)]
    sent[10] = b"raw bytes"
    sent[20] = "text"

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, sent)
            return await drain(await s.consumer(topic, offset="start", follow=False))

    got = run(main())
    expected = [
        item.payload if isinstance(item, Message) else bytes(item, "utf-8")
        if isinstance(item, str) else item
        for item in sent
    ]  # fmt: skip
    assert [m.payload for m in got] == expected
    assert got[5].timestamp == 1_700_000_000_005


def test_a_topic_deleted_after_connecting_is_an_error_not_a_silent_loss(
    kafka_broker: KafkaBroker,
) -> None:
    """The connect-time listing lets a producer skip its own topic check; a topic deleted
    after that listing fails the delivery, and close() says which topic."""
    topic = kafka_broker.topic("gone")
    kafka_broker.create_topic(topic)
    settings = {"allow.auto.create.topics": "false", "topic.metadata.propagation.max.ms": "200"}

    async def main() -> None:
        async with streamer(kafka_broker.address, settings=settings) as s:
            admin = AdminClient({"bootstrap.servers": kafka_broker.address})
            for future in admin.delete_topics([topic]).values():
                future.result(10)
            producer = await s.producer(topic)
            await producer.send_many(messages(topic, 50))
            await producer.close()

    with pytest.raises(BackendError) as info:
        run(main())
    assert repr(topic) in str(info.value)
    assert "does not exist" in str(info.value) or "could not be delivered" in str(info.value)


def _varied(topic: str, count: int) -> list[Message]:
    """Messages with keys, timestamps and, on some, headers (an empty header value included)."""
    return [
        Message(
            topic,
            0,
            0,
            1_600_000_000_000 + 7 * i,
            b"value-%d" % i,
            b"k%d" % (i % 4) if i % 3 else None,
            (("h", b"%d" % i), ("empty", b"")) if i % 5 == 2 else (),
        )
        for i in range(count)
    ]


def test_a_full_queue_mid_batch_delivers_every_record_once_in_order(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # librdkafka's queue holds 5 messages: produce() refuses records mid-batch (BufferError),
    # the producer waits for room and retries exactly the refused one, then goes on.
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic)
    sent = _varied(topic, 300)
    waits = []
    wait_for_room = KafkaProducer._produce_when_room

    async def counting(self: KafkaProducer, args: tuple[object, ...]) -> None:
        waits.append(args[1])
        await wait_for_room(self, args)

    monkeypatch.setattr(KafkaProducer, "_produce_when_room", counting)

    async def main() -> list[Message]:
        settings = {"queue.buffering.max.messages": "5"}
        async with streamer(kafka_broker.address, settings=settings) as s:
            producer = await s.producer(topic)
            await producer.send_many(sent[:150])
            await producer.send_many(tuple(sent[150:]))
            await producer.close()
            return await drain(await s.consumer(topic, offset="start", follow=False))

    got = run(main())
    assert waits and len(waits) < len(sent)  # refused mid-batch, more than once is fine
    assert [(m.payload, m.key, m.timestamp, m.headers) for m in got] == [
        (m.payload, m.key, m.timestamp, m.headers) for m in sent
    ]


def test_a_batch_alternating_topics_without_a_stream_key_reaches_each_topic(
    kafka_broker: KafkaBroker,
) -> None:
    # Without a stream key each Message names its topic; the C loop stops where the topic
    # changes and the per-item path sends that record.
    first, second = kafka_broker.topic(), kafka_broker.topic()
    kafka_broker.create_topic(first)
    kafka_broker.create_topic(second)
    sent = _varied(first, 60)
    for i in range(0, 60, 7):
        sent[i] = _varied(second, 60)[i]

    async def main() -> tuple[list[Message], list[Message]]:
        async with streamer(kafka_broker.address) as s:
            producer = await s.producer(None)
            await producer.send_many(sent)
            await producer.close()
            return (
                await drain(await s.consumer(first, offset="start", follow=False)),
                await drain(await s.consumer(second, offset="start", follow=False)),
            )

    got_first, got_second = run(main())
    for got, topic in ((got_first, first), (got_second, second)):
        assert [(m.payload, m.key, m.timestamp) for m in got] == [
            (m.payload, m.key, m.timestamp) for m in sent if m.stream_key == topic
        ]


def test_a_time_filled_in_at_reading_is_stamped_by_the_client_and_a_carried_one_kept(
    kafka_broker: KafkaBroker,
) -> None:
    # A ReadTime (a line that carried no time) goes as CreateTime 0: the client stamps the
    # record as it takes it, so a stale fill-in time shows that it was not sent. A time the
    # data carries, with or without key and headers, arrives exactly.
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic)
    stale = ReadTime(1_600_000_000_000)
    sent = [
        Message(topic, 0, 0, stale, b"plain"),
        Message(topic, 0, 1, stale, b"keyed", key=b"k"),
        Message(topic, 0, 2, stale, b"with headers", headers=(("h", b"v"),)),
        Message(topic, 0, 3, 1_700_000_000_003, b"carried"),
        Message(topic, 0, 4, 1_700_000_000_004, b"carried, keyed", key=b"k"),
    ] * 10  # past the pure path's per-item threshold (16) as well

    async def main() -> list[Message]:
        async with streamer(kafka_broker.address) as s:
            await produce(s, topic, sent)
            return await drain(await s.consumer(topic, offset="start", follow=False))

    before = now_ms()
    got = run(main())
    after = now_ms()
    assert [(m.payload, m.key, m.headers) for m in got] == [
        (m.payload, m.key, m.headers) for m in sent
    ]
    for m, original in zip(got, sent):
        if type(original.timestamp) is ReadTime:
            assert before - 1000 <= m.timestamp <= after + 1000, m
        else:
            assert m.timestamp == original.timestamp
