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


def test_appends_from_the_cli_continue_the_stream_seq(tmp_path: Path) -> None:
    """Issue 11.5: 5 ticks, then two appends from stdin gave seq 0,1,2,3,4,0,0."""
    made = cli(
        "clock",
        "--count",
        "5",
        "--interval",
        "0",
        "--stream",
        "tick",
        "--output",
        "file://./t.ss/tick",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    for stdin in (b"x\n", b"y\nz\n"):
        done = cli("relay", "--output", "file://./t.ss/tick", stdin=stdin, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    decoded = cli("decode", "t.ss", "--stream", "tick", "--header-only", cwd=tmp_path)
    seqs = [int(line.split(b" | ")[2]) for line in decoded.stdout.splitlines()[1:]]
    assert seqs == [1, 2, 3, 4, 5, 6, 7, 8]
    verified = cli("verify", "t.ss", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert b"  tick shard 0: 8 messages, seq 1..8\n" in verified.stdout
    found = cli("relay", "--input", "file://./t.ss/tick", "--offset", "6", cwd=tmp_path)
    assert [line.rsplit(b" ", 1)[1] for line in found.stdout.splitlines()] == [b"x", b"y", b"z"]


def test_a_source_that_keeps_growing_seqs_keeps_them(tmp_path: Path) -> None:
    lines = b"".join(b"[2026-11-23T07:00:00.000 | k | %d | 3] p%d\n" % (s, s) for s in (10, 20, 30))
    for _ in range(2):  # the second relay repeats 10, 20, 30: those continue at 31
        done = cli("relay", "--output", "file://./r.ss/", stdin=lines, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    decoded = cli("decode", "r.ss", "--stream", "k", cwd=tmp_path)
    got = [line.split(b" | ")[2:] for line in decoded.stdout.splitlines()[1:]]
    assert [(int(seq), rest) for seq, rest in got] == [
        (10, b"3] p10"),
        (20, b"3] p20"),
        (30, b"3] p30"),
        (31, b"3] p10"),
        (32, b"3] p20"),
        (33, b"3] p30"),
    ]


def test_no_eos_leaves_the_file_without_an_end_of_stream_frame(tmp_path: Path) -> None:
    """Issue 11.7: docs/file-format.md documents --eos/--no-eos; relay refused --no-eos."""
    eos = b"\x15SEA_STREAMER_INTERNAL"
    done = cli("relay", "--output", "file://./n.ss/t", "--no-eos", stdin=b"a\nb\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert eos not in (tmp_path / "n.ss").read_bytes()
    assert b"end: no EOS" in cli("verify", "n.ss", cwd=tmp_path).stdout
    done = cli("relay", "--output", "file://./n.ss/t", "--eos", stdin=b"c\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "n.ss").read_bytes().count(eos) == 1
    done = cli("clock", "--count", "2", "--output", "file://./n.ss/t", "--no-eos", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert eos not in (tmp_path / "n.ss").read_bytes()  # the EOS was overwritten, none added
    decoded = cli("decode", "n.ss", "--stream", "t", "--format", "ndjson", cwd=tmp_path)
    assert [line.count(b'"sequence"') for line in decoded.stdout.splitlines()] == [1] * 5
    assert b"--no-eos" in cli("relay", "-h").stdout
