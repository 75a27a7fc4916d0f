#!/usr/bin/env python3
"""Redis relay throughput next to redis-benchmark's pipelined XADD, on one private server.

Starts its own ``redis-server`` on a free 127.0.0.1 port (``--save "" --appendonly no``),
then measures, in one run:

* ``redis-benchmark -P 1000`` XADD of ~100-byte values (the server's ceiling on this machine);
* ``streamkit relay`` stdio→redis of N ~100-byte lines from a file;
* ``streamkit relay`` redis→stdio of the same N entries (``--offset start --no-follow``);
* the library alone (``send_many`` / ``next_batch``), to separate backend from CLI cost.

Each row is the best of ``--repeat`` runs (the machine may be shared: ratios come from one
invocation). Prints a markdown table and which Redis codec ran (C or pure, see
streamkit/backends/redis/codec.py; ``STREAMKIT_PURE_PYTHON=1`` for the pure one).
Usage: ``python scripts/benches/redis.py [--messages N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# this file is named redis.py: drop its folder from the path so that `import redis` finds redis-py
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from streamkit.backends.redis import codec  # noqa: E402
from streamkit.connect import connect  # noqa: E402
from streamkit.message import Message, now_ms  # noqa: E402

PAYLOAD = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--logfile", str(directory / "log")],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, check=True, text=True
    ).stdout


def redis_benchmark(port: int, n: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(n), "-P", "1000",
         "-c", "1", "-q", "XADD", "rb:bench", "*", "msg", "x" * PAYLOAD],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    rates = re.findall(r"([\d.]+) requests per second", out.replace("\r", "\n"))
    if not rates:
        raise SystemExit(f"cannot read redis-benchmark output: {out!r}")
    cli(port, "DEL", "rb:bench")
    return float(rates[-1])


def relay(args: list[str], stdin: Path | None, stdout: Path) -> float:
    command = [sys.executable, "-m", "streamkit.cli.main", "relay", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with open(stdout, "wb") as out:
        source = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
        try:
            result = subprocess.run(command, stdin=source, stdout=out, stderr=subprocess.PIPE,
                                    env=env)  # fmt: skip
        finally:
            if stdin:
                source.close()  # type: ignore[union-attr]
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"relay {' '.join(args)} failed: {result.stderr.decode()[-500:]}")
    return elapsed


async def library(port: int, n: int) -> tuple[float, float]:
    key = f"lib{time.time_ns()}"
    base = now_ms()
    messages = [Message(key, 0, 0, base + i // 1000, b"%0100d" % i) for i in range(n)]
    async with connect(f"redis://127.0.0.1:{port}") as streamer:
        producer = await streamer.producer(key)
        started = time.perf_counter()
        for i in range(0, n, 1000):
            await producer.send_many(messages[i : i + 1000])
        await producer.flush()
        produce = time.perf_counter() - started
        consumer = await streamer.consumer(key, offset="start", follow=False)
        started = time.perf_counter()
        count = 0
        async for batch in consumer.batches(1000):
            count += len(batch)
        consume = time.perf_counter() - started
        assert count == n, (count, n)
    return produce, consume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs per row")
    parsed = parser.parse_args()
    n, repeat = parsed.messages, max(1, parsed.repeat)
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install redis-server redis-tools)")
    with tempfile.TemporaryDirectory(prefix="streamkit-bench-redis-") as tmp:
        folder = Path(tmp)
        process, port = start_server(folder)
        try:
            lines = folder / "in.txt"
            with open(lines, "wb") as f:
                for start in range(0, n, 10000):
                    f.write(b"".join(b"%0100d\n" % i for i in range(start, min(n, start + 10000))))
            ceiling = max(redis_benchmark(port, n) for _ in range(repeat))
            url = f"redis://127.0.0.1:{port}/bench"
            to_redis = from_redis = produce = consume = float("inf")
            for _ in range(repeat):
                cli(port, "DEL", "bench")
                to_redis = min(
                    to_redis, relay(["--input", "stdio:///bench", "--output", url], lines,
                                    folder / "o1"),
                )  # fmt: skip
                stored = int(cli(port, "XLEN", "bench"))
                from_redis = min(
                    from_redis,
                    relay(["--input", url, "--output", "stdio:///bench", "--offset", "start",
                           "--no-follow"], None, folder / "o2"),
                )  # fmt: skip
                with open(folder / "o2", "rb") as f:
                    chunks = iter(lambda: f.read(1 << 20), b"")
                    read_back = sum(chunk.count(b"\n") for chunk in chunks)
                lib_produce, lib_consume = asyncio.run(library(port, n))
                produce, consume = min(produce, lib_produce), min(consume, lib_consume)
        finally:
            process.terminate()
            process.wait()
    rows = [
        ("redis-benchmark XADD -P 1000 -c 1 (reference)", n, n / ceiling),
        ("relay stdio → redis", stored, to_redis),
        ("relay redis → stdio", read_back, from_redis),
        ("library send_many (Message, keeps ts)", n, produce),
        ("library next_batch(1000)", n, consume),
    ]
    print(f"Redis, {n:,} messages of ~{PAYLOAD} bytes, {os.cpu_count()} cores, redis-server "
          f"{cli_version()}, Redis codec: {codec.IMPLEMENTATION}, best of {repeat}\n")  # fmt: skip
    print("| path | messages | seconds | msgs/s | vs redis-benchmark |")
    print("|---|---:|---:|---:|---:|")
    for name, count, seconds in rows:
        rate = count / seconds
        print(f"| {name} | {count:,} | {seconds:.2f} | {rate:,.0f} | {rate / ceiling:.2f} |")
    if stored != n or read_back != n:
        raise SystemExit(f"count mismatch: {n} in, {stored} stored, {read_back} read back")


def cli_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"v=(\S+)", out)
    return match.group(1) if match else "?"


if __name__ == "__main__":
    main()
