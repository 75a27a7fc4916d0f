"""The direct Kafka → stdout relay (``next_lines``, ``KafkaLinesRelay``) on real records.

Each test reads the same records twice from the private broker, through the Message path
(``next_batch``, then ``encode_lines`` as the stdio producer writes) and through the direct
path with the C loop and with its pure twin, and asks for the same bytes and errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from confluent_kafka import Producer

from streamkit.backends.base import ProducerOptions
from streamkit.backends.kafka import consumer as kafka_consumer
from streamkit.backends.kafka.relay import KafkaLinesRelay
from streamkit.backends.stdio.writer import StdioProducer, _StdoutWriter
from streamkit.errors import DataError, EndOfStream
from streamkit.formats import _speedups, codec
from streamkit.formats.kafka_lines import kafka_lines as pure_kafka_lines
from streamkit.formats.printing.template import Template
from tests.backends.kafka.helpers import run, streamer
from tests.servers.kafka_broker import KafkaBroker

STREAMKIT = [sys.executable, "-c", "from streamkit.cli.main import main; main()"]
LOOPS = {"C": _speedups.kafka_lines, "pure": pure_kafka_lines}
VALUES: list[bytes | None] = [
    None,
    b"",
    b" lead",
    b"\tx",
    b"   ",
    "café ✓".encode(),
    b"{}",
    b"x\r",
]


def _fill(broker: KafkaBroker, topic: str, count: int, partitions: int) -> None:
    """Plain records, and here and there the values, keys and headers the loops leave out."""
    producer = Producer({"bootstrap.servers": broker.address})
    for i in range(count):
        value = VALUES[i // 7 % len(VALUES)] if i % 7 == 3 else b"v%d" % i
        headers = [("h", b"%d" % i), ("n", None)] if i % 5 == 2 else None
        producer.produce(
            topic,
            value,
            None if i % 4 else b"k%d" % i,
            partition=i % partitions,
            timestamp=1_700_000_000_000 + i * 1001,
            headers=headers,
        )
    assert producer.flush(10) == 0


def _message_path(broker: KafkaBroker, topic: str, out_key: str | None, **options: Any) -> bytes:
    async def main() -> bytes:
        async with streamer(broker.address) as s:
            consumer = await s.consumer(topic, **options)
            out = bytearray()
            try:
                async for batch in consumer.batches(50):
                    out += codec.encode_lines(batch, out_key)
            finally:
                await consumer.close()
            return bytes(out)

    return run(main())


def _direct(
    broker: KafkaBroker,
    topic: str | list[str],
    out_key: str | None,
    batch: int = 50,
    **options: Any,
) -> tuple[bytes, int, DataError | None]:
    async def main() -> tuple[bytes, int, DataError | None]:
        async with streamer(broker.address) as s:
            consumer = await s.consumer(topic, **options)
            out = bytearray()
            count = 0
            try:
                while True:
                    count += await consumer.next_lines(batch, out_key, out)
            except EndOfStream:
                return bytes(out), count, None
            except DataError as error:
                return bytes(out), count, error
            finally:
                await consumer.close()

    return run(main())


def _by_partition(data: bytes) -> dict[str, list[bytes]]:
    """The lines of each partition in order (partitions interleave differently per run)."""
    lines: dict[str, list[bytes]] = {}
    for line in data.splitlines():
        shard = line.split(b"] ", 1)[0].rsplit(b" | ", 1)[1].rstrip(b"]")
        lines.setdefault(shard.decode(), []).append(line)
    return lines


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize("out_key", [None, "renamed"])
def test_direct_lines_are_the_message_paths_bytes(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch, loop: str, out_key: str | None
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    _fill(kafka_broker, topic, 400, 1)
    expected = _message_path(kafka_broker, topic, out_key, offset="start", follow=False)
    monkeypatch.setattr(kafka_consumer, "_lines", LOOPS[loop])
    data, count, error = _direct(kafka_broker, topic, out_key, offset="start", follow=False)
    assert error is None
    assert count == 400 == expected.count(b"\n")
    assert data == expected
    assert b"| 0] \xe2\x9c\x93" not in data and "] café ✓\n".encode() in data


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize(
    "options",
    [
        {"offset": "start", "follow": False},  # the ends: the last of each partition via Python
        {"offset": -30, "follow": False},
        {"offset": "start", "follow": False, "since": 1_700_000_000_000 + 100 * 1001},
        {"offset": "start", "follow": False, "until": 1_700_000_000_000 + 250 * 1001},
    ],
)
def test_several_partitions_ends_and_windows(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch, loop: str, options: Any
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=3)
    _fill(kafka_broker, topic, 300, 3)
    expected = _message_path(kafka_broker, topic, None, **options)
    monkeypatch.setattr(kafka_consumer, "_lines", LOOPS[loop])
    data, count, error = _direct(kafka_broker, topic, None, batch=37, **options)
    assert error is None
    assert count == expected.count(b"\n") > 0
    assert _by_partition(data) == _by_partition(expected)


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize("follow", [True, False])
def test_two_topics(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch, loop: str, follow: bool
) -> None:
    first, second = kafka_broker.topic("a"), kafka_broker.topic("b")
    for topic in (first, second):
        kafka_broker.create_topic(topic, partitions=1)
        _fill(kafka_broker, topic, 60, 1)
    monkeypatch.setattr(kafka_consumer, "_lines", LOOPS[loop])

    async def following() -> bytes:
        async with streamer(kafka_broker.address) as s:
            consumer = await s.consumer([first, second], offset="start")
            out = bytearray()
            count = 0
            try:
                while count < 120:
                    count += await consumer.next_lines(50, None, out)
            finally:
                await consumer.close()
            assert count == 120
            return bytes(out)

    if follow:
        data = run(following())
    else:  # the ends of two topics: the whole batch through the Message path
        data, count, error = _direct(
            kafka_broker, [first, second], None, offset="start", follow=False
        )
        assert error is None and count == 120
    expected = _message_path(kafka_broker, first, None, offset="start", follow=False)
    expected += _message_path(kafka_broker, second, None, offset="start", follow=False)
    assert sorted(data.splitlines()) == sorted(expected.splitlines())
    for topic in (first, second):
        mine = [line for line in data.splitlines() if f"| {topic} |".encode() in line]
        assert mine == [line for line in expected.splitlines() if f"| {topic} |".encode() in line]


@pytest.mark.parametrize("loop", list(LOOPS))
def test_a_payload_the_format_cannot_carry_fails_after_the_lines_before_it(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    producer = Producer({"bootstrap.servers": kafka_broker.address})
    for i in range(20):
        value = b"bad\nline" if i == 12 else b"\xff" if i == 15 else b"v%d" % i
        producer.produce(topic, value, partition=0, timestamp=1_700_000_000_000 + i)
    assert producer.flush(10) == 0
    monkeypatch.setattr(kafka_consumer, "_lines", LOOPS[loop])
    data, count, error = _direct(kafka_broker, topic, None, offset="start", follow=False)
    assert error is not None
    assert str(error) == (
        f"message {topic}:0:12: payload contains a newline, which the line format cannot "
        "carry; use --output-format json or a file:// output"
    )
    assert data.count(b"\n") == 12 and data.endswith(b"| 11 | 0] v11\n")
    assert count <= 12  # a batch that failed is not counted


def test_relay_takes_the_direct_path_only_for_default_line_output(
    kafka_broker: KafkaBroker,
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)

    async def main() -> list[bool]:
        async with streamer(kafka_broker.address) as s:
            writer = _StdoutWriter()
            line = StdioProducer(writer, None, ProducerOptions())
            json = StdioProducer(writer, None, ProducerOptions(output_format="json"))
            template = StdioProducer(writer, None, ProducerOptions())
            template.use_encoder(Template("%s\\n").encode)
            plain = await s.consumer(topic, offset="start", follow=False)
            grouped = await s.consumer(topic, offset="start", mode="resumable", group=topic)
            try:
                return [
                    KafkaLinesRelay.taking(consumer, producer) is not None
                    for consumer, producer in [
                        (plain, line),
                        (plain, json),
                        (plain, template),
                        (grouped, line),
                    ]
                ]
            finally:
                await plain.close()
                await grouped.close()

    assert run(main()) == [True, False, False, False]


@pytest.mark.parametrize("pure", [False, True])
def test_cli_relay_writes_the_message_paths_bytes(kafka_broker: KafkaBroker, pure: bool) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    _fill(kafka_broker, topic, 3000, 1)
    expected = _message_path(kafka_broker, topic, "out", offset="start", follow=False)
    env = {"STREAMKIT_PURE_PYTHON": "1"} if pure else {"STREAMKIT_PURE_PYTHON": "0"}
    done = subprocess.run(
        [*STREAMKIT, "relay", "--input", kafka_broker.uri(topic), "--output", "stdio:///out",
         "--offset", "start", "-e", "-v"],
        capture_output=True,
        timeout=60,
        env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected
    assert b"3000 messages relayed" in done.stderr
