"""Progress bars of verify, stat, decode and file relays: on a terminal stderr only (issue 11)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}


@pytest.fixture(scope="module")
def ticks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "ticks.ss"
    made = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "clock", "--interval", "0", "--count",
         "30000", "--output", f"file://{path}/tick"],
        env=ENV, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return path


def commands(path: Path) -> dict[str, list[str]]:
    return {
        "verify": ["verify", str(path)],
        "stat": ["stat", str(path)],
        "decode": ["decode", str(path), "--format", "ndjson"],
        "relay": ["relay", "--input", f"file://{path}/tick", "--output", f"file://{path}.out/t"],
    }


def run_on_pty(args: list[str], *, stdout_too: bool = False) -> tuple[int, bytes]:
    """Run with stderr (and, if asked, stdout) on a pseudo-terminal; returns what it showed."""
    master, slave = pty.openpty()
    with open(os.devnull, "wb") as devnull:
        child = subprocess.Popen(
            [sys.executable, "-m", "streamkit.cli.main", *args],
            stdout=slave if stdout_too else devnull,
            stderr=slave,
            env=ENV,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        os.close(master)
        return child.wait(timeout=120), shown


@pytest.mark.parametrize("name", ["verify", "stat", "decode", "relay"])
def test_no_bar_when_stderr_is_not_a_terminal(ticks: Path, name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", *commands(ticks)[name]],
        env=ENV, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""


@pytest.mark.parametrize("name", ["verify", "stat", "decode", "relay"])
def test_a_bar_on_a_terminal_stderr(ticks: Path, name: str) -> None:
    code, shown = run_on_pty(commands(ticks)[name])
    assert code == 0, shown
    assert f"{name}  [".encode() in shown  # click's bar: label, then [###---]
    assert b"100%" in shown and b"#" in shown
    if name == "relay":
        Path(f"{ticks}.out").unlink()


def test_no_bar_when_decode_prints_to_the_same_terminal(ticks: Path) -> None:
    code, shown = run_on_pty(["decode", str(ticks), "--stream", "tick"], stdout_too=True)
    assert code == 0
    assert b"decode  [" not in shown and b'{"tick": 29999}' in shown
