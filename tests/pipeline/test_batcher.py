"""Batch stages: size and time limits, per-key batches, order, and no stall on a slow source."""

from __future__ import annotations

import asyncio
import time

from streamkit.message import Message
from streamkit.pipeline import BatchSpec, Pipeline, Stage, key_function
from tests.pipeline.streams import ListConsumer, ListProducer, make_messages


class TimedConsumer(ListConsumer):
    """One message every ``gap`` seconds; records when each was handed out."""

    def __init__(self, messages: list[Message], gap: float) -> None:
        super().__init__(messages, batch=1)
        self.gap = gap
        self.read_at: dict[int, float] = {}

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        await asyncio.sleep(self.gap)
        batch = await super().next_batch(max_messages)
        for message in batch:
            self.read_at[message.seq] = time.monotonic()
        return batch


def test_batches_never_exceed_size_and_cover_everything_in_order() -> None:
    sizes: list[int] = []

    def insert(rows: list[Message]) -> str:
        sizes.append(len(rows))
        return ",".join(str(m.seq) for m in rows)

    producer = ListProducer()
    stage = Stage(insert, workers=3, batch=BatchSpec(size=7))
    asyncio.run(Pipeline([stage]).run(ListConsumer(make_messages(100), batch=16), producer))
    assert max(sizes) == 7 and all(size <= 7 for size in sizes)
    joined = [int(seq) for m in producer.sent for seq in m.payload.split(b",")]
    assert joined == list(range(100))  # ordered: batch results follow input order
    assert producer.sent[-1].timestamp == make_messages(100)[-1].timestamp


def test_batches_never_wait_longer_than_the_timeout() -> None:
    calls: list[tuple[float, list[int]]] = []

    def insert(rows: list[Message]) -> None:
        calls.append((time.monotonic(), [m.seq for m in rows]))

    consumer = TimedConsumer(make_messages(30), gap=0.01)
    stage = Stage(insert, batch=BatchSpec(size=1000, timeout=0.06))
    asyncio.run(Pipeline([stage], window=64).run(consumer, ListProducer()))
    assert sorted(seq for _, seqs in calls for seq in seqs) == list(range(30))
    assert len(calls) >= 3  # cut by time, not by size or by the end
    for called_at, seqs in calls:
        oldest = consumer.read_at[seqs[0]]
        assert called_at - oldest < 0.06 + 0.05


def test_batch_by_key_puts_one_key_per_batch() -> None:
    batches: list[set[str]] = []

    def insert(rows: list[Message]) -> bytes:
        batches.append({m.payload.split(b'"')[3].decode() for m in rows})
        return b"%d" % len(rows)

    messages = [
        Message("in", 0, n, n, f'{{"user": "u{n % 3}", "n": {n}}}'.encode()) for n in range(90)
    ]
    stage = Stage(insert, batch=BatchSpec(size=10, key=key_function("user")))
    producer = ListProducer()
    asyncio.run(Pipeline([stage]).run(ListConsumer(messages, batch=20), producer))
    assert all(len(keys) == 1 for keys in batches)
    assert sum(int(m.payload) for m in producer.sent) == 90


def test_size_only_batches_do_not_stall_a_slow_source() -> None:
    """With a small window and no timeout, starvation flushes the open batch."""
    sizes: list[int] = []

    def insert(rows: list[Message]) -> bytes:
        sizes.append(len(rows))
        return b"ok"

    consumer = TimedConsumer(make_messages(12), gap=0.005)
    stage = Stage(insert, batch=BatchSpec(size=500))
    asyncio.run(asyncio.wait_for(Pipeline([stage], window=3).run(consumer, ListProducer()), 10))
    assert sum(sizes) == 12 and len(sizes) >= 2


def test_stage_before_a_batch_stage() -> None:
    def double(message: Message) -> bytes:
        return message.payload * 2

    def join(rows: list[Message]) -> bytes:
        return b"|".join(m.payload for m in rows)

    producer = ListProducer()
    stages = [Stage(double, workers=3), Stage(join, batch=BatchSpec(size=4))]
    asyncio.run(Pipeline(stages).run(ListConsumer(make_messages(10), batch=3), producer))
    assert producer.payloads() == [
        b"m0m0|m1m1|m2m2|m3m3",
        b"m4m4|m5m5|m6m6|m7m7",
        b"m8m8|m9m9",
    ]
