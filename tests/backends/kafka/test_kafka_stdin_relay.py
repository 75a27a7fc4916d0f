"""The direct stdin → Kafka relay (``relay_spans``): the CLI in a real pipe, on a real broker.

Each test relays the same input three ways, each into its own topic: the direct path (C codec,
spans, no Message per line), the batch loop with the C codec (``--count`` far above the input
keeps the relay off the direct path), and the pure-Python codec; then reads the topics back
and asks for the same records, exit code and messages. A spy around ``relay_spans`` (the
subprocess's ``-c`` program) says whether the direct path ran and how many messages it took.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.servers.kafka_broker import KafkaBroker

SPIED = """
import sys
from streamkit.backends.kafka import stdin_relay
taken = stdin_relay.relay_spans
async def spy(consumer, producer):
    count = await taken(consumer, producer)
    sys.stderr.write(f"spy: direct path {count}\\n")
    return count
stdin_relay.relay_spans = spy
from streamkit.cli.main import main
main()
"""
WAYS = {
    "direct": ({"STREAMKIT_PURE_PYTHON": "0"}, []),
    "batch loop": ({"STREAMKIT_PURE_PYTHON": "0"}, ["--count", "100000000"]),
    "pure": ({"STREAMKIT_PURE_PYTHON": "1"}, []),
}
LINES = [
    b"plain line %d",
    b"[2026-11-23T07:00:00.%03d | x | 5 | 0] canonical",
    b"[2026-11-23T07:00:01 | x | %d] SeaStreamer's three fields",
    b"[x] short form %d",  # the general parser's
    b"[2026-11-23T07:00:02.5 | y | %d | 1] another key",
    "caf\u00e9 \u2713 %d".encode(),
    b"[1969-12-31T23:59:59.000 | x | %d | 0] before 1970",
    b"crlf %d\r",
    b"",
]


def _input(count: int) -> bytes:
    templates = [LINES[i % len(LINES)] for i in range(count)]
    lines = [line % (i % 1000) if b"%" in line else line for i, line in enumerate(templates)]
    return b"\n".join(lines) + b"\n" + b"last line without a newline"


def _relay(broker: KafkaBroker, topic: str, way: str, data: bytes, *args: str) -> Any:
    env, extra = WAYS[way]
    return subprocess.run(
        [sys.executable, "-c", SPIED, "relay", "--output", broker.uri(topic), *extra, *args],
        input=data,
        capture_output=True,
        timeout=120,
        env={**os.environ, **env},
    )


def _records(broker: KafkaBroker, topic: str) -> list[tuple[Any, ...]]:
    """(value, key, headers, timestamp) of the topic's records, in order."""
    consumer = Consumer(
        {"bootstrap.servers": broker.address, "group.id": "t", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            record = consumer.poll(1.0)
            if record is None:
                continue
            if record.error() is not None:
                break  # the end of the partition
            out.append((record.value(), record.key(), record.headers(), record.timestamp()[1]))
    finally:
        consumer.close()
    return out


def _same_records(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], now: int) -> None:
    """Equal records; a time filled in at reading (stamped by the client) only has to be one."""
    assert [r[:3] for r in got] == [r[:3] for r in expected]
    for mine, theirs in zip(got, expected):
        if theirs[3] >= now:
            assert mine[3] >= now, (mine, theirs)
        else:
            assert mine[3] == theirs[3], (mine, theirs)


def _said(done: Any) -> list[bytes]:
    """What the relay wrote to stderr, without the spy's line."""
    return [line for line in done.stderr.splitlines() if not line.startswith(b"spy: ")]


def _three_ways(broker: KafkaBroker, data: bytes, *args: str) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000 - 1000
    results = {}
    for way in WAYS:
        topic = broker.topic(way.replace(" ", "-"))
        broker.create_topic(topic)
        done = _relay(broker, topic, way, data, *args)
        results[way] = (done, _records(broker, topic))
    direct, expected = results["direct"], results["pure"]
    for way in ("batch loop", "direct"):
        done, records = results[way]
        assert done.returncode == expected[0].returncode, done.stderr
        _same_records(records, expected[1], now)
        spy = [line for line in done.stderr.splitlines() if line.startswith(b"spy: ")]
        assert _said(done) == _said(expected[0])
        if way == "batch loop":
            assert spy == []  # --count: the CLI does not even try the direct path
    assert direct[0].returncode != 0 or b"spy: direct path " in direct[0].stderr
    return results


@pytest.mark.parametrize("keyed", [False, True])
def test_the_direct_relay_sends_what_the_batch_loop_sends(
    kafka_broker: KafkaBroker, keyed: bool
) -> None:
    data = _input(3000)
    results = _three_ways(kafka_broker, data, "--input", "stdio:///x" if keyed else "stdio:///")
    done, records = results["direct"]
    assert done.returncode == 0, done.stderr
    assert f"spy: direct path {len(records)}".encode() in done.stderr
    assert records[-1][0] == b"last line without a newline"
    assert any(r[0] == b"crlf 7" for r in records)  # the \r is the line end's
    keys = {b"another key" in r[0] for r in records}
    assert keys == ({False} if keyed else {True, False})


def test_a_bad_line_fails_after_what_came_before_it_arrived(kafka_broker: KafkaBroker) -> None:
    data = _input(2000) + b"\n[2026-13-01T00:00:00 | x | 1] no such month\nnever sent\n"
    results = _three_ways(kafka_broker, data, "--input", "stdio:///")
    done, records = results["direct"]
    assert done.returncode == 3
    assert b"no such month" not in b"".join(r[0] or b"" for r in records)
    assert records[-1][0] == b"last line without a newline"
    assert len(records) > 1500


def test_a_full_librdkafka_queue_only_slows_the_relay_down(kafka_broker: KafkaBroker) -> None:
    data = b"".join(b"record %d\n" % i for i in range(20_000))
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic)
    done = _relay(
        kafka_broker, topic, "direct", data, "--input", "stdio:///",
        "-X", "queue.buffering.max.messages=100",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"spy: direct path 20000" in done.stderr
    assert [r[0] for r in _records(kafka_broker, topic)] == data.splitlines()
