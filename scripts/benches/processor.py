#!/usr/bin/env python3
"""Benchmark of ``streamkit processor``; prints a markdown table (paste into docs/benchmarks.md).

1. A handler that sleeps 10 ms: throughput with 1 worker vs 64 workers (target: >= 40x).
2. A no-op handler, stdio -> stdio, 1,000,000 lines: unordered and ordered msgs/s
   (targets: >= 300k unordered; ordered within 15%), next to a plain batch relay loop over the
   same stdio backend (the ceiling the processor can reach: the line codec's cost).
3. Memory over 1,000,000 messages with a sink slower than the source: RSS sampled along the way.

Usage: python scripts/benches/processor.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamkit.backends.base import Consumer, ConsumerOptions, Payload, Producer  # noqa: E402
from streamkit.errors import EndOfStream  # noqa: E402
from streamkit.message import Message  # noqa: E402
from streamkit.pipeline import Pipeline, Stage  # noqa: E402

HANDLERS = """
import time

def sleep10(message):
    time.sleep(0.01)
    return message.payload

def noop(message):
    return message.payload
"""

PLAIN_RELAY = """
import asyncio
from streamkit.backends.base import ConnectOptions, ConsumerOptions
from streamkit.connect import open_streamer
from streamkit.uri import parse_stream_uri

async def main():
    streamer = await open_streamer(parse_stream_uri("stdio:///"), ConnectOptions())
    consumer = await streamer.consumer((), ConsumerOptions())
    producer = await streamer.producer(None)
    async for batch in consumer.batches(1000):
        await producer.send_many(batch)

asyncio.run(main())
"""


def processor_command() -> list[str]:
    return [sys.executable, "-m", "streamkit.cli.main", "processor"]


def write_lines(path: Path, count: int) -> None:
    with path.open("wb") as out:
        for start in range(0, count, 10_000):
            out.write(
                b"".join(
                    b'[2026-11-23T07:00:00.%03d | tick | %d | 0] {"tick": %d}\n' % (n % 1000, n, n)
                    for n in range(start, min(count, start + 10_000))
                )
            )


def timed(command: list[str], stdin: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds and output line count of one run (stdout counted, not stored)."""
    with stdin.open("rb") as source:
        began = time.perf_counter()
        done = subprocess.run(command, stdin=source, capture_output=True, env=env, check=False)
        elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return elapsed, done.stdout.count(b"\n")


def bench_workers(folder: Path, env: dict[str, str], quick: bool) -> list[str]:
    rows = []
    rates = {}
    for workers, count in ((1, 100 if quick else 300), (64, 6400 if quick else 19200)):
        data = folder / f"sleep{count}.txt"
        write_lines(data, count)
        command = [*processor_command(), "--input", "stdio:///", "--func", "handlers:sleep10",
                   "-I", str(folder), "--workers", str(workers)]  # fmt: skip
        seconds, out = timed(command, data, env)
        assert out == count, (out, count)
        rates[workers] = count / seconds
        rows.append(f"| 10 ms sleep, {workers} worker(s), {count} msgs | {seconds:.2f} s | "
                    f"{rates[workers]:,.0f} msgs/s |")  # fmt: skip
    rows.append(f"| speed-up 64 vs 1 worker (target >= 40x) | | **{rates[64] / rates[1]:.1f}x** |")
    return rows


def bench_noop(folder: Path, env: dict[str, str], quick: bool) -> list[str]:
    count = 200_000 if quick else 1_000_000
    data = folder / "noop.txt"
    write_lines(data, count)
    base = [*processor_command(), "--input", "stdio:///", "--func", "handlers:noop",
            "-I", str(folder)]  # fmt: skip
    relay = [*processor_command()[:-1], "relay", "--input", "stdio:///", "--output", "stdio:///"]
    runs = {
        "plain batch relay loop (stdio codec ceiling)": [sys.executable, "-c", PLAIN_RELAY],
        "streamkit relay stdio -> stdio (reference)": relay,
        "processor --unordered": [*base, "--unordered"],
        "processor --ordered": [*base, "--ordered"],
        "processor --unordered --workers 4": [*base, "--unordered", "--workers", "4"],
        "processor --ordered --workers 4": [*base, "--ordered", "--workers", "4"],
    }
    rows = []
    rates = {}
    for name, command in runs.items():
        best = min(timed(command, data, env)[0] for _ in range(3))  # a shared machine: best of 3
        rates[name] = count / best
        rows.append(f"| no-op, {name}, {count:,} msgs | {best:.2f} s | {rates[name]:,.0f} msgs/s |")
    ratio = rates["processor --ordered"] / rates["processor --unordered"]
    versus = rates["processor --unordered"] / rates["streamkit relay stdio -> stdio (reference)"]
    rows.append(f"| ordered / unordered (target >= 0.85) | | **{ratio:.2f}** |")
    rows.append(f"| processor --unordered / relay | | **{versus:.2f}** |")
    return rows


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Generated(Consumer):
    def __init__(self, count: int, samples: list[tuple[int, int]]) -> None:
        super().__init__(ConsumerOptions())
        self._messages: Iterator[Message] = (
            Message("in", 0, n, n, b"payload %08d ................................" % n)
            for n in range(count)
        )
        self.read = 0
        self.count = count
        self.samples = samples

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        batch = [m for _, m in zip(range(max_messages), self._messages)]
        if not batch:
            raise EndOfStream
        if self.read % (self.count // 10) < len(batch):
            self.samples.append((self.read, rss_kb()))
        self.read += len(batch)
        return batch


class SlowSink(Producer):
    """5 microseconds per message: slower than the source, so backpressure must hold."""

    def __init__(self) -> None:
        super().__init__(None)
        self.count = 0

    async def send_many(self, items: Sequence[Payload]) -> None:
        await asyncio.sleep(len(items) * 5e-6)
        self.count += len(items)

    async def flush(self) -> None:
        pass


def bench_memory(quick: bool) -> list[str]:
    count = 200_000 if quick else 1_000_000
    samples: list[tuple[int, int]] = []
    sink = SlowSink()
    began = time.perf_counter()
    pipeline = Pipeline([Stage(lambda m: m.payload[:20], workers=4)])
    asyncio.run(pipeline.run(Generated(count, samples), sink))
    seconds = time.perf_counter() - began
    assert sink.count == count
    shown = ", ".join(f"{read // 1000}k: {kb / 1024:.1f}" for read, kb in samples)
    steady = [kb for read, kb in samples if read >= count // 10]
    growth = (max(steady) - min(steady)) / 1024 if steady else 0.0
    return [
        f"| memory, {count:,} msgs, slow sink, RSS MiB at | {seconds:.1f} s | {shown} |",
        f"| RSS growth after the first 10% | | **{growth:.1f} MiB** |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "handlers.py").write_text(HANDLERS)
        rows = ["| processor benchmark | time | result |", "|---|---|---|"]
        rows += bench_workers(folder, env, args.quick)
        rows += bench_noop(folder, env, args.quick)
        rows += bench_memory(args.quick)
    print(f"cores: {os.cpu_count()}\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
