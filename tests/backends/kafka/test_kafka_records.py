"""The C conversion of consumed records (``_speedups.kafka_records``) against the Python loop.

Runs of plain records go through C; a record with headers, a null value or at a partition's
end goes through the Python loop. Both must deliver the same Messages in the same order."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Producer

from streamkit.backends.kafka import consumer as kafka_consumer
from streamkit.formats import _speedups, line_compiled
from streamkit.message import Message
from tests.backends.kafka.helpers import collect, drain, run, streamer
from tests.servers.kafka_broker import KafkaBroker

assert line_compiled  # imported for _speedups.configure(Message)


def _fill(broker: KafkaBroker, topic: str, count: int) -> None:
    """Plain records with, here and there, headers (one null-valued), a null value, no key."""
    producer = Producer({"bootstrap.servers": broker.address})
    for i in range(count):
        headers: list[tuple[str, str | bytes | None]] | None = None
        if i % 7 == 3:
            headers = [("h", b"%d" % i), ("n", None)]
        value = None if i % 11 == 5 else b"v%d" % i
        key = None if i % 5 == 0 else b"k%d" % (i % 3)
        producer.produce(
            topic, value, key, partition=i % 2, timestamp=1_700_000_000_000 + i, headers=headers
        )
    assert producer.flush(10) == 0


def _read(broker: KafkaBroker, topic: str, follow: bool, count: int) -> list[Message]:
    async def main() -> list[Message]:
        async with streamer(broker.address) as s:
            consumer = await s.consumer(topic, offset="start", follow=follow)
            if not follow:
                return await drain(consumer, 50)
            try:
                return await collect(consumer, count)
            finally:
                await consumer.close()

    return run(main())


def _expected(topic: str, count: int) -> list[tuple[object, ...]]:
    rows = []
    for i in range(count):
        headers = (("h", b"%d" % i), ("n", b"")) if i % 7 == 3 else ()
        value = b"" if i % 11 == 5 else b"v%d" % i
        key = None if i % 5 == 0 else b"k%d" % (i % 3)
        rows.append((topic, i % 2, i // 2, 1_700_000_000_000 + i, value, key, headers))
    return sorted(rows, key=lambda r: (r[1], r[2]))


def _rows(got: list[Message]) -> list[tuple[object, ...]]:
    return [
        (m.stream_key, m.shard_id, m.seq, m.timestamp, m.payload, m.key, m.headers) for m in got
    ]


@pytest.mark.parametrize("follow", [False, True])
def test_c_and_python_conversion_deliver_the_same_messages(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch, follow: bool
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)
    _fill(kafka_broker, topic, 300)

    records = _speedups.kafka_records  # also under STREAMKIT_PURE_PYTHON=1
    converted = []

    def counting(raw: list[Any], i: int, *rest: Any) -> int:
        end = records(raw, i, *rest)
        converted.append(end - i)
        return end

    monkeypatch.setattr(kafka_consumer, "_records", counting)
    fast = sorted(_read(kafka_broker, topic, follow, 300), key=lambda m: (m.shard_id, m.seq))
    monkeypatch.setattr(kafka_consumer, "_records", None)
    slow = sorted(_read(kafka_broker, topic, follow, 300), key=lambda m: (m.shard_id, m.seq))

    assert _rows(fast) == _expected(topic, 300)
    assert fast == slow
    # C took the plain runs: all but the 66 records with headers or a null value (and, with
    # an end, the last of each partition).
    assert 300 - 66 - 2 <= sum(converted) <= 300 - 66
    assert all(m.line is None for m in fast)
