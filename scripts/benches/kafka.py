#!/usr/bin/env python3
"""Kafka relay next to kcat, on one broker and one data set, in one run.

    python scripts/benches/kafka.py [--messages 1000000] [--size 100] [--broker host:port]

Produce: ``kcat -P`` and ``streamkit relay stdio → kafka`` each read the same file of N lines.
Consume: ``kcat -C -e`` and ``streamkit relay kafka → stdio -e`` each read the same topic (the
one kcat wrote) to a file. kcat does no line parsing; streamkit parses and prints its line
format. Without ``--broker`` a private tansu broker is started on a free 127.0.0.1 port (memory
storage) and stopped at the end. Prints a markdown table with the ratios streamkit/kcat.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers.kafka_broker import KafkaBroker, free_port, kcat_env  # noqa: E402

STREAMKIT = [sys.executable, "-c", "import sys; from streamkit.cli.main import main; main()"]

# The backend alone, without line parsing or printing: where the relay's time goes.
LIBRARY_PRODUCE = """
import asyncio, sys, time
from streamkit import connect
from streamkit.message import Message, now_ms
address, topic = sys.argv[1], sys.argv[2]
async def main():
    lines = sys.stdin.buffer.read().splitlines()
    async with connect(f"kafka://{address}") as streamer:
        producer = await streamer.producer(topic)
        for i in range(0, len(lines), 1000):
            ts = now_ms()
            await producer.send_many([Message(topic, 0, 0, ts, p) for p in lines[i:i + 1000]])
        await producer.close()
asyncio.run(main())
"""
LIBRARY_CONSUME = """
import asyncio, sys
from streamkit import connect
address, topic = sys.argv[1], sys.argv[2]
async def main():
    count = 0
    async with connect(f"kafka://{address}") as streamer:
        consumer = await streamer.consumer(topic, offset="start", follow=False)
        async for batch in consumer.batches(1000):
            count += len(batch)
        await consumer.close()
    sys.stdout.write("x\\n" * count)
asyncio.run(main())
"""


def make_data(path: Path, count: int, size: int) -> None:
    """``count`` distinct lines of ``size`` bytes (a counter padded with letters)."""
    pad = b"abcdefghijklmnopqrstuvwxyz" * (size // 26 + 1)
    with path.open("wb") as out:
        chunk: list[bytes] = []
        for i in range(count):
            head = b'{"n":%d,"pad":"' % i
            chunk.append(head + pad[: max(0, size - len(head) - 2)] + b'"}\n')
            if len(chunk) == 10000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


def timed(
    args: list[str], *, stdin: Path | None, stdout: Path | None, env: dict[str, str]
) -> float:
    started = time.perf_counter()
    with (
        open(stdin, "rb") if stdin else open(os.devnull, "rb") as inp,
        open(stdout, "wb") if stdout else open(os.devnull, "wb") as out,
    ):
        result = subprocess.run(args, stdin=inp, stdout=out, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}... failed: {result.stderr.decode()[-500:]}")
    return elapsed


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--broker", help="host:port of an existing broker (default: private tansu)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="streamkit-kafka-bench-") as tmp:
        folder = Path(tmp)
        env = kcat_env(folder / "lib")
        kcat = "kcat"
        broker: KafkaBroker | None = None
        if args.broker:
            host, _, port = args.broker.rpartition(":")
            address = args.broker
            broker = KafkaBroker(host, int(port), private=False)
        else:
            broker = KafkaBroker("127.0.0.1", free_port(), log_path=folder / "tansu.log")
            broker.start()
            address = broker.address
        try:
            data = folder / "data.txt"
            make_data(data, args.messages, args.size)
            kcat_topic, sk_topic = broker.topic("kcat"), broker.topic("streamkit")
            broker.create_topic(kcat_topic, args.partitions)
            broker.create_topic(sk_topic, args.partitions)
            n = args.messages
            rows: list[tuple[str, str, int, float]] = []

            t = timed(
                [kcat, "-b", address, "-P", "-t", kcat_topic], stdin=data, stdout=None, env=env
            )
            rows.append(("produce (stdin → kafka)", "kcat -P", n, t))  # counted below
            t = timed(
                [*STREAMKIT, "relay", "--input", f"stdio:///{sk_topic}",
                 "--output", f"kafka://{address}/{sk_topic}"],
                stdin=data, stdout=None, env=env,
            )  # fmt: skip
            check = folder / "check.txt"
            timed(
                [kcat, "-b", address, "-C", "-t", sk_topic, "-o", "beginning", "-e", "-q"],
                stdin=None, stdout=check, env=env,
            )  # fmt: skip
            rows.append(("produce (stdin → kafka)", "streamkit relay", count_lines(check), t))
            lib_topic = broker.topic("library")
            broker.create_topic(lib_topic, args.partitions)
            t = timed(
                [sys.executable, "-c", LIBRARY_PRODUCE, address, lib_topic],
                stdin=data, stdout=None, env=env,
            )  # fmt: skip
            rows.append(("produce (stdin → kafka)", "library send_many", n, t))

            out = folder / "out.txt"
            t = timed(
                [kcat, "-b", address, "-C", "-t", kcat_topic, "-o", "beginning", "-e", "-q"],
                stdin=None, stdout=out, env=env,
            )  # fmt: skip
            rows.append(("consume (kafka → stdout)", "kcat -C -e", count_lines(out), t))
            t = timed(
                [*STREAMKIT, "relay", "--input", f"kafka://{address}/{kcat_topic}",
                 "--output", f"stdio:///{kcat_topic}", "--offset", "start", "-e"],
                stdin=None, stdout=out, env=env,
            )  # fmt: skip
            rows.append(("consume (kafka → stdout)", "streamkit relay", count_lines(out), t))
            t = timed(
                [sys.executable, "-c", LIBRARY_CONSUME, address, kcat_topic],
                stdin=None, stdout=out, env=env,
            )  # fmt: skip
            rows.append(("consume (kafka → stdout)", "library batches", count_lines(out), t))
        finally:
            if broker is not None and broker.private:
                broker.stop()

    cores = os.cpu_count()
    where = address if args.broker else "private tansu"
    print(
        f"\nKafka relay vs kcat: {n:,} messages of ~{args.size} bytes, "
        f"{args.partitions} partition(s), {cores} cores, broker: {where}\n"
    )
    print("| path | program | messages | seconds | msgs/s | vs kcat |")
    print("|---|---|---:|---:|---:|---:|")
    reference: dict[str, float] = {}
    for path, program, count, seconds in rows:
        rate = count / seconds
        ratio = "1.00" if program.startswith("kcat") else f"{rate / reference[path]:.2f}"
        if program.startswith("kcat"):
            reference[path] = rate
        print(f"| {path} | {program} | {count:,} | {seconds:.2f} | {rate:,.0f} | {ratio} |")
    for path, program, count, _ in rows:
        if count != n:
            print(f"\nWARNING: {program} ({path}) delivered {count:,} of {n:,} messages")


if __name__ == "__main__":
    main()
