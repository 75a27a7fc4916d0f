"""``relay --stats [INTERVAL]``: rate, totals and (Kafka) lag on stderr, every INTERVAL and at
exit."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import streamkit
from tests.servers.kafka_broker import KafkaBroker

ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-m", "streamkit.cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PERIODIC = re.compile(
    r"^streamkit relay: stats: ([\d,]+) messages, ([\d,]+)/s now, [\d,]+/s average"
)


def _ticks(count: int, interval: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*STREAMKIT, "clock", "--stream", "t", "--interval", interval, "--count", str(count)],
        stdout=subprocess.PIPE, env=ENV,
    )  # fmt: skip


def test_stats_print_periodically_and_at_exit() -> None:
    clock = _ticks(150, "10ms")
    done = subprocess.run(
        [*STREAMKIT, "relay", "--stats", "200ms"],
        stdin=clock.stdout, capture_output=True, timeout=60, env=ENV,
    )  # fmt: skip
    clock.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 150
    lines = done.stderr.decode().splitlines()
    periodic = [PERIODIC.match(line) for line in lines[:-1]]
    assert len(periodic) >= 3 and all(periodic), lines
    totals = [int(m.group(1).replace(",", "")) for m in periodic if m]
    assert totals == sorted(totals) and 0 < totals[0] < 150
    rates = [int(m.group(2).replace(",", "")) for m in periodic[1:] if m]
    assert all(40 <= rate <= 200 for rate in rates), rates  # ~100 ticks/s
    assert re.match(r"^streamkit relay: stats: done: 150 messages in \d+\.\ds, [\d,]+/s average$",
                    lines[-1]), lines[-1]  # fmt: skip


def test_stats_without_a_value_and_without_it_nothing() -> None:
    clock = _ticks(5, "0")
    done = subprocess.run(
        [*STREAMKIT, "relay", "--stats", "--count", "5"],
        stdin=clock.stdout, capture_output=True, timeout=60, env=ENV,
    )  # fmt: skip
    clock.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().startswith("streamkit relay: stats: done: 5 messages in ")
    plain = subprocess.run([*STREAMKIT, "relay"], input=b"[t] x\n", capture_output=True, env=ENV)
    assert plain.stderr == b""


def test_kafka_lag_from_cached_watermarks(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)

    async def scenario() -> tuple[int | None, int | None, int]:
        async with streamkit.connect(kafka_broker.uri()) as streamer:
            producer = await streamer.producer(topic)
            await producer.send_many([b"m%d" % n for n in range(1000)])
            await producer.close()
            consumer = await streamer.consumer(
                [topic], streamkit.ConsumerOptions(offset="start", follow=False)
            )
            try:
                before = consumer.lag()  # type: ignore[attr-defined]
                read = len(await consumer.next_batch(100))
                return before, consumer.lag(), read  # type: ignore[attr-defined]
            finally:
                await consumer.close()

    before, after, read = asyncio.run(scenario())
    assert before in (None, 1000)  # nothing fetched yet: not known, or the whole topic; not 0
    assert after == 1000 - read


def test_kafka_relay_stats_end_with_lag_zero(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    clock = _ticks(500, "0")
    subprocess.run(
        [*STREAMKIT, "relay", "--output", kafka_broker.uri(topic)],
        stdin=clock.stdout, check=True, timeout=60, env=ENV,
    )  # fmt: skip
    clock.wait(timeout=30)
    done = subprocess.run(
        [*STREAMKIT, "relay", "--input", kafka_broker.uri(topic), "--offset", "start", "-e",
         "--stats", "50ms"],
        capture_output=True, timeout=60, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 500
    last = done.stderr.decode().splitlines()[-1]
    assert last.startswith("streamkit relay: stats: done: 500 messages in ") and last.endswith(
        ", lag 0"
    ), last
