"""Brokers paused (SIGSTOP/SIGCONT) and restarted under a running relay, counted end to end.

Each test has a private server of its own (pausing or killing the session's server would
disturb other tests). Two shapes of relay:

* producer: ``relay --input stdio:///k --output redis|kafka://…/k``, fed by the test — the first
  half before the fault, the second half while the broker is stopped or down, then EOF;
  the broker's content is read back and counted against what was fed;
* resumable consumer: ``relay --input …/k --mode resumable --group G --offset start -e`` over a
  prefilled stream, its stdout read by the test, which holds back at a third of the messages
  (so the relay is mid-stream, blocked on its output) while the fault is applied.

Counted per test: in, out, lost, duplicated. ``lost`` must be 0 everywhere. ``duplicated``
must be 0 where no connection breaks (a pause; SIGTERM); after a Redis kill -9 and restart it is
bounded by what at-least-once allows: a producer re-sends the batches whose replies it had not
read (at most two batches, since replies are read one batch behind), and a group consumer
re-reads entries it wrote but whose XACK the dead server never logged (at most one batch).
Kafka restarts are not tested against the private broker: the tansu build keeps topics in
memory only, so a restart loses the topics themselves (docs/kafka.md).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamkit.connect import connect
from tests.faults.harness import fill, no_traceback, record, spawn, tally
from tests.servers.kafka_broker import KafkaBroker
from tests.servers.redis_server import RedisServer

BATCH = 200
"""--batch-size of the relays: bounds what a producer may resend after a connection loss."""


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    """A private server that logs every write to its AOF before replying (appendfsync always),
    so a kill -9 loses nothing it acknowledged."""
    directory = tmp_path / "redis-aof"
    directory.mkdir()
    server = RedisServer(directory, extra=("--appendonly", "yes", "--appendfsync", "always"))
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGCONT)
        server.stop()


def _pause(process: subprocess.Popen[bytes] | None) -> Callable[[], None]:
    """SIGSTOP ``process``; returns the SIGCONT."""
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    return lambda: process.send_signal(signal.SIGCONT)


def _tansu(broker: KafkaBroker) -> subprocess.Popen[bytes]:
    proc = broker._proc
    assert proc is not None, "a private broker"
    return proc


class Reader(threading.Thread):
    """Reads a relay's stdout; stops at ``hold_at`` lines until ``go`` is set."""

    def __init__(self, stream: object, hold_at: int | None = None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.hold_at = hold_at
        self.held = threading.Event()
        self.go = threading.Event()
        self.lines: list[bytes] = []

    def run(self) -> None:
        stream = self.stream
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)
            if self.hold_at is not None and len(self.lines) == self.hold_at:
                self.held.set()
                self.go.wait(60)
        self.held.set()


def _payloads(lines: list[bytes]) -> list[bytes]:
    return [line.rstrip(b"\n").partition(b"] ")[2] for line in lines]


def _read_back(url: str, key: str) -> list[bytes]:
    async def main() -> list[bytes]:
        async with connect(url) as streamer:
            consumer = await streamer.consumer(key, offset="start", follow=False)
            out: list[bytes] = []
            async for batch in consumer.batches(1000):
                out.extend(m.payload for m in batch)
            await consumer.close()
            return out

    return asyncio.run(asyncio.wait_for(main(), 60))


# --------------------------------------------------------------------------- producer relays


def _produce_through_fault(
    output: str, fault: Callable[[], Callable[[], None]], count: int = 20_000
) -> tuple[list[bytes], str, float]:
    """Feed ``count`` lines to a relay writing ``output``; ``fault()`` after the first half
    returns the recovery, called 1 s later while the second half is being fed.
    Returns (sent, stderr, seconds)."""
    sent = [b"p-%d" % n for n in range(count)]
    relay = spawn(
        "relay", "--input", "stdio:///k", "--output", output, "--batch-size", str(BATCH),
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert relay.stdin is not None and relay.stderr is not None
    started = time.monotonic()
    try:
        half = count // 2
        stdin = relay.stdin
        stdin.write(b"\n".join(sent[:half]) + b"\n")
        stdin.flush()
        time.sleep(0.5)

        def second_half() -> None:
            # From a thread: the relay stops reading stdin while its broker does not answer.
            for start in range(half, count, half // 10):
                stdin.write(b"\n".join(sent[start : start + half // 10]) + b"\n")
                stdin.flush()
                time.sleep(0.1)

        feeder = threading.Thread(target=second_half, daemon=True)
        recover = fault()
        try:
            feeder.start()
            time.sleep(1.0)
        finally:
            recover()
        feeder.join(60)
        assert not feeder.is_alive(), "the relay stopped reading its input"
        relay.stdin.close()
        code = relay.wait(60)
        stderr = relay.stderr.read().decode(errors="replace")
    finally:
        relay.kill()
        relay.wait(10)
        relay.stderr.close()
    no_traceback(stderr)
    assert code == 0, stderr
    return sent, stderr, time.monotonic() - started


def test_redis_producer_relay_through_a_pause(redis_restartable: RedisServer) -> None:
    server = redis_restartable
    sent, _, _ = _produce_through_fault(server.stream_url("k"), lambda: _pause(server.process))
    counts = tally(sent, _read_back(server.url, "k"))
    assert (counts.lost, counts.duplicated, counts.invented) == (0, 0, 0), counts
    record("redis paused 1 s: producer relay", **counts.as_dict())


def test_redis_producer_relay_through_kill_and_restart(redis_aof: RedisServer) -> None:
    server = redis_aof

    def crash() -> Callable[[], None]:
        server.stop(save=False)  # SIGKILL: only the AOF survives
        return server.start

    sent, stderr, _ = _produce_through_fault(server.stream_url("k"), crash)
    assert "reconnecting with backoff" in stderr
    counts = tally(sent, _read_back(server.url, "k"))
    assert counts.lost == 0 and counts.invented == 0, counts
    assert counts.duplicated <= 2 * BATCH, counts
    record("redis kill -9 + restart (appendonly): producer relay", **counts.as_dict())


def test_kafka_producer_relay_through_a_pause(kafka_restartable: KafkaBroker) -> None:
    broker = kafka_restartable
    topic = broker.topic()
    broker.create_topic(topic)
    sent, _, _ = _produce_through_fault(broker.uri(topic), lambda: _pause(_tansu(broker)))
    counts = tally(sent, _read_back(f"kafka://{broker.address}", topic))
    assert (counts.lost, counts.duplicated, counts.invented) == (0, 0, 0), counts
    record("kafka paused 1 s: producer relay", **counts.as_dict())


# --------------------------------------------------------------------------- consumer relays


def _consume_through_fault(
    source: str, fault: Callable[[], Callable[[], None]], count: int, *extra: str
) -> tuple[list[bytes], str]:
    """Run a resumable group relay over ``source``; ``fault()`` once a third is out."""
    relay = spawn(
        "relay", "--input", source, "--output", "stdio:///", "--mode", "resumable",
        "--group", "G", "--offset", "start", "-e", "--batch-size", str(BATCH), *extra,
    )  # fmt: skip
    reader = Reader(relay.stdout, hold_at=count // 3)
    reader.start()
    try:
        assert reader.held.wait(60), "the relay delivered nothing"
        assert relay.poll() is None, "the relay ended before the fault"
        recover = fault()
        try:
            reader.go.set()
            time.sleep(1.0)
        finally:
            recover()
        code = relay.wait(60)
        reader.join(30)
        assert relay.stderr is not None
        stderr = relay.stderr.read().decode(errors="replace")
    finally:
        reader.go.set()
        relay.kill()
        relay.wait(10)
    no_traceback(stderr)
    assert code == 0, stderr
    return _payloads(reader.lines), stderr


def _pending(server: RedisServer, key: str) -> int:
    return int(server.cli("XPENDING", key, "G").split()[0])


def test_redis_resumable_consumer_through_a_pause(redis_restartable: RedisServer) -> None:
    server = redis_restartable
    sent = fill(server.url, "k", 20_000)
    got, _ = _consume_through_fault(
        server.stream_url("k"), lambda: _pause(server.process), len(sent)
    )
    counts = tally(sent, got)
    assert (counts.lost, counts.duplicated, counts.invented) == (0, 0, 0), counts
    assert _pending(server, "k") == 0, "entries written but not acknowledged"
    record("redis paused 1 s: resumable consumer relay", **counts.as_dict())


def test_redis_resumable_consumer_through_kill_and_restart(redis_aof: RedisServer) -> None:
    server = redis_aof
    sent = fill(server.url, "k", 20_000)

    def crash() -> Callable[[], None]:
        server.stop(save=False)
        return server.start

    got, stderr = _consume_through_fault(server.stream_url("k"), crash, len(sent))
    assert "reconnecting with backoff" in stderr
    counts = tally(sent, got)
    assert counts.lost == 0 and counts.invented == 0, counts
    assert counts.duplicated <= 1000, counts  # one page whose XACK died with the server
    assert _pending(server, "k") == 0
    record("redis kill -9 + restart (appendonly): resumable consumer relay", **counts.as_dict())


def test_kafka_resumable_consumer_through_a_pause(kafka_restartable: KafkaBroker) -> None:
    broker = kafka_restartable
    topic = broker.topic()
    broker.create_topic(topic)
    sent = fill(f"kafka://{broker.address}", topic, 20_000)
    got, _ = _consume_through_fault(broker.uri(topic), lambda: _pause(_tansu(broker)), len(sent))
    counts = tally(sent, got)
    assert (counts.lost, counts.duplicated, counts.invented) == (0, 0, 0), counts
    assert _committed(broker, topic) == len(sent), "what was written is not all committed"
    record("kafka paused 1 s: resumable consumer relay", **counts.as_dict())


def _committed(broker: KafkaBroker, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "G"})
    try:
        (position,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(position.offset)
    finally:
        consumer.close()


# --------------------------------------------------------------------------- SIGTERM


def test_redis_resumable_consumer_sigterm_then_resume(
    redis_server: RedisServer, unique_key: str
) -> None:
    """SIGTERM mid-stream: the relay writes what it read, acks it, exits 143 at once; a second
    run of the same group delivers exactly the rest."""
    sent = fill(redis_server.url, unique_key, 20_000)
    args = ["relay", "--input", redis_server.stream_url(unique_key), "--output", "stdio:///",
            "--mode", "resumable", "--group", "G", "--offset", "start", "-e"]  # fmt: skip
    first = spawn(*args)
    reader = Reader(first.stdout, hold_at=len(sent) // 3)
    reader.start()
    assert reader.held.wait(60)
    first.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    reader.go.set()
    code = first.wait(30)
    took = time.monotonic() - stopped
    reader.join(30)
    assert first.stderr is not None
    no_traceback(first.stderr.read().decode())
    assert code == 143 and took < 2.0, (code, took)
    assert len(reader.lines) < len(sent), "SIGTERM came after the end"

    second = spawn(*args)
    out, err = second.communicate(timeout=60)
    no_traceback(err.decode())
    assert second.returncode == 0, err
    got = _payloads(reader.lines) + _payloads(out.splitlines(keepends=True))
    counts = tally(sent, got)
    assert (counts.lost, counts.duplicated, counts.invented) == (0, 0, 0), counts
    record("redis SIGTERM + second run: resumable consumer relay",
           **counts.as_dict(), first_run=len(reader.lines))  # fmt: skip
