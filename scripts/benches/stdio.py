#!/usr/bin/env python3
"""stdio relay next to ``cat``, plain Python loops and SeaStreamer's ``stdio-relay``, in one run.

    python scripts/benches/stdio.py [--lines 5000000] [--repeat 3] [--seastreamer DIR]

Inputs (~100-byte lines): streamkit's own four-field lines (what ``clock``/``relay`` write), the
same spread over 7 keys x 3 shards, SeaStreamer's three-field lines ``[ts | key | seq] payload``
(what its stdio producer writes) and three-field lines that all share one timestamp. Each program
reads the file through a pipe (``cat FILE | program > /dev/null``). References: ``cat``; a bare
Python loop copying lines (the yardstick: the compiled relay must reach 0.9x of it); a Python
loop that parses each line with a regular expression and formats it again (what a
straightforward port would do); SeaStreamer's ``stdio-relay`` (never exits: timed until its
last output line, then killed; it parses each payload as JSON, so only on JSON payloads).
streamkit runs with the C codec and with ``STREAMKIT_PURE_PYTHON=1``.

Fair comparisons on a shared machine: the programs of one input run in rounds, one run of each
per round and every other round in reverse order, so a burst of load hits them alike; each row
keeps its best wall time and its best CPU time (user + system of the pipeline); the ratios
also give the median over the rounds of the ratio within a round. The C relay
moves a line in ~0.1-0.2 µs but starts in ~0.1-0.3 s, so with 1M lines start-up was most of a
run and its jitter decided the keyed-vs-default ratio (0.80-1.42 between runs): hence 5M lines
by default, and the start-up of each relay command (an empty input, in the same rounds) is
measured so the keyed ratios are also given net of it. Under load (7 sessions on 2 cores) the
best-wall ratios still swung by +-20 % between runs; the CPU and median ratios by a few percent.
The inputs run one after the other, so a ratio between rows of two inputs is taken between
their rates over their own input's pass-through loop (``across``). The slow programs
(pure Python, the regex loop, SeaStreamer's relay) run on the first fifth of the lines and
their times are scaled up: at 5M lines one run of any of them took longer than all other rows
of its input together. The tree is byte-compiled first, as an installed package is (with
``PYTHONDONTWRITEBYTECODE`` set every run would compile its source).
"""

# ruff: noqa: E501  (tables of rows read best one row per line)
from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SEASTREAMER = ROOT.parent / "shared" / "tools" / "seastreamer"

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

KEYS7 = [f"k{n}" for n in range(7)]


def make_input(path: Path, lines: int, fields: int, keys: int = 1, shards: int = 1, *,
               one_time: bool = False) -> None:  # fmt: skip
    base = 1_795_417_200_000
    pad = b"x" * 40
    names = [b"tick"] if keys == 1 else [k.encode() for k in KEYS7[:keys]]
    seconds: dict[int, bytes] = {}  # strftime once per second of timestamps, not per line
    with open(path, "wb") as out:
        for start in range(0, lines, 10_000):
            chunk = []
            for n in range(start, min(lines, start + 10_000)):
                ms = base if one_time else base + n
                sec, milli = divmod(ms, 1000)
                ts = seconds.get(sec)
                if ts is None:
                    ts = seconds[sec] = time.strftime(
                        "%Y-%m-%dT%H:%M:%S", time.gmtime(sec)
                    ).encode()
                body = b'{"tick": %d, "pad": "%s"}' % (n, pad)
                key = names[n % len(names)]
                if fields == 4:
                    line = b"[%s.%03d | %s | %d | %d] %s\n" % (ts, milli, key, n, n % shards, body)
                else:
                    line = b"[%s | %s | %d] %s\n" % (ts, key, n, body)
                chunk.append(line)
            out.write(b"".join(chunk))


def timed(command: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole pipeline) of one shell command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True, env=env, executable="/bin/bash")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def timed_until_lines(
    command: list[str], data: Path, lines: int, idle: float = 5.0
) -> tuple[float, int]:
    """(seconds, lines) until ``command``, fed ``data`` on stdin, has written ``lines`` lines,
    or until its last output when it falls silent for ``idle`` seconds before that; it is then
    killed (SeaStreamer's stdio-relay never exits at end of input, and may drop lines)."""
    import select

    with open(data, "rb") as stdin:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE)
        assert process.stdout is not None
        fd = process.stdout.fileno()
        seen, last = 0, start
        try:
            while seen < lines:
                ready, _, _ = select.select([fd], [], [], idle)
                if not ready:
                    break
                block = os.read(fd, 1 << 16)
                if not block:
                    break
                seen += block.count(b"\n")
                last = time.perf_counter()
        finally:
            process.kill()
            process.wait()
    if seen == 0:
        raise RuntimeError(f"{command[0]} wrote nothing")
    return last - start, seen


# (input, program, command or None for SeaStreamer's relay, environment)
Row = tuple[str, str, str | None, dict[str, str]]
REGEX_NAME = "python regex parse+format loop"
SEA_NAME = "SeaStreamer stdio-relay --input tick --output tick"
START_UP = "start-up"
"""The pseudo-input of the start-up rows: each C relay command on an empty input."""


def is_slow(program: str) -> bool:
    """Programs timed on the first fifth of the lines: at 5M lines one run of any of them took
    longer than every other row of its input together, and their start-up is negligible."""
    return program.endswith("pure Python") or program in (REGEX_NAME, SEA_NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each row keeps its best")
    parser.add_argument(
        "--seastreamer",
        type=Path,
        default=Path(os.environ.get("STREAMKIT_SEASTREAMER", DEFAULT_SEASTREAMER)),
        help="folder of SeaStreamer's tools (stdio-relay); skipped when absent",
    )
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "streamkit"), quiet=1)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("STREAMKIT_PURE_PYTHON", None)
    pure_env = dict(env, STREAMKIT_PURE_PYTHON="1")
    python = sys.executable
    sea_relay = args.seastreamer / "stdio-relay"
    have_sea = os.access(sea_relay, os.X_OK)
    relay = f"{python} -m streamkit.cli.main relay"
    keyed = "--input stdio:///tick --output stdio:///tick"
    keyed7 = f"--input stdio:///{','.join(KEYS7)} --output stdio:///out"
    default_name = "streamkit relay (default URIs)"
    keyed_name = f"streamkit relay {keyed}"
    keyed7_name = "streamkit relay --input stdio:///k0,…,k6 --output stdio:///out"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pass.py").write_text(PASS_THROUGH)
        (work / "regex.py").write_text(REGEX_LOOP)
        inputs = {
            "4-field lines": (4, 1, 1, False),
            "4-field, 7 keys x 3 shards": (4, 7, 3, False),
            "SeaStreamer 3-field lines": (3, 1, 1, False),
            "3-field, one timestamp for all lines": (3, 1, 1, True),
        }
        plan: list[Row] = []
        for label in inputs:
            plan.append((label, "cat", "cat", env))
            plan.append((label, "python pass-through loop", f"{python} {work / 'pass.py'}", env))
        plan += [
            ("4-field lines", REGEX_NAME, f"{python} {work / 'regex.py'}", env),
            ("4-field lines", default_name, relay, env),
            ("4-field lines", keyed_name, f"{relay} {keyed}", env),
            ("4-field lines", f"{default_name}, pure Python", relay, pure_env),
            ("4-field, 7 keys x 3 shards", default_name, relay, env),
            ("4-field, 7 keys x 3 shards", keyed7_name, f"{relay} {keyed7}", env),
            ("SeaStreamer 3-field lines", default_name, relay, env),
            ("SeaStreamer 3-field lines", keyed_name, f"{relay} {keyed}", env),
            ("SeaStreamer 3-field lines", f"{keyed_name}, pure Python", f"{relay} {keyed}", pure_env),
            ("3-field, one timestamp for all lines", keyed_name, f"{relay} {keyed}", env),
        ]  # fmt: skip
        if have_sea:
            for label in ("SeaStreamer 3-field lines", "3-field, one timestamp for all lines"):
                plan.append((label, SEA_NAME, None, env))
        # Start-up of each C relay command, in the rounds of the first input (see the docstring).
        start_up = [(START_UP, name, f"{relay} {a}".strip(), env) for name, a in
                    ((default_name, ""), (keyed_name, keyed), (keyed7_name, keyed7))]  # fmt: skip
        empty = work / "empty.log"
        empty.write_bytes(b"")
        best: dict[tuple[str, str], tuple[float, float | None]] = {}
        walls: dict[tuple[str, str], list[float]] = {}  # every round's wall time, in order
        dropped: dict[tuple[str, str], int] = {}
        sizes: dict[str, int] = {}
        few = max(1, args.lines // 5)  # the lines of the slow programs (is_slow)
        for label, (fields, keys, shards, one_time) in inputs.items():
            data = work / "input.log"  # one input at a time: 5M lines are ~0.5 GB
            make_input(data, args.lines, fields, keys, shards, one_time=one_time)
            sizes[label] = data.stat().st_size
            part = work / "part.log"  # the first `few` lines of the same input
            make_input(part, few, fields, keys, shards, one_time=one_time)
            rows = [row for row in plan if row[0] == label]
            if not best:
                rows += start_up
            for round_ in range(args.repeat):
                for row in rows if round_ % 2 == 0 else rows[::-1]:
                    run_label, name, command, run_env = row
                    source, count = (part, few) if is_slow(name) else (data, args.lines)
                    if command is None:
                        seconds, written = timed_until_lines([str(sea_relay), "--input", "tick", "--output", "tick"], source, count)  # fmt: skip
                        if written < count:
                            dropped[(label, name)] = count - written
                        result: tuple[float, float | None] = (seconds * count / written, None)
                    else:
                        if run_label == START_UP:
                            source = empty
                        result = timed(f"cat {source} | {command} > /dev/null", run_env)
                    # Every time is for args.lines lines: a slow program's is scaled up.
                    scale = args.lines / count
                    result = (result[0] * scale, None if result[1] is None else result[1] * scale)
                    walls.setdefault((run_label, name), []).append(result[0])
                    old = best.get((run_label, name))
                    if old is not None:
                        cpu = None if result[1] is None else min(result[1], old[1] or result[1])
                        result = (min(old[0], result[0]), cpu)
                    best[(run_label, name)] = result
            data.unlink()
            part.unlink()
        print(
            f"### stdio relay ({args.lines:,} lines of ~{sizes['4-field lines'] // args.lines} "
            f"bytes, best of {args.repeat} interleaved rounds; streamkit codec: C unless marked "
            f"pure Python; the pure-Python, regex and SeaStreamer rows on the first {few:,})\n"
        )
        print("| input | program | lines/s | MB/s | ÷ pass-through loop |")
        print("|---|---|---:|---:|---:|")
        for label, name, _, _ in plan_sorted(plan, inputs):
            rate = args.lines / best[(label, name)][0]
            yardstick = args.lines / best[(label, "python pass-through loop")][0]
            megabytes = sizes[label] / 1e6 / (args.lines / rate)
            print(f"| {label} | {name} | {rate:,.0f} | {megabytes:,.0f} | {rate / yardstick:.2f} |")
        for (label, name), count in dropped.items():
            print(f"\n({name} on {label}: {count:,} of {few:,} lines never came out; its rate counts the "
                  "lines written until its last output)")  # fmt: skip
        starts = {name: best[(START_UP, name)][0] for _, name, _, _ in start_up}
        print("\nStart-up (same rounds, empty input): " + ", ".join(
            f"{name} {seconds * 1000:.0f} ms" for name, seconds in starts.items()) + ".\n")  # fmt: skip

        def ratio(
            a: tuple[str, str], b: tuple[str, str]
        ) -> tuple[float, float, float | None, float | None]:
            """b's time over a's (a's rate over b's): best wall, median over the rounds of the
            wall ratio within each round, best CPU, best wall net of start-up."""
            (wall_a, cpu_a), (wall_b, cpu_b) = best[a], best[b]
            paired = statistics.median(y / x for x, y in zip(walls[a], walls[b]))
            cpu = cpu_b / cpu_a if cpu_a is not None and cpu_b is not None else None
            net = None  # only where start-up is a small part (not with a few thousand lines)
            if a[1] in starts and b[1] in starts:
                net_a, net_b = wall_a - starts[a[1]], wall_b - starts[b[1]]
                if min(net_a, net_b) > max(starts[a[1]], starts[b[1]]):
                    net = net_b / net_a
            return wall_b / wall_a, paired, cpu, net

        def across(
            a: tuple[str, str], b: tuple[str, str]
        ) -> tuple[float, float, float | None, float | None]:
            """``ratio`` between rows of two inputs, each first taken over its own input's
            pass-through loop: the inputs run one after the other, and this machine's speed
            drifts by more than the 10 % these ratios are about between them (the pass-through
            loop itself measured 1.15M and 1.55M lines/s on inputs that differ in keys only)."""
            yard_a, yard_b = (a[0], "python pass-through loop"), (b[0], "python pass-through loop")
            own_a, own_b = ratio(a, yard_a), ratio(b, yard_b)
            cpu = None
            if own_a[2] is not None and own_b[2] is not None:
                cpu = own_a[2] / own_b[2]
            return own_a[0] / own_b[0], own_a[1] / own_b[1], cpu, None

        four = "4-field lines"
        seven = "4-field, 7 keys x 3 shards"
        three = "SeaStreamer 3-field lines"
        checks = [
            ("relay 4-field lines, default URIs ÷ pass-through loop (target ≥ 0.9)",
             ratio((four, default_name), (four, "python pass-through loop"))),
            (f"relay 4-field lines {keyed} ÷ default URIs (target ≥ 0.9)",
             ratio((four, keyed_name), (four, default_name))),
            ("relay 7 keys x 3 shards, keyed input ÷ default URIs on 4-field lines, each over its input's pass-through loop (target ≥ 0.9)",
             across((seven, keyed7_name), (four, default_name))),
            ("relay 7 keys x 3 shards, keyed input ÷ default URIs on the same lines",
             ratio((seven, keyed7_name), (seven, default_name))),
            (f"relay SeaStreamer 3-field lines {keyed} ÷ default URIs on the same lines (target ≥ 0.9)",
             ratio((three, keyed_name), (three, default_name))),
            ("pure-Python relay ÷ C relay, default URIs",
             ratio((four, f"{default_name}, pure Python"), (four, default_name))),
        ]  # fmt: skip
        if have_sea:
            checks.append(
                (f"relay SeaStreamer 3-field lines {keyed} ÷ SeaStreamer stdio-relay (target ≥ 3)",
                 ratio((three, keyed_name), (three, SEA_NAME)))
            )  # fmt: skip
        print(
            "| ratio (same run) | wall, best | wall, median of rounds | CPU, best | wall net of start-up |"
        )
        print("|---|---:|---:|---:|---:|")
        for text, (wall, paired, cpu, net) in checks:
            cells = [f"**{wall:.2f}**", f"{paired:.2f}"]
            cells += ["—" if v is None else f"{v:.2f}" for v in (cpu, net)]
            print(f"| {text} | " + " | ".join(cells) + " |")
        if not have_sea:
            print(f"\n(SeaStreamer's stdio-relay not found in {args.seastreamer}: its rows are skipped;"
                  " pass --seastreamer DIR)")  # fmt: skip


def plan_sorted(plan: list[Row], inputs: Mapping[str, object]) -> list[Row]:
    order = list(inputs)
    return sorted(plan, key=lambda row: order.index(row[0]))


if __name__ == "__main__":
    main()
