"""``streamkit verify``: summary, damage by byte offset, marker warnings, ``--repair``."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streamkit.cli.verify import verify
from streamkit.connect import connect
from streamkit.errors import FileFormatError
from streamkit.formats.ss import HEADER_SIZE, SsEncoder

SAMPLE = str(Path(__file__).resolve().parents[1] / "fixtures" / "sample-1.ss")


def run(*args: str) -> Result:
    return CliRunner().invoke(verify, list(args))


def write_file(path: Path, count: int, interval: int = 1024, eos: bool = True) -> bytes:
    encoder = SsEncoder(interval)
    data = encoder.header(path.name, 0)
    data += encoder.encode([("k", 0, i, 1000 * i, b"m-%03d" % i) for i in range(1, count + 1)])
    if eos:
        data += encoder.eos(10**6)
    path.write_bytes(data)
    return data


FRAME = 1 + 1 + 28 + 5 + 3


def test_sample_summary() -> None:
    result = run(SAMPLE)
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert "messages: 27 (2279 payload bytes)" in out  # 2282 minus the EOS payload
    assert "time range: 2023-09-15T08:39:37.912 .. 2023-09-15T08:39:38.564" in out
    assert "  event shard 0: 22 messages, seq 1..22" in out
    assert "streams: 3" in out  # file, breakpoint, event: not the EOS frame's internal stream
    assert not [line for line in out if "SEA_STREAMER_INTERNAL" in line]
    assert "beacons: 0" in out and "end: EOS at byte 3425" in out
    assert out[-1] == "ok"


def test_file_with_beacons_verifies(tmp_path: Path) -> None:
    path = tmp_path / "b.ss"
    data = write_file(path, 300, interval=128)
    result = run(str(path))
    assert result.exit_code == 0, result.output
    assert f"beacons: {(len(data) - 1) // 128}" in result.output
    assert "warning" not in result.output


def test_damage_names_the_offset_and_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "d.ss"
    data = bytearray(write_file(path, 10))
    data[HEADER_SIZE + 4 * FRAME + 31] ^= 0x10
    path.write_bytes(bytes(data))
    result = run(str(path))
    error = result.exception
    assert isinstance(error, FileFormatError) and error.exit_code == 3
    assert error.offset == HEADER_SIZE + 4 * FRAME
    assert "messages: 4 " in result.output and "damaged" in result.output


def test_a_wrong_marker_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "w.ss"
    data = bytearray(write_file(path, 60, interval=1024))
    # The beacon at 1024 holds one marker for "k"; its running checksum is the last 2 bytes
    # before the closing 0x0D.
    end = 1024 + 7 + 1 + 1 + 24 + 2
    data[end - 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run(str(path))
    assert result.exit_code == 0, result.output
    # Diagnostics go to stderr (issue 15.7); the summary on stdout counts them.
    assert "warning: beacon 1 at byte 1024: marker for k:0" in result.stderr
    assert "beacon 1 at byte 1024" not in result.stdout
    assert "warnings: 1 (on stderr)" in result.stdout


def test_repair_cuts_a_half_written_tail_and_the_file_appends_again(tmp_path: Path) -> None:
    path = tmp_path / "r.ss"
    data = write_file(path, 10, eos=False)
    path.write_bytes(data + b"\x01k\x00\x00")  # a crashed writer's few bytes
    result = run(str(path))
    assert isinstance(result.exception, FileFormatError)
    assert "middle of a message" in str(result.exception)
    result = run(str(path), "--repair")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.ss.bak").read_bytes() == data + b"\x01k\x00\x00"
    assert path.read_bytes() == data
    assert run(str(path)).exit_code == 0

    async def append_and_read() -> list[int]:
        async with connect(f"file://{path}") as streamer:
            producer = await streamer.producer("k")
            await producer.send(b"new")
            await producer.close()
            consumer = await streamer.consumer(("k",))
            return [m.seq async for m in consumer]

    assert asyncio.run(append_and_read()) == list(range(1, 12))


def test_repair_of_a_damaged_middle_keeps_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "m.ss"
    data = bytearray(write_file(path, 10))
    data[HEADER_SIZE + 6 * FRAME + 31] ^= 1
    path.write_bytes(bytes(data))
    result = run(str(path), "--repair")
    assert result.exit_code == 0, result.output
    assert path.stat().st_size == HEADER_SIZE + 6 * FRAME
    assert "messages: 6 " in run(str(path)).output
    # A second repair backs up to a fresh name instead of overwriting the first backup.
    path.write_bytes(bytes(data))
    run(str(path), "--repair")
    assert (tmp_path / "m.ss.bak.1").read_bytes() == bytes(data)


def test_bytes_after_eos_are_damage(tmp_path: Path) -> None:
    path = tmp_path / "e.ss"
    data = write_file(path, 3)
    path.write_bytes(data + b"stale")
    result = run(str(path))
    assert isinstance(result.exception, FileFormatError)
    assert "follow the end-of-stream" in str(result.exception)
    assert run(str(path), "--repair").exit_code == 0
    assert path.read_bytes() == data


def test_garbage_header_cannot_be_repaired(tmp_path: Path) -> None:
    path = tmp_path / "g.ss"
    path.write_bytes(b"GIF89a" + bytes(300))
    result = run(str(path), "--repair")
    assert isinstance(result.exception, FileFormatError)
    assert "header" in str(result.exception)
    assert not (tmp_path / "g.ss.bak").exists()


@pytest.mark.parametrize("wrong", [2048, 512, 1000])
def test_a_damaged_header_interval_is_refused_by_repair(tmp_path: Path, wrong: int) -> None:
    """Issue 15.5: a header interval changed from 1024 was "repaired" down to 9 messages."""
    path = tmp_path / "h.ss"
    data = bytearray(write_file(path, 2000, interval=1024))
    at = 12 + len(b"h.ss")
    data[at : at + 4] = wrong.to_bytes(4, "big")
    path.write_bytes(bytes(data))
    checked = run(str(path))
    assert isinstance(checked.exception, FileFormatError) and checked.exception.exit_code == 3
    assert checked.exception.offset == at
    assert f"header says beacon interval {wrong}" in str(checked.exception)
    assert "the beacons in the file are at 1024" in str(checked.exception)
    repaired = run(str(path), "--repair")
    assert isinstance(repaired.exception, FileFormatError)
    assert repaired.exception.exit_code == 3
    assert "not repaired" in str(repaired.exception)
    assert path.read_bytes() == bytes(data)  # unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.ss"]  # no backup either


def test_real_damage_in_a_file_with_beacons_is_still_repaired(tmp_path: Path) -> None:
    path = tmp_path / "m.ss"
    data = bytearray(write_file(path, 2000, interval=1024))
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run(str(path), "--repair")
    assert result.exit_code == 0, result.output
    assert "header" not in str(result.output).split("\n", 2)[2]
    assert 0 < path.stat().st_size <= 5000


def test_bin_verify_runs_from_the_checkout() -> None:
    """Issue 11.11: bin/ had clock, relay, processor and decode but no verify."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(root / "bin" / "verify"), SAMPLE],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == b"ok"


@pytest.mark.parametrize("command", ["decode", "verify"])
@pytest.mark.parametrize("scheme", ["redis", "rediss", "kafka"])
def test_a_stream_uri_with_a_password_is_refused_without_echoing_it(
    command: str, scheme: str
) -> None:
    """Issue 15.7: decode/verify given redis://user:secretpw@... printed the password."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", command,
         f"{scheme}://user:secretpw@127.0.0.1:1/x"],
        capture_output=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert b"secretpw" not in done.stdout + done.stderr
    assert f"{scheme}://user:***@127.0.0.1:1/x".encode() in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_a_file_uri_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "u.ss"
    write_file(path, 3)
    result = run(f"file://{path}/")
    assert result.exit_code == 0, result.output
    assert f"file: {path} (" in result.stdout


def repair_in_subprocess(
    path: Path, limit: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    root = Path(__file__).resolve().parents[2]

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "verify", str(path), "--repair"],
        capture_output=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60,
        check=False, preexec_fn=cap,
    )  # fmt: skip


def damaged_copy(path: Path, count: int = 3000) -> bytes:
    data = write_file(path, count, eos=False)[:-10]  # a crashed writer's torn last frame
    path.write_bytes(data)
    return data


def test_a_backup_that_cannot_be_written_leaves_nothing_behind(tmp_path: Path) -> None:
    """Issue 15.6: a full disk gave a traceback and a 0-byte .bak. Here the copy fails with EFBIG
    (a file-size limit below the file's size); ENOSPC takes the same path."""
    path = tmp_path / "f.ss"
    data = damaged_copy(path)
    done = repair_in_subprocess(path, limit=len(data) // 3)
    assert done.returncode == 1, done.stderr
    error = done.stderr.decode()
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "not repaired: writing the backup" in error and "File too large" in error
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.ss"]  # no partial .bak


def test_repair_checks_the_free_space_first(tmp_path: Path) -> None:
    """On a small tmpfs (needs root to mount; otherwise the same refusal is reached through a
    file-size limit) the repair refuses before writing anything."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = os.geteuid() == 0 and (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                       capture_output=True, check=False).returncode == 0
    )  # fmt: skip
    try:
        path = small / "f.ss"
        data = damaged_copy(path, 1200)  # ~46 KB: fits once, not twice
        done = repair_in_subprocess(path, limit=None if mounted else 4096)
        assert done.returncode == 1, done.stderr
        assert done.stderr.count(b"\n") == 1
        if mounted:
            assert b"not repaired: the backup copy needs" in done.stderr
            assert b"free (nothing was changed" in done.stderr
        assert path.read_bytes() == data
        assert sorted(p.name for p in small.iterdir()) == ["f.ss"]
    finally:
        if mounted:
            subprocess.run(["umount", str(small)], check=True)


def test_damage_the_crc_does_not_cover_is_warned_about_with_its_offset(tmp_path: Path) -> None:
    """Issue 15.8: flips in seq/timestamp/shard fields passed verify silently."""
    path = tmp_path / "s.ss"
    data = bytearray(write_file(path, 50))
    start = HEADER_SIZE + 20 * FRAME
    data[start + 2 + 7] ^= 1  # the shard of message 21: 0 -> 1
    data[start + FRAME + 10 + 7] ^= 4  # the seq of message 22: 22 -> 18
    path.write_bytes(bytes(data))
    result = run(str(path))
    assert result.exit_code == 0, result.output  # SeaStreamer reads this file: not damage
    assert f"message k:0:18 at byte {start + FRAME}: seq does not grow" in result.stderr
    # The shard flip took message 21 out of k:0, so k:0 jumps from 20 to 23:
    assert f"message k:0:23 at byte {start + 2 * FRAME}: seq jumps from 20" in result.stderr
    assert "warnings: " in result.stdout and "seq does not grow" not in result.stdout
    assert run(SAMPLE).stderr == ""  # SeaStreamer's own file: nothing to say
