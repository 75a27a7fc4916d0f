"""Pipeline end to end over in-test sources and sinks: order, partitions, fan-out, stop, commits."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

from streamkit.backends.base import ConsumerOptions
from streamkit.errors import DataError, EndOfStream
from streamkit.message import Message
from streamkit.pipeline import Pipeline, Stage, key_function
from tests.pipeline.streams import ListConsumer, ListProducer, make_messages


def run(pipeline: Pipeline, consumer: ListConsumer, producer: ListProducer, **kw: object) -> object:
    return asyncio.run(pipeline.run(consumer, producer, **kw))  # type: ignore[arg-type]


def identity(message: Message) -> bytes:
    return message.payload


def test_identity_keeps_order_timestamps_and_identity() -> None:
    messages = make_messages(2500)
    producer = ListProducer()
    snapshot = run(Pipeline([Stage(identity)]), ListConsumer(messages, batch=300), producer)
    assert producer.sent == messages
    assert snapshot.messages_in == snapshot.messages_out == 2500  # type: ignore[attr-defined]


def test_transformed_output_keeps_input_timestamp_and_position() -> None:
    messages = make_messages(50)
    producer = ListProducer()
    run(Pipeline([Stage(lambda m: m.payload.upper())]), ListConsumer(messages), producer)
    assert [m.payload for m in producer.sent] == [m.payload.upper() for m in messages]
    assert [(m.timestamp, m.seq, m.stream_key) for m in producer.sent] == [
        (m.timestamp, m.seq, m.stream_key) for m in messages
    ]


def test_ordered_output_under_random_delays_sync_workers() -> None:
    rng = random.Random(7)
    delays = [rng.random() * 0.004 for _ in range(600)]

    def slow(message: Message) -> str:
        time.sleep(delays[message.seq])
        return f"done {message.seq}"

    producer = ListProducer()
    pipeline = Pipeline([Stage(slow, workers=16)], ordered=True)
    run(pipeline, ListConsumer(make_messages(600), batch=37), producer)
    assert producer.payloads() == [f"done {n}".encode() for n in range(600)]


def test_ordered_output_under_random_delays_async_workers() -> None:
    rng = random.Random(3)
    finish_order: list[int] = []

    async def slow(message: Message) -> bytes:
        await asyncio.sleep(rng.random() * 0.003)
        finish_order.append(message.seq)
        return message.payload

    producer = ListProducer()
    run(Pipeline([Stage(slow, workers=12)]), ListConsumer(make_messages(400), batch=50), producer)
    assert [m.seq for m in producer.sent] == list(range(400))
    assert finish_order != sorted(finish_order)  # the workers really did finish out of order


def test_fan_out_and_drop_keep_input_order() -> None:
    def handler(message: Message) -> list[bytes] | None:
        if message.seq % 3 == 0:
            return None
        return [message.payload + b"-a", message.payload + b"-b"]

    producer = ListProducer()
    snapshot = run(Pipeline([Stage(handler, workers=4)]), ListConsumer(make_messages(90)), producer)
    expected = [f"m{n}-{suffix}".encode() for n in range(90) if n % 3 for suffix in ("a", "b")]
    assert producer.payloads() == expected
    assert snapshot.dropped == 30  # type: ignore[attr-defined]


def partitioned_messages(count: int, users: int) -> list[Message]:
    rng = random.Random(11)
    return [
        Message("in", 0, n, n, f'{{"user": "u{rng.randrange(users)}", "n": {n}}}'.encode())
        for n in range(count)
    ]


def test_partition_keeps_per_key_order_when_unordered() -> None:
    rng = random.Random(5)
    threads_by_user: dict[str, set[int]] = defaultdict(set)
    lock = threading.Lock()

    def slow(message: Message) -> bytes:
        time.sleep(rng.random() * 0.002)
        user = message.payload.split(b'"')[3].decode()
        with lock:
            threads_by_user[user].add(threading.get_ident())
        return message.payload

    messages = partitioned_messages(800, users=9)
    producer = ListProducer()
    pipeline = Pipeline(
        [Stage(slow, workers=6, dispatch="partition", key=key_function("user"))], ordered=False
    )
    run(pipeline, ListConsumer(messages, batch=64), producer)
    assert sorted(m.seq for m in producer.sent) == list(range(800))
    by_user: dict[bytes, list[int]] = defaultdict(list)
    for message in producer.sent:
        by_user[message.payload.split(b'"')[3]].append(message.seq)
    for seqs in by_user.values():
        assert seqs == sorted(seqs)


def test_partition_ordered_gives_global_input_order() -> None:
    rng = random.Random(2)

    def slow(message: Message) -> bytes:
        time.sleep(rng.random() * 0.001)
        return message.payload

    messages = partitioned_messages(500, users=5)
    producer = ListProducer()
    stage = Stage(slow, workers=5, dispatch="partition", key=key_function("user"))
    run(Pipeline([stage], ordered=True), ListConsumer(messages, batch=40), producer)
    assert producer.sent == messages


def test_broadcast_reaches_every_worker() -> None:
    seen: dict[int, list[int]] = defaultdict(list)

    async def record(message: Message) -> bytes:
        task = asyncio.current_task()
        assert task is not None
        seen[id(task)].append(message.seq)
        await asyncio.sleep(0)
        return message.payload

    producer = ListProducer()
    run(
        Pipeline([Stage(record, workers=3, dispatch="broadcast")]),
        ListConsumer(make_messages(120), batch=25),
        producer,
    )
    assert len(seen) == 3
    for seqs in seen.values():
        assert seqs == list(range(120))
    assert [m.seq for m in producer.sent] == [n for n in range(120) for _ in range(3)]


def test_two_stages_with_fan_out_then_partition_stay_ordered() -> None:
    rng = random.Random(9)

    def split(message: Message) -> list[str]:
        time.sleep(rng.random() * 0.001)
        return [
            f'{{"user": "u{message.seq % 4}", "part": {i}, "n": {message.seq}}}' for i in (0, 1)
        ]

    def tag(message: Message) -> bytes:
        return message.payload + b"!"

    producer = ListProducer()
    stages = [
        Stage(split, workers=4),
        Stage(tag, workers=3, dispatch="partition", key=key_function("user")),
    ]
    run(Pipeline(stages), ListConsumer(make_messages(200), batch=30), producer)
    expected = [
        f'{{"user": "u{n % 4}", "part": {i}, "n": {n}}}!'.encode()
        for n in range(200)
        for i in (0, 1)
    ]
    assert producer.payloads() == expected


def test_count_limits_what_is_read_and_written() -> None:
    producer = ListProducer()
    consumer = ListConsumer(make_messages(1000), batch=300)
    snapshot = run(Pipeline([Stage(identity)]), consumer, producer, count=250)
    assert [m.seq for m in producer.sent] == list(range(250))
    assert snapshot.messages_in == 250  # type: ignore[attr-defined]


def endless(delay_every: int = 0) -> Iterator[Message]:
    n = 0
    while True:
        yield Message("in", 0, n, n, b"x%d" % n)
        n += 1


class SlowEndless(ListConsumer):
    """A live source: a small batch every few milliseconds, forever until stop()."""

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        await asyncio.sleep(0.002)
        return await super().next_batch(max_messages)


def test_stop_mid_stream_drains_everything_read_and_commits_it() -> None:
    options = ConsumerOptions(mode="resumable", group="g")
    consumer = SlowEndless(endless(), batch=20, options=options)
    producer = ListProducer()

    def slow(message: Message) -> bytes:
        time.sleep(0.0002)
        return message.payload

    pipeline = Pipeline([Stage(slow, workers=4)])

    async def main() -> object:
        task = asyncio.create_task(pipeline.run(consumer, producer))
        while consumer.read < 300:
            await asyncio.sleep(0.005)
        pipeline.stop()
        return await asyncio.wait_for(task, 10)

    snapshot = asyncio.run(main())
    assert consumer.read >= 300
    assert snapshot.messages_in == consumer.read == snapshot.messages_out  # type: ignore[attr-defined]
    assert [m.seq for m in producer.sent] == list(range(consumer.read))
    assert [m.seq for m in consumer.committed] == list(range(consumer.read))


def test_commits_follow_writes_in_read_order() -> None:
    order: list[str] = []

    class Sink(ListProducer):
        async def send_many(self, items):  # type: ignore[no-untyped-def]
            order.append(f"write {len(items)}")
            await super().send_many(items)

        async def flush(self) -> None:
            order.append("flush")

    class Source(ListConsumer):
        async def commit(self, messages):  # type: ignore[no-untyped-def]
            order.append(f"commit {messages[0].seq}-{messages[-1].seq}")
            await super().commit(messages)

    rng = random.Random(1)

    def slow(message: Message) -> bytes:
        time.sleep(rng.random() * 0.001)
        return message.payload

    options = ConsumerOptions(mode="resumable", group="g")
    consumer = Source(make_messages(300), batch=10, options=options)
    run(Pipeline([Stage(slow, workers=8)], ordered=False), consumer, Sink())
    assert sorted(m.seq for m in consumer.committed) == list(range(300))
    committed: list[int] = []
    written = 0
    for event in order:
        if event.startswith("write"):
            written += int(event.split()[1])
        elif event.startswith("commit"):
            first, last = map(int, event.split()[1].split("-"))
            assert first == (committed[-1] + 1 if committed else 0)  # in read order
            committed.append(last)
            assert last < written  # never commit what was not written yet
    assert "flush" in order


def test_source_error_after_everything_read_is_written() -> None:
    class Broken(ListConsumer):
        async def next_batch(self, max_messages: int = 1000) -> list[Message]:
            if self.read >= 120:
                raise DataError("unknown part 'x'", "<stdin>:121")
            return await super().next_batch(max_messages)

    producer = ListProducer()
    pipeline = Pipeline([Stage(identity, workers=3)])
    with pytest.raises(DataError, match="121"):
        run(pipeline, Broken(make_messages(500), batch=40), producer)
    assert [m.seq for m in producer.sent] == list(range(120))


def test_empty_source_ends_cleanly() -> None:
    class Empty(ListConsumer):
        async def next_batch(self, max_messages: int = 1000) -> list[Message]:
            raise EndOfStream

    producer = ListProducer()
    snapshot = run(Pipeline([Stage(identity, workers=2)]), Empty([]), producer)
    assert producer.sent == [] and snapshot.messages_in == 0  # type: ignore[attr-defined]


def test_metrics_report_latency_and_counts() -> None:
    reports: list[object] = []

    async def slow(message: Message) -> bytes:
        await asyncio.sleep(0.001)
        return message.payload

    producer = ListProducer()
    snapshot = run(
        Pipeline([Stage(slow, workers=2)]),
        SlowEndless(make_messages(200), batch=10),
        producer,
        stats_interval=0.02,
        on_stats=reports.append,
    )
    assert reports, "the stats callback ran while the pipeline ran"
    assert snapshot.messages_out == 200  # type: ignore[attr-defined]
    assert snapshot.latency_p50_ms is not None and snapshot.latency_p50_ms >= 1.0  # type: ignore[attr-defined]
    assert snapshot.latency_p99_ms >= snapshot.latency_p50_ms  # type: ignore[attr-defined]
    assert "in=200 out=200" in snapshot.line()  # type: ignore[attr-defined]
