#!/usr/bin/env python3
"""Benchmark a join of three .ss files against a plain relay of the same messages, in one run.

    python scripts/benches/join.py [--messages 300000] [--size 100]

Three recordings of ``--messages`` each, timestamps interleaved one by one (the worst case for
a merge: every run is one message long), are joined by ``relay --input A --input B --input C``;
the same messages in one file are copied by a plain ``relay --input ALL``. Both write the line
format to /dev/null. The target (issue 14) is join >= 0.5x the plain relay.
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

from streamkit.formats.ss import SsEncoder  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
START = 1_795_000_000_000
KEYS = ("a", "b", "c")


def write(path: Path, frames: list[tuple[str, int, int, int, bytes]]) -> None:
    encoder = SsEncoder()
    with open(path, "wb") as f:
        f.write(encoder.header(path.name, START))
        for first in range(0, len(frames), 5000):
            f.write(encoder.encode(frames[first : first + 5000]))
        f.write(encoder.eos(frames[-1][3]))


def make(work: Path, count: int, size: int) -> None:
    """a.ss, b.ss, c.ss (input k at START + 3i + k) and all.ss (the three merged)."""
    filler = b"x" * max(0, size - 20)
    per_input = []
    for k, key in enumerate(KEYS):
        frames = [
            (key, 0, i + 1, START + 3 * i + k, b'{"n":%09d,"f":"%s"}' % (i, filler))
            for i in range(count)
        ]
        write(work / f"{key}.ss", frames)
        per_input.append(frames)
    merged = [frame for triple in zip(*per_input) for frame in triple]
    write(work / "all.ss", merged)


def timed(args: list[str]) -> float:
    with open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        done = subprocess.run(
            [PY, "-m", "streamkit.cli.main", "relay", *args],
            stdout=sink, stderr=subprocess.PIPE, env=ENV, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"relay {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000, help="per input")
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; the best counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamkit-bench-join-") as folder:
        work = Path(folder)
        make(work, args.messages, args.size)
        total = 3 * args.messages
        plain = min(timed(["--input", f"file://{work}/all.ss/"]) for _ in range(args.repeat))
        joined_args = [a for key in KEYS for a in ("--input", f"file://{work}/{key}.ss/{key}")]
        joined = min(timed(joined_args) for _ in range(args.repeat))
        paced = min(timed([*joined_args, "--pace", "1000000x"]) for _ in range(args.repeat))
    cores = os.cpu_count()
    print(
        f"\n### join of 3 files x {args.messages:,} messages (timestamps interleaved one by "
        f"one), payload ~{args.size} B, {cores} cores, best of {args.repeat}\n"
    )
    print("| path | msgs/s | time | vs plain relay |")
    print("|---|---:|---:|---:|")
    for name, seconds in (
        (f"plain relay of the {total:,} messages in one file", plain),
        ("join: relay --input a.ss --input b.ss --input c.ss", joined),
        ("join with --pace 1000000x (pacing cost, no waits)", paced),
    ):
        print(f"| {name} | {total / seconds:,.0f} | {seconds:.2f} s | {plain / seconds:.2f}x |")


if __name__ == "__main__":
    main()
