#!/usr/bin/env python3
"""stdio relay next to ``cat`` and plain Python loops, on the same lines, in one run.

    python scripts/benches/stdio.py [--lines 1000000]

Inputs (~100-byte lines): streamkit's own four-field lines (what ``clock``/``relay`` write) and
SeaStreamer's three-field lines ``[ts | key | seq] payload`` (what its stdio producer writes).
Each program reads the file through a pipe (``cat FILE | program > /dev/null``). References:
``cat``; a bare Python loop copying lines; a Python loop that parses each line with a regular
expression and formats it again (what a straightforward port would do).
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

PASS_THROUGH = r"""
import sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    out.write(line)
"""

REGEX_LOOP = r"""
import re, sys, datetime
pattern = re.compile(rb"\[([^|\]]*?)\s*\|\s*([^|\]]*?)\s*\|\s*(\d+)(?:\s*\|\s*(\d+))?\]\s*(.*)")
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    m = pattern.match(line)
    ts = datetime.datetime.fromisoformat(m.group(1).decode())
    out.write(b"[%s | %s | %d | %d] %s\n" % (ts.isoformat(timespec="milliseconds").encode(),
              m.group(2), int(m.group(3)), int(m.group(4) or 0), m.group(5)))
"""


def make_input(path: Path, lines: int, fields: int) -> None:
    base = 1_795_417_200_000
    pad = b"x" * 40
    with open(path, "wb") as out:
        for start in range(0, lines, 10_000):
            chunk = []
            for n in range(start, min(lines, start + 10_000)):
                ms = base + n
                sec, milli = divmod(ms, 1000)
                ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
                body = b'{"tick": %d, "pad": "%s"}' % (n, pad)
                if fields == 4:
                    chunk.append(b"[%s.%03d | tick | %d | 0] %s\n" % (ts, milli, n, body))
                else:
                    chunk.append(b"[%s | tick | %d] %s\n" % (ts, n, body))
            out.write(b"".join(chunk))


def timed(command: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True, env=env, executable="/bin/bash")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per program; the best counts")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pass.py").write_text(PASS_THROUGH)
        (work / "regex.py").write_text(REGEX_LOOP)
        rows = []
        for fields, label in ((4, "streamkit 4-field lines"), (3, "SeaStreamer 3-field lines")):
            data = work / f"in{fields}.log"
            make_input(data, args.lines, fields)
            size = data.stat().st_size
            programs = [
                ("cat", "cat"),
                ("python pass-through loop", f"{python} {work / 'pass.py'}"),
                ("python regex parse+format loop", f"{python} {work / 'regex.py'}"),
                ("streamkit relay stdio→stdio", f"{python} -m streamkit.cli.main relay"),
            ]
            results = {}
            for name, command in programs:
                # The best of --repeat runs: on a shared machine slow runs measure neighbours.
                seconds = min(
                    timed(f"cat {data} | {command} > /dev/null", env) for _ in range(args.repeat)
                )
                results[name] = args.lines / seconds
            relay = results["streamkit relay stdio→stdio"]
            for name, _ in programs:
                rate = results[name]
                megabytes = size / 1e6 / (args.lines / rate)
                rows.append(
                    f"| {label} | {name} | {rate:,.0f} | {megabytes:,.0f} | {relay / rate:.2f} |"
                )
        print(
            f"### stdio relay ({args.lines:,} lines of ~{size // args.lines} bytes, "
            f"best of {args.repeat})\n"
        )
        print("| input | program | lines/s | MB/s | relay ÷ this |")
        print("|---|---|---:|---:|---:|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
