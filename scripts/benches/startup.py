#!/usr/bin/env python3
"""Start-up of streamkit's commands on stdio and file URIs, over ``python -c pass`` (issue 16).

    python scripts/benches/startup.py [--runs 10] [--before DIR] [--instructions]

Target (issue 16): any command on a stdio or file URI starts within 0.1 s, on a machine where
``python -c pass`` takes 0.034 s (the issue's own figures). This machine's speed swings 2x, so
the target is judged as a ratio to ``python -c pass`` measured in the same run (the yardstick,
printed with it): at most 0.1 / 0.034 = 2.94 times the yardstick. The time over the yardstick is
printed too (what streamkit adds to bare Python).

Two tables:

1. Wall time: every command ``--runs`` times, interleaved with the yardstick (a burst of load
   hits them all alike); best of the runs, the difference over the yardstick, the ratio to it,
   and whether the difference meets the target.
2. ``python -X importtime`` (best of ``--runs`` per module): the time spent importing modules
   that ``python -c pass`` does not import (self times summed), the part of it in streamkit's
   own modules, and the biggest things streamkit imports from outside (cumulative times of the
   outside modules a streamkit module imports directly).

``--instructions`` adds a third table: instructions executed (valgrind's callgrind, one run
each, ``PYTHONHASHSEED=0``), the same for every run however loaded the machine is, so before
and now compare exactly where wall times of a shared machine do not.

Commands run as the console script pip writes (``from streamkit.cli.main import main``), not
through a version manager's shell shim, which adds its own start-up. ``--before DIR`` measures
another checkout as well (e.g. ``git archive`` of an older commit), interleaved with this one.
The trees are byte-compiled first, as an installed package is.
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SCRIPT = "import re, sys; from streamkit.cli.main import main; sys.exit(main())"
TARGET_RATIO = 0.1 / 0.034
"""0.1 s where ``python -c pass`` takes 0.034 s (issue 16), as a ratio to the yardstick."""
YARDSTICK = "python -c pass"

COMMANDS: list[tuple[str, str]] = [
    ("streamkit --version", "--version"),
    ("streamkit --help", "--help"),
    ("clock --count 1 (stdout)", "clock --stream t --count 1"),
    ("relay stdio → stdio", "relay --input stdio:///tick --output stdio:///tick < tick.txt"),
    ("relay stdio → file", "relay --input stdio:///tick --output file://./o.ss/tick < tick.txt"),
    ("relay file → stdio", "relay --input file://./tick.ss/tick --output stdio:///tick"),
    ("decode tick.ss", "decode tick.ss"),
    ("decode tick.ss --format ndjson", "decode tick.ss --format ndjson"),
    ("verify tick.ss", "verify tick.ss"),
    ("stat file://./tick.ss", "stat file://./tick.ss"),
]


def shell(tree: Path, args: str, importtime: bool = False) -> str:
    flag = "-X importtime " if importtime else ""
    return f"PYTHONPATH={tree} {PY} {flag}-c '{SCRIPT}' {args}"


def prepare(work: Path) -> None:
    """200 ticks as lines (tick.txt) and as a .ss file (tick.ss), made by this tree."""
    make = shell(ROOT, "clock --stream tick --interval 1ms --count 200 > tick.txt")
    subprocess.run(make, shell=True, cwd=work, check=True)
    copy = shell(ROOT, "relay --input stdio:///tick --output file://./tick.ss/tick < tick.txt")
    subprocess.run(copy, shell=True, cwd=work, check=True)


def wall(command: str, work: Path) -> tuple[float, str]:
    """Wall time of ``command`` (a shell line) and its stderr; exits on failure."""
    if "o.ss" in command:
        (work / "o.ss").unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        command, shell=True, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{command}: exit {done.returncode}: {done.stderr.decode()[-300:]}")
    return seconds, done.stderr.decode()


def measure_walls(trees: list[Path], runs: int, work: Path) -> list[dict[str, float]]:
    """Best wall time per command (and of the yardstick) per tree, everything interleaved."""
    best: list[dict[str, float]] = [{} for _ in trees]
    for _ in range(runs):
        for name, args in [(YARDSTICK, ""), *COMMANDS]:
            for tree, table in zip(trees, best):
                command = f"{PY} -c pass" if name == YARDSTICK else shell(tree, args)
                seconds, _ = wall(command, work)
                table[name] = min(table.get(name, seconds), seconds)
    return best


# One module's import: (self µs, cumulative µs, parent module or None when imported at top level).
Imports = dict[str, tuple[int, int, str | None]]


def parse_importtime(text: str) -> Imports:
    """``-X importtime`` output as module → (self, cumulative, parent); children come first."""
    rows: list[tuple[str, int, int, int]] = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own_text, cumulative_text, label = line[len("import time:") :].split("|")
        depth = (len(label) - len(label.lstrip()) - 1) // 2
        rows.append((label.strip(), depth, int(own_text), int(cumulative_text)))
    found: Imports = {}
    for index, (name, depth, own, cumulative) in enumerate(rows):
        parent = next((other for other, d, _, _ in rows[index + 1 :] if d < depth), None)
        found[name] = (own, cumulative, parent)
    return found


def best_imports(command: str, runs: int, work: Path) -> Imports:
    """Per module, the smallest self and cumulative time of ``runs`` runs."""
    best: Imports = {}
    for _ in range(runs):
        _, stderr = wall(command, work)
        for name, (own, cumulative, parent) in parse_importtime(stderr).items():
            old = best.get(name)
            if old is not None:
                own, cumulative = min(own, old[0]), min(cumulative, old[1])
            best[name] = (own, cumulative, parent)
    return best


def summarise(imports: Imports, bare: set[str]) -> tuple[float, float, list[tuple[str, float]]]:
    """(ms importing what bare Python does not, ms of it in streamkit's own modules, the
    biggest outside imports that streamkit's modules make: (name, cumulative ms))."""
    extra = {name: row for name, row in imports.items() if name not in bare}
    total = sum(own for own, _, _ in extra.values()) / 1000
    ours = sum(own for name, (own, _, _) in extra.items() if _ours(name)) / 1000
    outside = [
        (name, cumulative / 1000)
        for name, (_, cumulative, parent) in extra.items()
        if not _ours(name) and (parent is None or _ours(parent))
    ]
    outside.sort(key=lambda pair: -pair[1])
    return total, ours, outside


def instructions(tree: Path | None, args: str, work: Path) -> int:
    """Instructions executed by the command (``tree`` None: the yardstick), under callgrind."""
    program = f"{PY} -c pass" if tree is None else f"{PY} -c '{SCRIPT}' {args}"
    grind = "valgrind --tool=callgrind --callgrind-out-file=/dev/null"
    line = f"PYTHONHASHSEED=0 PYTHONPATH={tree or ''} {grind} {program}"
    _, stderr = wall(line, work)
    counted = [row for row in stderr.splitlines() if "Collected :" in row]
    return int(counted[-1].rsplit(":", 1)[1])


def _ours(name: str) -> bool:
    return name == "streamkit" or name.startswith("streamkit.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = parser.parse_args()
    trees = [ROOT] if args.before is None else [args.before.resolve(), ROOT]
    labels = ["now"] if args.before is None else ["before", "now"]
    for tree in trees:
        compileall.compile_dir(str(tree / "streamkit"), quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work)
        walls = measure_walls(trees, args.runs, work)
        bare = set(best_imports(f"{PY} -X importtime -c pass", 1, work))
        imports = [
            {
                name: best_imports(shell(tree, a, importtime=True), args.runs, work)
                for name, a in COMMANDS
            }
            for tree in trees
        ]
        counts: list[dict[str, int]] = []
        if args.instructions:
            base_count = instructions(None, "", work)
            counts = [
                {name: instructions(tree, line, work) for name, line in COMMANDS} for tree in trees
            ]
    print(f"best of {args.runs} runs, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        "\nTarget: a command on a stdio or file URI takes at most 0.1 s where `python -c pass`"
        f" takes 0.034 s: at most {TARGET_RATIO:.2f}x `{YARDSTICK}` (the yardstick, measured in"
        " the same run).\n"
    )
    print(
        f"| command | tree | wall | yardstick | over yardstick | ratio | ≤ {TARGET_RATIO:.2f}x? |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for name, _ in COMMANDS:
        for label, table in zip(labels, walls):
            base, seconds = table[YARDSTICK], table[name]
            over = (seconds - base) * 1000
            verdict = "yes" if seconds / base <= TARGET_RATIO else "**no**"
            print(
                f"| {name} | {label} | {seconds * 1000:.0f} ms | {base * 1000:.0f} ms "
                f"| {over:+.0f} ms | {seconds / base:.2f} | {verdict} |"
            )
    print("\n`python -X importtime`, best of the runs per module, imports beyond bare Python:\n")
    print("| command | tree | all imports (self) | streamkit's modules (self) | biggest outside |")
    print("|---|---|---:|---:|---|")
    for name, _ in COMMANDS:
        for label, found in zip(labels, imports):
            total, ours, outside = summarise(found[name], bare)
            top = ", ".join(f"{module} {ms:.1f}" for module, ms in outside[:5])
            print(f"| {name} | {label} | {total:.1f} ms | {ours:.1f} ms | {top} |")
    if counts:
        print(f"\nInstructions (callgrind), `{YARDSTICK}`: {base_count / 1e6:.0f} M\n")
        print("| command | tree | instructions | over yardstick | ratio |")
        print("|---|---|---:|---:|---:|")
        for name, _ in COMMANDS:
            for label, counted in zip(labels, counts):
                count = counted[name]
                over = (count - base_count) / 1e6
                print(
                    f"| {name} | {label} | {count / 1e6:.0f} M | {over:+.0f} M "
                    f"| {count / base_count:.2f} |"
                )


if __name__ == "__main__":
    main()
