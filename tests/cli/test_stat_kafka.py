"""``streamkit stat kafka://`` against the private tansu broker: offsets, times, groups, lag."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.cli.test_stat import one_line_error, stat_json, streamkit
from tests.servers.kafka_broker import KafkaBroker

T0 = 1_700_000_000_000


def produce(broker: KafkaBroker, topic: str, n: int, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": broker.address, "linger.ms": 5})
    for i in range(n):
        producer.produce(topic, b"m%d" % i, partition=i % partitions, timestamp=T0 + i)
        if i % 7 == 6:
            producer.flush()  # several record batches: tansu's ListOffsets misreports the end
    producer.flush()


def consume_and_commit(broker: KafkaBroker, topic: str, group: str, take: dict[int, int]) -> None:
    """Read ``take[p]`` messages of each partition in ``group`` and commit after them."""
    consumer = Consumer(
        {"bootstrap.servers": broker.address, "group.id": group, "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in take])
        seen: dict[int, int] = dict.fromkeys(take, 0)
        deadline = time.monotonic() + 20
        while any(seen[p] < take[p] for p in take) and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            p = message.partition()
            if seen[p] < take[p]:
                seen[p] += 1
        assert seen == take
        offsets = [TopicPartition(topic, p, n) for p, n in take.items()]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def left_in_group(broker: KafkaBroker, topic: str, group: str, partitions: int) -> int:
    """How many messages a member of ``group`` still gets, read up to the end of each partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.address,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        consumer.assign(committed)
        done: set[int] = set()
        count = 0
        deadline = time.monotonic() + 20
        while len(done) < partitions and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    done.add(message.partition())
                continue
            count += 1
        assert len(done) == partitions
        return count
    finally:
        consumer.close()


def groups_and_topics(broker: KafkaBroker) -> tuple[list[str], list[str]]:
    admin = AdminClient({"bootstrap.servers": broker.address})
    groups = sorted(g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid)
    topics = sorted(admin.list_topics(timeout=10).topics)
    return groups, topics


def the_stream(report: dict[str, Any], topic: str) -> dict[str, Any]:
    (stream,) = [s for s in report["streams"] if s["key"] == topic]
    return stream


def test_partitions_offsets_times_and_group_lag(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)
    produce(kafka_broker, topic, 31, 2)  # partition 0: 16, partition 1: 15
    consume_and_commit(kafka_broker, topic, f"{topic}-g", {0: 5, 1: 9})
    report = stat_json(kafka_broker.uri(topic))
    stream = the_stream(report, topic)
    assert stream["messages"] == 31
    p0, p1 = stream["shards"]
    assert (p0["messages"], p0["first_seq"], p0["last_seq"], p0["next_seq"]) == (16, 0, 15, 16)
    assert (p1["messages"], p1["first_seq"], p1["last_seq"], p1["next_seq"]) == (15, 0, 14, 15)
    assert (p0["first_ts"], p0["last_ts"]) == (T0, T0 + 30)
    assert (p1["first_ts"], p1["last_ts"]) == (T0 + 1, T0 + 29)
    (group,) = stream["groups"]
    assert group["name"] == f"{topic}-g"
    assert [(s["shard"], s["committed"], s["lag"]) for s in group["shards"]] == [
        (0, 5, 11),
        (1, 9, 6),
    ]
    assert group["lag"] == 31 - 14
    assert group["pending"] is None  # Kafka has no such figure: null, not 0
    assert left_in_group(kafka_broker, topic, f"{topic}-g", 2) == group["lag"]


def test_a_partition_without_a_commit_has_unknown_lag(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)
    produce(kafka_broker, topic, 10, 2)
    consume_and_commit(kafka_broker, topic, f"{topic}-half", {1: 2})
    group = the_stream(stat_json(kafka_broker.uri(topic)), topic)["groups"][0]
    assert [(s["shard"], s["committed"], s["lag"]) for s in group["shards"]] == [
        (0, None, None),
        (1, 2, 3),
    ]
    assert group["lag"] == 3


def test_tansu_watermark_is_reported_honestly(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    produce(kafka_broker, topic, 40, 1)
    report = stat_json(kafka_broker.uri(topic))
    (shard,) = the_stream(report, topic)["shards"]
    assert shard["messages"] == 40 and shard["next_seq"] == 40
    # tansu answers ListOffsets with the last batch's base offset + 1 (DESIGN §4): said, not used
    probe = Consumer({"bootstrap.servers": kafka_broker.address, "group.id": "x"})
    _, high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    probe.close()
    if high != 40:
        assert any(f"watermark is {high}" in note for note in report["notes"]), report["notes"]


def test_stat_creates_no_topic_and_no_group(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    produce(kafka_broker, topic, 3, 1)
    before = groups_and_topics(kafka_broker)
    missing = kafka_broker.topic("missing")
    one_line_error(
        streamkit("stat", kafka_broker.uri(topic, missing)), 1, "no such stream", repr(missing)
    )
    done = streamkit("stat", kafka_broker.uri(topic))
    assert done.returncode == 0, done.stderr
    assert f"stream {topic}: 3 messages" in done.stdout.decode()
    assert groups_and_topics(kafka_broker) == before


def test_every_topic_when_none_is_named(kafka_broker: KafkaBroker) -> None:
    first, second = kafka_broker.topic(), kafka_broker.topic()
    for name in (first, second):
        kafka_broker.create_topic(name)
        produce(kafka_broker, name, 2, 1)
    report = stat_json(f"kafka://{kafka_broker.address}")
    keys = [s["key"] for s in report["streams"]]
    assert first in keys and second in keys
    assert not any(k.startswith("__") for k in keys)
