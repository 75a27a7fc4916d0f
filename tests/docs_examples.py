"""Extract the examples of README.md and docs/*.md and run them as a user would.

Why: documentation that is only read rots; these examples are executed by the suite
(tests/test_docs_examples.py), so a doc that promises output the code no longer gives fails a test
that names the file and line. The conventions a doc writer needs are few, and all are visible in
the rendered page except the optional ``<!-- example: ... -->`` line:

- Every fenced block labelled ``sh``, ``bash``, ``console`` or ``python`` is an example. Unlabelled
  and ``text`` blocks (formats, diagrams, sample output) are not run.
- The blocks of one file run in order in one fresh directory, against private servers started for
  that file: ``127.0.0.1:6379`` (and ``localhost:6379``) is rewritten to a private redis-server,
  ``127.0.0.1:9092`` to a private Kafka-protocol broker. So a later block may use what an earlier
  one wrote (README records ``ticks.ss``, then decodes it).
- Shell blocks run command by command (a command ends at a line not ending in ``\\``; ``#`` lines
  are comments) with ``bash -o pipefail``, ``streamkit`` on PATH from this checkout. Each command
  must exit 0, unless its trailing comment says ``until Ctrl-C``: such a command follows forever,
  so the test presses Ctrl-C (SIGINT to its process group) after ``interrupt`` seconds (3 unless
  the block's marker says) and expects exit 130, the documented exit after SIGINT and a drain.
- ``python`` on PATH is the interpreter running the suite (Debian has only ``python3``).
- A leading ``pip install -e . &&`` is dropped: the suite runs against this checkout already and
  must not reinstall it.
- ``console`` blocks: lines starting with ``$ `` are commands, the other lines are output that
  must appear in what the commands print.
- ``python`` blocks are complete programs run with this checkout's Python, unless the marker says
  ``file=PATH``: then the block is written to PATH in the directory before the file's first block
  runs (a ``--func`` module that a command above it names, say).
- A block that cannot run here says so right under it, visibly, in a line of its own:
  ``*(not run by the docs test: REASON)*``.
- The optional marker line right before a block: ``<!-- example: KEY=VALUE ... -->`` (shell
  quoting), keys ``output-contains=TEXT`` (repeatable; stdout of the block must contain it),
  ``output-matches=REGEX`` (repeatable; re.MULTILINE search of stdout), ``output-lines=N`` (stdout
  has exactly N lines), ``interrupt=SECONDS``, ``timeout=SECONDS`` (per command, default 20)
  and ``file=PATH`` (python blocks).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"sh", "bash", "console", "python"}
SKIP_NOTE = re.compile(r"^\*\(not run by the docs test: (?P<reason>.+?)\)\*$")
MARKER = re.compile(r"^<!--\s*example:(?P<body>.*?)-->\s*$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
KNOWN_KEYS = {"output-contains", "output-matches", "output-lines", "interrupt", "timeout", "file"}
PIP_PREFIX = re.compile(r"^\s*pip install -e \.\s*&&\s*")
UNTIL_CTRL_C = re.compile(r"#.*\buntil Ctrl-C\b")
EXIT_SIGINT = 130


@dataclass
class Block:
    """One fenced example: where it is, what it says, and what its marker and note ask."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    options: list[tuple[str, str]] = field(default_factory=list)
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{shown(self.path)}:{self.line}"

    def values(self, key: str) -> list[str]:
        return [value for k, value in self.options if k == key]

    def value(self, key: str, default: str | None = None) -> str | None:
        found = self.values(key)
        return found[-1] if found else default


def shown(path: Path) -> str:
    """A doc's name in test ids and messages: relative to the checkout when it is in it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_marker(body: str, where: str) -> list[tuple[str, str]]:
    options = []
    for word in shlex.split(body):
        key, eq, value = word.partition("=")
        if not eq or key not in KNOWN_KEYS:
            raise ValueError(f"{where}: unknown example marker {word!r} (known: {KNOWN_KEYS})")
        options.append((key, value))
    return options


def extract(path: Path) -> list[Block]:
    """The runnable-language blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start = i
        end = start + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        lang = fence.group("lang")
        if lang in RUN_LANGUAGES:
            where = f"{shown(path)}:{start + 1}"
            before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.match(before.strip())
            note = SKIP_NOTE.match(paragraph_after(lines, end))
            blocks.append(
                Block(
                    path=path,
                    line=start + 1,
                    lang=lang,
                    text="\n".join(lines[start + 1 : end]) + "\n",
                    options=parse_marker(marker.group("body"), where) if marker else [],
                    skip=note.group("reason") if note else None,
                )
            )
        i = end + 1
    return blocks


def paragraph_after(lines: list[str], end: int) -> str:
    """The paragraph following line ``end``, joined into one line (a note may wrap)."""
    start = next((i for i in range(end + 1, len(lines)) if lines[i].strip()), len(lines))
    stop = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return " ".join(line.strip() for line in lines[start:stop])


def all_blocks() -> list[Block]:
    return [block for path in DOC_FILES for block in extract(path)]


@dataclass
class Command:
    line: int  # line in the doc
    text: str
    follows: bool  # "until Ctrl-C": interrupted by the test


def shell_commands(block: Block) -> list[Command]:
    """Split a sh/bash block into commands (backslash continuations joined, comments dropped)."""
    commands: list[Command] = []
    pending: list[str] = []
    first = 0
    for offset, raw in enumerate(block.text.splitlines()):
        line_no = block.line + 1 + offset
        if not pending:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            first = line_no
        pending.append(raw)
        if raw.rstrip().endswith("\\"):
            continue
        text = "\n".join(pending)
        pending = []
        commands.append(Command(first, PIP_PREFIX.sub("", text), bool(UNTIL_CTRL_C.search(text))))
    if pending:
        raise ValueError(f"{block.where}: the block ends inside a continued command")
    return commands


def console_commands(block: Block) -> tuple[list[Command], list[str]]:
    """``$ cmd`` lines are commands; the other non-blank lines are expected output."""
    commands, expected = [], []
    for offset, raw in enumerate(block.text.splitlines()):
        if raw.startswith("$ "):
            text = PIP_PREFIX.sub("", raw[2:])
            commands.append(Command(block.line + 1 + offset, text, bool(UNTIL_CTRL_C.search(raw))))
        elif raw.strip():
            expected.append(raw.rstrip())
    return commands, expected


@dataclass
class Outcome:
    """What one command did."""

    code: int | None  # None: killed after the hard timeout
    stdout: str
    stderr: str
    seconds: float


def run_command(
    argv: list[str], cwd: Path, env: dict[str, str], *, interrupt: float | None, timeout: float
) -> Outcome:
    """Run in a new process group: SIGINT the group after ``interrupt`` s, SIGKILL at ``timeout``.

    ``code`` is None when the command had to be killed.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    killed = False
    try:
        out, err = proc.communicate(timeout=interrupt if interrupt is not None else timeout)
    except subprocess.TimeoutExpired:
        if interrupt is not None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=timeout if interrupt is not None else 0.01)
        except subprocess.TimeoutExpired:
            killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
    return Outcome(
        None if killed else proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        time.monotonic() - started,
    )


def shim_dir(folder: Path) -> Path:
    """A bin folder whose ``streamkit`` runs this checkout, and ``python`` is this interpreter.

    (Examples say ``python``, as a user in a virtualenv types it; Debian has only ``python3``.)
    """
    folder.mkdir(parents=True, exist_ok=True)
    shims = {
        "streamkit": f'exec "{sys.executable}" -m streamkit.cli.main "$@"',
        "python": f'exec "{sys.executable}" "$@"',
    }
    for name, body in shims.items():
        shim = folder / name
        shim.write_text(f"#!/bin/sh\n{body}\n")
        shim.chmod(0o755)
    return folder


def substitute(text: str, redis: str | None, kafka: str | None) -> str:
    """Point the documented default addresses at the private servers."""
    if redis:
        text = re.sub(r"\b(?:127\.0\.0\.1|localhost):6379\b", redis, text)
    if kafka:
        text = re.sub(r"\b(?:127\.0\.0\.1|localhost):9092\b", kafka, text)
    return text
