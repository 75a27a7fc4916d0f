"""``streamkit relay --pace`` end to end. Wall time is only bounded from below (a paced replay
cannot finish before its scaled span) or loosely from above, so these cannot flake; the exact
timing is tested on a fake clock in tests/replay/test_pace.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-m", "streamkit.cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str, stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*STREAMKIT, *args], input=stdin, capture_output=True, env=ENV, timeout=timeout, check=False
    )


def record(path: Path, count: int, gap_ms: int, key: str = "rec") -> list[bytes]:
    """Write ``count`` messages ``gap_ms`` apart to ``path`` through the CLI; their lines."""
    lines = [
        b'[2026-11-23T07:%02d:%02d.%03d | %s | %d | 0] {"n":%d}'
        % (t // 60_000, t // 1000 % 60, t % 1000, key.encode(), i + 1, i)
        for i, t in enumerate(range(0, count * gap_ms, gap_ms))
    ]
    done = run(
        "relay", "--input", f"stdio:///{key}", "--output", f"file://{path}/{key}",
        stdin=b"\n".join(lines) + b"\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return lines


def test_pace_100x_over_a_2s_recording_is_complete_and_ordered(tmp_path: Path) -> None:
    lines = record(tmp_path / "r.ss", 21, 100)  # 0.0 .. 2.0 s
    done = run("relay", "--input", f"file://{tmp_path}/r.ss/rec", "--pace", "100x")
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout.splitlines() == lines


def test_pace_4x_takes_at_least_a_quarter_of_the_span(tmp_path: Path) -> None:
    lines = record(tmp_path / "r.ss", 21, 100)
    start = time.monotonic()
    done = run("relay", "--input", f"file://{tmp_path}/r.ss/rec", "--pace", "4x")
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == lines
    assert elapsed >= 0.5  # 2 s at 4x; a timer never fires early


def test_pace_combines_with_since_and_until(tmp_path: Path) -> None:
    lines = record(tmp_path / "r.ss", 21, 100)
    start = time.monotonic()
    done = run(
        "relay", "--input", f"file://{tmp_path}/r.ss/rec", "--pace", "2x",
        "--since", "2026-11-23T07:00:01", "--until", "2026-11-23T07:00:01.800",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == lines[10:19]  # 1.0 .. 1.8 s
    assert elapsed >= 0.4  # the pace counts from the first message delivered, 0.8 s at 2x


def test_sigterm_ends_a_paced_replay_at_once_and_delivers_what_was_read(tmp_path: Path) -> None:
    lines = record(tmp_path / "r.ss", 5, 60_000)  # four minutes at 1x
    relay = subprocess.Popen(
        [*STREAMKIT, "relay", "--input", f"file://{tmp_path}/r.ss/rec", "--pace", "1x"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    assert relay.stdout is not None
    first = relay.stdout.readline()
    assert first.rstrip(b"\n") == lines[0]
    relay.send_signal(signal.SIGTERM)
    rest, err = relay.communicate(timeout=20)
    assert relay.returncode == 143, err
    assert b"Traceback" not in err
    # The file reader had read the whole (small) file: the drain writes it without waiting.
    assert [first.rstrip(b"\n"), *rest.splitlines()] == lines


def test_an_invalid_pace_is_a_usage_error() -> None:
    done = run("relay", "--pace", "fast")
    assert done.returncode == 2
    assert b"--pace" in done.stderr and b"fast" in done.stderr
    assert b"Traceback" not in done.stderr
