#!/usr/bin/env python3
"""Kafka relay next to kcat, on one broker and one data set, in one run.

    python scripts/benches/kafka.py [--messages N] [--size B] [--runs 3] [--before DIR]
        [--broker host:port]

Produce: ``kcat -P`` and ``streamkit relay stdio → kafka`` each read the same file of N lines,
each run into a fresh topic whose count is checked. Consume: ``kcat -C -e`` and ``streamkit
relay kafka → stdio -e`` each read the same topic (one kcat wrote) to a file. kcat does no line
parsing; streamkit parses and prints its line format. Every row is the best of ``--runs`` runs,
the programs of a path taking turns in each run so that a burst of load on a shared machine
hits them alike. Also timed: the relay of an empty input to Kafka (start-up, connecting,
closing: the fixed cost inside each produce figure). ``--before DIR`` runs another checkout's
relay too, taking turns with this one's: a before/after ratio measured in one run.

Python writes no bytecode when ``PYTHONDONTWRITEBYTECODE`` is set, which makes every import
compile its source: the trees are byte-compiled first, as an installed package is, and the
streamkit runs use this tree (``PYTHONPATH``). Without ``--broker`` a private tansu broker is
started on a free 127.0.0.1 port (memory storage) and stopped at the end. Prints a markdown
table with the ratios streamkit/kcat.
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def best_of(
    runs: int, programs: list[tuple[str, Callable[[], tuple[int, float]]]]
) -> list[tuple[str, int, float]]:
    """(program, messages, best seconds) of each program, the programs taking turns per run.

    A run whose message count is short still counts as a run, but the row keeps the lowest
    count seen, so a lost message shows in the table however fast the run was.
    """
    best: dict[str, tuple[int, float]] = {}
    for _ in range(runs):
        for name, run in programs:
            count, seconds = run()
            old_count, old_seconds = best.get(name, (count, seconds))
            best[name] = (min(count, old_count), min(seconds, old_seconds))
    return [(name, *best[name]) for name, _ in programs]


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs per row")
    parser.add_argument("--broker", help="host:port of an existing broker (default: private tansu)")
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (e.g. a git archive with its C codec built) whose relay takes "
        "turns with this one's",
    )
    args = parser.parse_args()
    trees = [ROOT] if args.before is None else [ROOT, args.before.resolve()]
    for tree in trees:
        compileall.compile_dir(str(tree / "streamkit"), quiet=1)

    started_in = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="streamkit-kafka-bench-") as tmp:
        folder = Path(tmp)
        # ``python -c`` puts the current directory first on sys.path: run where no checkout
        # can shadow the tree that PYTHONPATH names.
        os.chdir(folder)
        env = kcat_env(folder / "lib")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        before_env = None if args.before is None else {**env, "PYTHONPATH": str(trees[1])}
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
            n = args.messages
            rows: list[tuple[str, str, int, float]] = []
            check = folder / "check.txt"

            def fresh_topic(prefix: str) -> str:
                topic = broker.topic(prefix)
                broker.create_topic(topic, args.partitions)
                return topic

            def stored(topic: str) -> int:
                timed(
                    [kcat, "-b", address, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                    stdin=None, stdout=check, env=env,
                )  # fmt: skip
                return count_lines(check)

            kcat_topics: list[str] = []

            def kcat_produce() -> tuple[int, float]:
                topic = fresh_topic("kcat")
                kcat_topics.append(topic)
                t = timed(
                    [kcat, "-b", address, "-P", "-t", topic], stdin=data, stdout=None, env=env
                )
                return stored(topic), t

            def relay_produce(tree_env: dict[str, str]) -> Callable[[], tuple[int, float]]:
                def run() -> tuple[int, float]:
                    topic = fresh_topic("streamkit")
                    t = timed(
                        [*STREAMKIT, "relay", "--input", f"stdio:///{topic}",
                         "--output", f"kafka://{address}/{topic}"],
                        stdin=data, stdout=None, env=tree_env,
                    )  # fmt: skip
                    return stored(topic), t

                return run

            def library_produce() -> tuple[int, float]:
                topic = fresh_topic("library")
                t = timed(
                    [sys.executable, "-c", LIBRARY_PRODUCE, address, topic],
                    stdin=data, stdout=None, env=env,
                )  # fmt: skip
                return stored(topic), t

            empty_topic = fresh_topic("empty")

            def relay_empty(tree_env: dict[str, str]) -> Callable[[], tuple[int, float]]:
                def run() -> tuple[int, float]:
                    t = timed(
                        [*STREAMKIT, "relay", "--input", f"stdio:///{empty_topic}",
                         "--output", f"kafka://{address}/{empty_topic}"],
                        stdin=None, stdout=None, env=tree_env,
                    )  # fmt: skip
                    return 0, t

                return run

            produce = "produce (stdin → kafka)"
            relays = [("streamkit relay", relay_produce(env))]
            empties = [("streamkit relay", relay_empty(env))]
            if before_env is not None:
                relays.append(("streamkit relay (--before)", relay_produce(before_env)))
                empties.append(("streamkit relay (--before)", relay_empty(before_env)))
            for program, count, t in best_of(
                args.runs,
                [("kcat -P", kcat_produce), *relays, ("library send_many", library_produce)],
            ):
                rows.append((produce, program, count, t))
            fixed = [(program, t) for program, _, t in best_of(args.runs, empties)]

            source = kcat_topics[0]
            out = folder / "out.txt"

            def kcat_consume() -> tuple[int, float]:
                t = timed(
                    [kcat, "-b", address, "-C", "-t", source, "-o", "beginning", "-e", "-q"],
                    stdin=None, stdout=out, env=env,
                )  # fmt: skip
                return count_lines(out), t

            def relay_consume() -> tuple[int, float]:
                t = timed(
                    [*STREAMKIT, "relay", "--input", f"kafka://{address}/{source}",
                     "--output", f"stdio:///{source}", "--offset", "start", "-e"],
                    stdin=None, stdout=out, env=env,
                )  # fmt: skip
                return count_lines(out), t

            def library_consume() -> tuple[int, float]:
                t = timed(
                    [sys.executable, "-c", LIBRARY_CONSUME, address, source],
                    stdin=None, stdout=out, env=env,
                )  # fmt: skip
                return count_lines(out), t

            consume = "consume (kafka → stdout)"
            for program, count, t in best_of(
                args.runs,
                [
                    ("kcat -C -e", kcat_consume),
                    ("streamkit relay", relay_consume),
                    ("library batches", library_consume),
                ],
            ):
                rows.append((consume, program, count, t))
        finally:
            os.chdir(started_in)
            if broker is not None and broker.private:
                broker.stop()

    cores = os.cpu_count()
    where = address if args.broker else "private tansu"
    print(
        f"\nKafka relay vs kcat: {n:,} messages of ~{args.size} bytes, "
        f"{args.partitions} partition(s), {cores} cores, broker: {where}, "
        f"best of {args.runs}\n"
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
    for program, seconds in fixed:
        print(f"\n{program} of an empty input to Kafka (fixed cost, in each produce row): "
              f"{seconds:.2f} s")  # fmt: skip
    for path, program, count, _ in rows:
        if count != n:
            print(f"\nWARNING: {program} ({path}) delivered {count:,} of {n:,} messages")


if __name__ == "__main__":
    main()
