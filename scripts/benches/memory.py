#!/usr/bin/env python3
"""Benchmark of the ``memory://`` backend; prints a markdown table (for docs/benchmarks.md).

1,000,000 small messages (16-byte payloads) go through one topic in one process, a producer
task calling ``send_many`` with batches of 1,000 and consumer tasks reading ``batches(1000)``
at the same time. Target: >= 500,000 msgs/s end to end, goal 1,000,000.

Rows: the default backpressure topic; a small backpressure topic; a retention topic; fan-out to
two independent consumers; a load-balanced group of two members that commit every batch; the
per-message API (``send`` / ``async for``) on a tenth of the messages; and, as a reference
ceiling only, the default topic with Python's cyclic GC switched off (the GC, scanning the live
Message objects a topic holds, is a large part of the cost).

Usage: python scripts/benches/memory.py [--count N] [--batch N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamkit.backends.base import Consumer  # noqa: E402
from streamkit.backends.memory.streamer import MemoryStreamer, drop_broker  # noqa: E402
from streamkit.connect import connect  # noqa: E402
from streamkit.errors import EndOfStream  # noqa: E402

TARGET = 500_000
GOAL = 1_000_000

Setup = Callable[[MemoryStreamer], None]


async def _consume(consumer: Consumer, total: int, batch: int) -> int:
    """Read until every message was delivered or reported missed (retention may evict)."""
    seen = 0
    async for messages in consumer.batches(batch):
        seen += len(messages)
        if seen + getattr(consumer, "missed", 0) >= total:
            break
    return seen


async def _scenario(
    count: int,
    batch: int,
    *,
    setup: Setup | None = None,
    readers: int = 1,
    group: str | None = None,
    per_message: bool = False,
) -> tuple[float, int]:
    """Seconds to push ``count`` messages through, and messages delivered in all."""
    name = f"bench-{time.monotonic_ns()}"
    try:
        async with connect(f"memory://{name}") as streamer:
            assert isinstance(streamer, MemoryStreamer)
            if setup is not None:
                setup(streamer)
            options = {"mode": "load-balanced", "group": group} if group else {}
            consumers = [await streamer.consumer("bench", **options) for _ in range(readers)]
            producer = await streamer.producer("bench")
            payloads = [b"message %08d" % i for i in range(batch)]

            async def produce() -> None:
                if per_message:
                    for i in range(count):
                        await producer.send(payloads[i % batch])
                    return
                for start in range(0, count, batch):
                    await producer.send_many(payloads[: min(batch, count - start)])

            async def consume_each(consumer: Consumer) -> int:
                seen = 0
                async for _ in consumer:
                    seen += 1
                    if seen >= count:
                        break
                return seen

            if group:
                # Members share the messages: together they must see ``count``.
                shared = {"seen": 0}

                async def member(consumer: Consumer) -> int:
                    mine = 0
                    while shared["seen"] < count:
                        try:
                            got = await consumer.next_batch(batch)
                        except EndOfStream:
                            break
                        await consumer.commit(got)
                        mine += len(got)
                        shared["seen"] += len(got)
                    for other in consumers:
                        other.stop()
                    return mine

                tasks: list[Awaitable[int]] = [member(c) for c in consumers]
            elif per_message:
                tasks = [consume_each(c) for c in consumers]
            else:
                tasks = [_consume(c, count, batch) for c in consumers]
            started = time.perf_counter()
            results = await asyncio.gather(produce(), *tasks)
            elapsed = time.perf_counter() - started
            delivered = sum(r for r in results[1:] if isinstance(r, int))
            return elapsed, delivered
    finally:
        drop_broker(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    count, batch = args.count, args.batch

    rows: list[tuple[str, int, float, int]] = []

    def measure(label: str, n: int, **kw: object) -> None:
        gc.collect()
        elapsed, delivered = asyncio.run(_scenario(n, batch, **kw))  # type: ignore[arg-type]
        rows.append((label, n, elapsed, delivered))

    measure("send_many / batches, default topic (backpressure, capacity 100,000)", count)
    measure(
        "send_many / batches, backpressure capacity 10,000",
        count,
        setup=lambda s: s.create_topic("bench", capacity=10_000),
    )
    measure(
        "send_many / batches, retention max_messages 100,000",
        count,
        setup=lambda s: s.create_topic("bench", max_messages=100_000),
    )
    measure("fan-out: 2 independent consumers (delivered/s)", count, readers=2)
    measure("load-balanced group of 2, commit per batch", count, readers=2, group="g")
    measure("per message: send / async for", count // 10, per_message=True)
    gc.disable()
    try:
        measure("reference: default topic with the cyclic GC off", count)
    finally:
        gc.enable()

    print(
        f"memory:// benchmark — {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"batches of {batch}, 16-byte payloads\n"
    )
    print("| scenario | sent | delivered | seconds | delivered msgs/s | vs 500k target |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, n, elapsed, delivered in rows:
        rate = delivered / elapsed
        print(
            f"| {label} | {n:,} | {delivered:,} | {elapsed:.2f} | {rate:,.0f} "
            f"| {rate / TARGET:.2f}x |"
        )
    main_rate = rows[0][3] / rows[0][2]
    verdict = "goal met" if main_rate >= GOAL else "target met" if main_rate >= TARGET else "MISSED"
    print(f"\nmain path: {main_rate:,.0f} msgs/s ({verdict}; target 500,000, goal 1,000,000)")


if __name__ == "__main__":
    main()
