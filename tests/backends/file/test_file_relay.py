"""The file backend through the CLI: ``relay`` into and out of files, ``--follow``, exit codes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamkit.backends.base import ProducerOptions
from streamkit.connect import connect
from streamkit.formats.ss import encode_header

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str, stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def lines(n: int, key: str = "tick") -> bytes:
    return b"".join(
        b'[2026-11-23T07:00:%02d.%03d | %s | %d | 0] {"n":%d}\n'
        % (i // 1000 % 60, i % 1000, key.encode(), i + 1, i)
        for i in range(n)
    )


def test_relay_stdio_to_file_and_back(tmp_path: Path) -> None:
    path = tmp_path / "r.ss"
    done = cli(
        "relay", "--input", "stdio:///tick", "--output", f"file://{path}/tick", stdin=lines(500)
    )
    assert done.returncode == 0, done.stderr
    back = cli("relay", "--input", f"file://{path}/tick", "--output", "stdio:///tick")
    assert back.returncode == 0, back.stderr
    assert back.stdout == lines(500)  # timestamps, keys and seqs survive the round trip
    since = cli(
        "relay",
        "--input",
        f"file://{path}/tick",
        "--output",
        "stdio:///tick",
        "--since",
        "2026-11-23T07:00:00.250",
    )
    assert since.stdout == lines(500).split(b"\n", 250)[250]
    decoded = cli("decode", str(path), "--stream", "tick")
    assert decoded.returncode == 0 and len(decoded.stdout.splitlines()) == 501


def test_relay_follow_sees_every_appended_message_once(tmp_path: Path) -> None:
    path = tmp_path / "follow.ss"
    total = 600

    async def writer() -> None:
        async with connect(f"file://{path}") as streamer:
            producer = await streamer.producer("n", ProducerOptions(beacon_interval=1024))
            for i in range(0, total, 20):
                await producer.send_many([b"m%d" % j for j in range(i, i + 20)])
                await asyncio.sleep(0.01)
            await producer.close()  # an EOS only pauses a follower; --count ends it

    asyncio.run(_first_message(path))
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamkit.cli.main",
            "relay",
            "--input",
            f"file://{path}/n",
            "--output",
            "stdio:///n",
            "--follow",
            "--count",
            str(total + 1),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    try:
        time.sleep(0.5)
        asyncio.run(writer())
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    payloads = [line.split(b"] ", 1)[1] for line in out.splitlines()]
    assert payloads == [b"first"] + [b"m%d" % i for i in range(total)]


async def _first_message(path: Path) -> None:
    async with connect(f"file://{path}") as streamer:
        producer = await streamer.producer("n", ProducerOptions(beacon_interval=1024))
        await producer.send(b"first")
        await producer.close()


def test_damage_exits_3_after_printing_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "d.ss"
    cli("relay", "--input", "stdio:///tick", "--output", f"file://{path}/tick", stdin=lines(50))
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    for args in (
        ("relay", "--input", f"file://{path}/tick", "--output", "stdio:///tick"),
        ("decode", str(path)),
        ("verify", str(path)),
    ):
        done = cli(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert b"at byte" in done.stderr and b"Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert cli("verify", str(path), "--repair").returncode == 0
    assert cli("verify", str(path)).returncode == 0


def test_decode_into_a_closed_pipe_exits_0_quietly(tmp_path: Path) -> None:
    path = tmp_path / "big.ss"
    done = cli(
        "relay", "--input", "stdio:///tick", "--output", f"file://{path}/tick", stdin=lines(60_000)
    )
    assert done.returncode == 0, done.stderr
    reader = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "decode", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline().startswith(b"# {")
    reader.stdout.close()  # like `| head -1`
    assert reader.wait(timeout=30) == 0
    assert reader.stderr.read() == b""


def test_a_file_uri_missing_its_key_slash_names_the_fix(tmp_path: Path) -> None:
    # file://DIR/x.ss means path DIR, key x.ss (the URI grammar): the error says how to write it.
    done = cli("relay", "--input", "stdio:///", "--output", f"file://{tmp_path}/x.ss", stdin=b"a\n")
    assert done.returncode == 2
    message = done.stderr.decode()
    assert f"{tmp_path}: is a directory" in message
    assert "file:///dir/name.ss/" in message
    assert "Traceback" not in message
    assert not (tmp_path / "x.ss").exists()


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"", 0), (b"Ss\x01\x04t.ss", 3), (None, 0)],  # empty, a torn header, a header alone
)
def test_relay_decode_and_verify_agree_on_empty_and_short_files(
    tmp_path: Path, content: bytes | None, code: int
) -> None:
    """Issue 11.9: relay exited 0 where decode and verify called the same file damaged."""
    path = tmp_path / "e.ss"
    path.write_bytes(content if content is not None else encode_header("e.ss", 0, 1 << 20))
    for args in (
        ("relay", "--input", f"file://{path}/tick"),
        ("decode", str(path)),
        ("decode", str(path), "--format", "ndjson"),
        ("verify", str(path)),
    ):
        done = cli(*args)
        assert done.returncode == code, (args, done.stderr)
        if code:
            assert b"at byte 0: file is 8 bytes long, too short" in done.stderr
    if content == b"":
        assert b"empty file" in cli("verify", str(path)).stdout
