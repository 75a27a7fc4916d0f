"""Kafka faults: unreachable broker, bad settings, unknown topics, failed deliveries, restarts."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from streamkit.backends.base import ConsumerOptions, ProducerOptions
from streamkit.errors import BackendError, ConnectError, UsageError
from streamkit.message import Message
from tests.backends.kafka.helpers import collect, drain, produce, run, streamer
from tests.servers.kafka_broker import KafkaBroker


def test_a_silent_broker_fails_after_the_connect_timeout() -> None:
    """A port that accepts connections but never answers: librdkafka waits the timeout
    (a refused connection fails at once, test_kafka.py)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"

        async def main() -> None:
            async with streamer(address, connect_timeout=1.0):
                pass

        started = time.monotonic()
        with pytest.raises(ConnectError) as info:
            run(main())
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    text = str(info.value)
    assert address in text and "1s" in text
    assert "\n" not in text


def test_unknown_setting_is_one_line_naming_it(kafka_broker: KafkaBroker) -> None:
    async def main() -> None:
        async with streamer(kafka_broker.address, settings={"no.such.setting": "1"}):
            pass

    with pytest.raises(UsageError) as info:
        run(main())
    text = str(info.value)
    assert "no.such.setting" in text and "\n" not in text
    assert info.value.where == "-X no.such.setting=1"


def test_bad_setting_value_names_the_setting(kafka_broker: KafkaBroker) -> None:
    async def main() -> None:
        async with streamer(kafka_broker.address, settings={"linger.ms": "soon"}):
            pass

    with pytest.raises(UsageError) as info:
        run(main())
    assert "linger.ms" in str(info.value)


def test_consumer_of_unknown_topic_names_it(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic("missing")

    async def main() -> None:
        async with streamer(kafka_broker.address) as s:
            await s.consumer(topic, offset="start")

    with pytest.raises(BackendError) as info:
        run(main())
    assert f"Kafka topic {topic!r} does not exist" in str(info.value)


def test_producer_to_unknown_topic_without_auto_creation_names_it(
    kafka_broker: KafkaBroker,
) -> None:
    """The producer asks the broker not to create topics, as a broker with creation off would."""
    topic = kafka_broker.topic("missing")

    async def main() -> None:
        async with streamer(
            kafka_broker.address, settings={"allow.auto.create.topics": "false"}
        ) as s:
            await s.producer(topic)

    with pytest.raises(BackendError) as info:
        run(main())
    assert repr(topic) in str(info.value) and "does not exist" in str(info.value)


def test_options_kafka_cannot_honour_are_refused(kafka_broker: KafkaBroker) -> None:
    async def main() -> None:
        async with streamer(kafka_broker.address) as s:
            await s.producer(kafka_broker.topic(), ProducerOptions(maxlen=10))

    with pytest.raises(UsageError) as info:
        run(main())
    assert "--maxlen" in str(info.value)


def test_failed_delivery_raises_from_flush(kafka_restartable: KafkaBroker) -> None:
    topic = kafka_restartable.topic()
    kafka_restartable.create_topic(topic, partitions=1)

    async def main() -> None:
        async with streamer(
            kafka_restartable.address, settings={"message.timeout.ms": "1500"}
        ) as s:
            producer = await s.producer(topic)
            kafka_restartable.stop()
            await producer.send_many([b"doomed-1", b"doomed-2"])
            try:
                await producer.flush()
            finally:
                kafka_restartable.start()

    with pytest.raises(BackendError) as info:
        run(main())
    text = str(info.value)
    assert "2 message(s) could not be delivered" in text and topic in text


def test_producer_and_consumer_ride_out_a_broker_restart(kafka_restartable: KafkaBroker) -> None:
    """Memory-only broker: a restart loses the broker's data, but nothing streamkit accepted.

    Phase 1 is consumed before the restart; phase 2 is sent while the broker is down and must
    arrive after it is back, at the same consumer, which kept following throughout.
    """
    topic = kafka_restartable.topic()
    kafka_restartable.create_topic(topic, partitions=1)

    async def main() -> tuple[list[Message], list[Message]]:
        async with streamer(kafka_restartable.address) as s:
            producer = await s.producer(topic)
            consumer = await s.consumer(topic, ConsumerOptions(offset="start"))
            await producer.send_many([b"before-%d" % i for i in range(300)])
            await producer.flush()
            first = await collect(consumer, 300)
            kafka_restartable.stop()
            await producer.send_many([b"during-%d" % i for i in range(300)])
            await asyncio.sleep(1.0)
            await asyncio.to_thread(kafka_restartable.start)
            await producer.flush()
            second = await collect(consumer, 300, timeout=30)
            await consumer.close()
            await producer.close()
            return first, second

    first, second = run(main(), timeout=90)
    assert [m.payload for m in first] == [b"before-%d" % i for i in range(300)]
    assert [m.payload for m in second] == [b"during-%d" % i for i in range(300)]


def test_group_consumer_resumes_after_restart_without_loss(kafka_restartable: KafkaBroker) -> None:
    """A group member keeps going across a restart; nothing sent is missing at the end."""
    topic = kafka_restartable.topic()
    kafka_restartable.create_topic(topic, partitions=2)
    settings = {"session.timeout.ms": "1500", "heartbeat.interval.ms": "100"}
    options = ConsumerOptions(offset="start", mode="resumable", group="g-restart")

    async def main() -> list[Message]:
        async with streamer(kafka_restartable.address, settings=settings) as s:
            consumer = await s.consumer(topic, options)
            await produce(
                s, topic, [Message(topic, 0, 0, 0, b"a%d" % i, b"%d" % i) for i in range(100)]
            )
            got = await collect(consumer, 100)
            await consumer.commit(got)
            await asyncio.to_thread(kafka_restartable.restart, 0.5)
            producer = await s.producer(topic)
            await producer.send_many(
                [Message(topic, 0, 0, 0, b"b%d" % i, b"%d" % i) for i in range(100)]
            )
            await producer.flush()
            more: list[Message] = []
            while not {b"b%d" % i for i in range(100)} <= {m.payload for m in more}:
                batch = await collect(consumer, 1, timeout=30)
                more += batch
                await consumer.commit(batch)
            await consumer.close()
            await producer.close()
            return got + more

    got = run(main(), timeout=90)
    payloads = {m.payload for m in got}
    assert {b"a%d" % i for i in range(100)} | {b"b%d" % i for i in range(100)} <= payloads


def test_drain_of_restarted_empty_topic_is_still_a_clean_error(
    kafka_restartable: KafkaBroker,
) -> None:
    """After a memory broker restart the topic is gone: a new reader gets the clear error."""
    topic = kafka_restartable.topic()
    kafka_restartable.create_topic(topic, partitions=1)
    kafka_restartable.restart()

    async def main() -> None:
        async with streamer(kafka_restartable.address) as s:
            await drain(await s.consumer(topic, offset="start", follow=False))

    with pytest.raises(BackendError, match="does not exist"):
        run(main())
