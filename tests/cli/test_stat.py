"""``streamkit stat`` on .ss files, and what every backend shares: errors, JSON, --watch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.cli.processes import reaped, stopped_by

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def streamkit(
    *args: str, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", *args],
        input=stdin, capture_output=True, timeout=timeout, env=ENV,
    )  # fmt: skip


def stat_json(*args: str) -> dict[str, Any]:
    done = streamkit("stat", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def one_line_error(done: subprocess.CompletedProcess[bytes], code: int, *words: str) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    text = done.stderr.decode()
    assert text.count("\n") == 1 and "Traceback" not in text, text
    assert text.startswith("streamkit stat: error: ")
    for word in words:
        assert word in text, text
    return text


def write_file(path: Path, lines: list[str], *extra: str) -> None:
    done = streamkit(
        "relay", "--input", "stdio:///", "--output", f"file://{path}/", *extra,
        stdin="".join(line + "\n" for line in lines).encode(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def two_streams(path: Path) -> None:
    lines = [f"[2026-11-23T07:00:{i:02d}.250 | a | {10 + i} | 0] a{i}" for i in range(30)]
    lines += [f"[2026-11-23T08:00:{i:02d}.500 | b | {100 + i} | 3] b{i}" for i in range(7)]
    write_file(path, lines, "--beacon-interval", "256")


def test_file_per_key_and_shard_counts_seq_and_time_ranges(tmp_path: Path) -> None:
    path = tmp_path / "two.ss"
    two_streams(path)
    report = stat_json(str(path))
    assert report["backend"] == "file"
    streams = {s["key"]: s for s in report["streams"]}
    assert sorted(streams) == ["a", "b"]
    (a,) = streams["a"]["shards"]
    assert (a["shard"], a["messages"], a["first_seq"], a["last_seq"]) == (0, 30, 10, 39)
    assert a["first_ts"] == 1795417200250 and a["last_ts"] == 1795417229250
    (b,) = streams["b"]["shards"]
    assert (b["shard"], b["messages"], b["first_seq"], b["last_seq"]) == (3, 7, 100, 106)
    assert streams["b"]["first_ts"] == 1795420800500
    f = report["file"]
    assert f["size"] == path.stat().st_size
    assert f["beacons"] >= 1 and f["beacon_interval"] == 256
    assert f["eos_at"] is not None and f["damage"] is None
    assert f["payload_bytes"] == sum(len(f"a{i}") for i in range(30)) + 7 * 2


def test_file_keys_in_the_uri_narrow_the_report(tmp_path: Path) -> None:
    path = tmp_path / "two.ss"
    two_streams(path)
    report = stat_json(f"file://{path}/b")
    assert [s["key"] for s in report["streams"]] == ["b"]
    table = streamkit("stat", f"file://{path}/a")
    assert table.returncode == 0
    text = table.stdout.decode()
    assert "stream a: 30 messages" in text and "stream b" not in text
    assert "EOS at byte" in text and "damage: none" in text


def test_damage_and_a_missing_eos_are_reported_not_hidden(tmp_path: Path) -> None:
    path = tmp_path / "cut.ss"
    two_streams(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 70])  # EOS gone, last frame cut in half
    report = stat_json(str(path))
    f = report["file"]
    assert f["eos_at"] is None
    assert f["damage"] is not None and f["damage_offset"] is not None
    assert sum(s["messages"] for s in report["streams"]) < 37
    verify = streamkit("verify", str(path))
    assert verify.returncode == 3  # stat describes; verify judges


def test_a_missing_file_or_key_is_one_line_exit_1_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.ss"
    one_line_error(streamkit("stat", str(missing)), 1, "no such stream", str(missing))
    assert not missing.exists()
    path = tmp_path / "two.ss"
    two_streams(path)
    before = path.read_bytes()
    one_line_error(streamkit("stat", f"file://{path}/zzz"), 1, "no such stream", "'zzz'")
    assert path.read_bytes() == before


def test_memory_and_stdio_are_refused_with_a_reason(tmp_path: Path) -> None:
    one_line_error(streamkit("stat", "memory://x/orders"), 2, "inside one Python process")
    one_line_error(streamkit("stat", "stdio:///x"), 2, "no stored state")


def test_count_needs_watch() -> None:
    done = streamkit("stat", "x.ss", "--count", "2")
    assert done.returncode == 2 and b"--count needs --watch" in done.stderr


def test_watch_appends_one_json_object_per_look_when_not_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "w.ss"
    write_file(path, [f"[2026-11-23T07:00:00.{i:03d} | w] x" for i in range(5)])
    done = streamkit("stat", str(path), "--format", "json", "--watch", "50ms", "--count", "3")
    assert done.returncode == 0, done.stderr
    looks = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(looks) == 3
    assert all(look["streams"][0]["messages"] == 5 for look in looks)
    assert looks[0]["taken_at"] <= looks[1]["taken_at"] <= looks[2]["taken_at"]
    assert b"\x1b[" not in done.stdout


def test_watch_sees_growth_and_stops_on_sigterm_with_143(tmp_path: Path) -> None:
    path = tmp_path / "g.ss"
    write_file(path, ["[2026-11-23T07:00:00.000 | g] first"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "stat", str(path), "--watch", "100ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    with reaped(proc):
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"file://{path} (file) at ".encode())
        write_file(path, ["[2026-11-23T07:00:01.000 | g] second"])
        deadline = time.monotonic() + 20
        seen = b""
        while b"stream g: 2 messages" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert b"stream g: 2 messages" in seen
        _, err = stopped_by(proc)
    assert proc.returncode == 143, err
    assert err == b""


def test_watch_redraws_in_place_on_a_terminal(tmp_path: Path) -> None:
    import pty

    path = tmp_path / "t.ss"
    write_file(path, ["[2026-11-23T07:00:00.000 | t] x"])
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "stat", str(path), "--watch", "50ms",
         "--count", "2"],
        stdout=follower, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        proc.wait(30)
    assert proc.returncode == 0
    assert seen.count(b"\x1b[H\x1b[2J") == 2  # each look clears and redraws
    assert seen.count(b"stream t: 1 messages") == 2


def test_ctrl_c_stops_a_long_look_at_a_file_with_130_and_no_traceback(tmp_path: Path) -> None:
    # A file's look is one plain scan without an event loop: Ctrl-C ends it at once.
    path = tmp_path / "big.ss"
    write_file(path, [f"line {i}" for i in range(600_000)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "stat", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    with reaped(proc):
        # Signal once the scan has the file open: start-up is over, the scan has begun.
        deadline = time.monotonic() + 30
        fds = Path(f"/proc/{proc.pid}/fd")
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if any(os.path.realpath(fd) == str(path) for fd in fds.iterdir()):
                    break
            except OSError:  # a descriptor closed while being read
                pass
            time.sleep(0.005)
        out, err = stopped_by(proc, signal.SIGINT, 30)
    assert proc.returncode == 130, (proc.returncode, err)
    assert b"Traceback" not in err
    assert out == b""  # stopped before its report
