"""Appending to a ``.ss`` file from the CLI: where it resumes, what it refuses, seq numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(
    *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_append_after_a_damaged_size_field_refuses_and_keeps_the_file(tmp_path: Path) -> None:
    """Issue 15.2, as reported: one flipped bit in the first frame's size field."""
    made = cli(
        "clock", "--interval", "0", "--count", "20000", "--output", "file://./t.ss/t", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    path = tmp_path / "t.ss"
    data = bytearray(path.read_bytes())
    data[155] ^= 1 << 4
    path.write_bytes(bytes(data))
    appended = cli("relay", "--output", "file://./t.ss/t", stdin=b"x\n", cwd=tmp_path)
    assert appended.returncode == 3, appended.stderr
    error = appended.stderr.decode()
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "at byte 128" in error and "size field is damaged" in error
    assert "half-written" not in error.replace("not a half-written", "")
    assert path.read_bytes() == bytes(data)  # byte for byte as it was
    assert sorted(tmp_path.iterdir()) == [path]  # nothing else written either
    # decode and verify name the same damage at the same place.
    for command in ("decode", "verify"):
        done = cli(command, "t.ss", cwd=tmp_path)
        assert done.returncode == 3
        assert "at byte 128" in done.stderr.decode()
        assert "size field is damaged" in done.stderr.decode()


def test_append_over_a_really_torn_tail_still_resumes(tmp_path: Path) -> None:
    made = cli(
        "clock", "--interval", "0", "--count", "50", "--output", "file://./t.ss/t", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    path = tmp_path / "t.ss"
    data = path.read_bytes()
    eos = 1 + 21 + 28 + 3 + 3
    torn = data[: -eos - 10]  # the last message cut 10 bytes short, no EOS: a crash
    path.write_bytes(torn)
    appended = cli("relay", "--output", "file://./t.ss/t", stdin=b"x\n", cwd=tmp_path)
    assert appended.returncode == 0, appended.stderr
    assert "dropping a half-written tail" in appended.stderr.decode()
    decoded = cli("decode", "t.ss", "--format", "ndjson", cwd=tmp_path)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.count(b'"stream_key":"t"') == 50  # 49 kept + the new one
