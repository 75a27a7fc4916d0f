#!/usr/bin/env python3
"""Start-up time of short commands on stdio and file URIs, with ``python -c pass`` as yardstick.

    python scripts/benches/startup.py [--runs 10] [--before DIR]

Each command runs ``--runs`` times, the commands interleaved so that a burst of load on a shared
machine hits them all alike; the table gives the best wall time and the best CPU time (user +
system of the process and its children). ``--before DIR`` measures another checkout too (an
older commit from ``git archive``), interleaved with this one. Python writes no bytecode when
``PYTHONDONTWRITEBYTECODE`` is set, which makes every import compile its source: the tree is
byte-compiled first, as an installed package is. Target (issue 16): <= 0.1 s for any command on
a stdio or file URI.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
# The console script as pip writes it, without a version manager's shell shim in front.
SCRIPT = "import re, sys; from streamkit.cli.main import main; sys.exit(main())"

COMMANDS = [
    ("python -c pass", f"{PY} -c pass"),
    ("python -c 'import asyncio'", f"{PY} -c 'import asyncio'"),
    ("python -c 'import streamkit'", f"{PY} -c 'import streamkit'"),
    ("streamkit --version", "{sk} --version"),
    ("streamkit --help", "{sk} --help"),
    ("streamkit decode tick.ss \\| head -3", "{sk} decode tick.ss | head -3"),
    ("streamkit verify tick.ss", "{sk} verify tick.ss"),
    ("streamkit stat file://./tick.ss", "{sk} stat file://./tick.ss"),
    ("streamkit clock --count 1", "{sk} clock --stream t --count 1"),
    (
        "relay stdio → stdio (200 lines)",
        "{sk} relay --input stdio:///tick --output stdio:///tick < tick.txt",
    ),
    (
        "relay stdio → file (200 lines)",
        "rm -f o.ss; {sk} relay --input stdio:///tick --output file://./o.ss/tick < tick.txt",
    ),
    (
        "relay file → stdio (200 messages)",
        "{sk} relay --input file://./tick.ss/tick --output stdio:///tick",
    ),
]


def measure(trees: list[Path], runs: int) -> list[dict[str, tuple[float, float]]]:
    """Best (wall, CPU) per command and tree; trees and commands interleaved in every run."""
    for tree in trees:
        compileall.compile_dir(str(tree / "streamkit"), quiet=1)
    sk = f"{PY} -c '{SCRIPT}'"
    best: list[dict[str, tuple[float, float]]] = [{} for _ in trees]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        env = {**os.environ, "PYTHONPATH": str(trees[0])}
        clock = f"{sk} clock --stream tick --interval 1ms --count 200 > tick.txt"
        subprocess.run(clock, shell=True, cwd=work, env=env, check=True)
        relay = f"{sk} relay --input stdio:///tick --output file://./tick.ss/tick < tick.txt"
        subprocess.run(relay, shell=True, cwd=work, env=env, check=True)
        for _ in range(runs):
            for name, command in COMMANDS:
                for tree, table in zip(trees, best):
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    table[name] = min_pair(table.get(name), run(command.format(sk=sk), work, env))
    return best


def run(command: str, work: Path, env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        command, shell=True, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{command}: exit {done.returncode}: {done.stderr.decode()[-300:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def min_pair(old: tuple[float, float] | None, new: tuple[float, float]) -> tuple[float, float]:
    return new if old is None else (min(old[0], new[0]), min(old[1], new[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--before", type=Path, help="another checkout to compare with, e.g. a git archive"
    )
    args = parser.parse_args()
    trees = [ROOT] if args.before is None else [args.before.resolve(), ROOT]
    best = measure(trees, args.runs)
    base = best[-1]["python -c pass"][0]
    print(f"best of {args.runs}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print()
    heads = ["before: wall", "before: CPU", "wall", "CPU"] if len(trees) == 2 else ["wall", "CPU"]
    print("| command | " + " | ".join(heads) + " | wall over python -c pass |")
    print("|---|" + "---:|" * (len(heads) + 1))
    for name, _ in COMMANDS:
        cells = [f"{value * 1000:.0f} ms" for table in best for value in table[name]]
        over = (best[-1][name][0] - base) * 1000
        print(f"| {name} | " + " | ".join(cells) + f" | {over:+.0f} ms |")


if __name__ == "__main__":
    main()
