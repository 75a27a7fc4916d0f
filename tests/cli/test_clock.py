"""``streamkit clock``, end to end in real subprocesses and pipes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streamkit.formats.line import LineDecoder
from streamkit.message import Message

ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-m", "streamkit.cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TIMEOUT = 30


def clock(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*STREAMKIT, "clock", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=ENV,
        timeout=TIMEOUT,
        check=False,
    )


def messages(out: bytes) -> list[Message]:
    decoder = LineDecoder("<clock output>")
    got = decoder.feed(out) + decoder.finish()
    assert decoder.error is None, decoder.error
    return got


def ticks(out: bytes) -> list[int]:
    return [json.loads(m.payload)["tick"] for m in messages(out)]


def test_default_stream_is_clock_with_ticks_from_zero() -> None:
    done = clock("--count", "3", "--interval", "0")
    assert done.returncode == 0 and done.stderr == b""
    got = messages(done.stdout)
    assert [(m.stream_key, m.seq, m.shard_id, m.payload) for m in got] == [
        ("clock", n, 0, b'{"tick": %d}' % n) for n in range(3)
    ]


def test_interval_zero_emits_many_batches_in_order() -> None:
    done = clock("--stream", "tick", "--count", "2500", "--interval", "0")
    assert done.returncode == 0
    got = messages(done.stdout)
    assert [m.seq for m in got] == list(range(2500))
    assert ticks(done.stdout) == list(range(2500))
    assert {m.stream_key for m in got} == {"tick"}


def test_an_interval_paces_ticks_with_rising_timestamps() -> None:
    done = clock("--count", "3", "--interval", "20ms")
    assert done.returncode == 0
    stamps = [m.timestamp for m in messages(done.stdout)]
    assert len(stamps) == 3 and stamps == sorted(stamps)


def test_count_zero_emits_nothing() -> None:
    done = clock("--count", "0", "--interval", "0")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_output_uri_key_and_stream_option() -> None:
    assert {
        m.stream_key
        for m in messages(clock("--output", "stdio:///x", "--count", "2", "--interval", "0").stdout)
    } == {"x"}
    keyless = clock("--output", "stdio:///", "--stream", "s", "--count", "2", "--interval", "0")
    assert {m.stream_key for m in messages(keyless.stdout)} == {"s"}
    both = clock("--output", "stdio:///x", "--stream", "s", "--count", "1", "--interval", "0")
    assert both.returncode == 0
    assert {m.stream_key for m in messages(both.stdout)} == {"x"}
    assert b"--stream s differs from the --output key x" in both.stderr


def test_json_output() -> None:
    done = clock("--count", "2", "--interval", "0", "--output-format", "json")
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(o["topic"], o["offset"], o["partition"], o["payload"]) for o in objects] == [
        ("clock", 0, 0, {"tick": 0}),
        ("clock", 1, 0, {"tick": 1}),
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--interval", "fast"], "500ms"),
        (["--interval", "-1s"], "500ms"),
        (["--stream", "a b"], "invalid character ' '"),
        (["--count", "-1"], "--count"),
        (["--output", "stdio://"], "stdio:///STREAM"),
        (["--output", "stdio:///a,b"], "names 2 streams"),
        (["--output-format", "xml"], "--output-format"),
    ],
)
def test_bad_options_exit_2(args: list[str], expected: str) -> None:
    done = clock(*args)
    assert done.returncode == 2
    assert expected in done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert done.stdout == b""


@pytest.mark.parametrize(("number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_an_endless_clock_after_whole_lines(number: int, code: int) -> None:
    process = subprocess.Popen(
        [*STREAMKIT, "clock", "--interval", "5ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert process.stdout is not None
    first = [process.stdout.readline() for _ in range(3)]
    process.send_signal(number)
    rest, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == code
    assert b"Traceback" not in err
    out = b"".join(first) + rest
    assert out.endswith(b"\n")
    assert ticks(out) == list(range(len(out.splitlines())))


def test_clock_into_a_closed_pipe_exits_0_quietly() -> None:
    process = subprocess.Popen(
        [*STREAMKIT, "clock", "--interval", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert process.stdout is not None and process.stderr is not None
    assert b'{"tick": 0}' in process.stdout.readline()
    process.stdout.close()
    assert process.wait(TIMEOUT) == 0
    assert process.stderr.read() == b""


def test_help_shows_examples() -> None:
    done = clock("-h")
    assert done.returncode == 0
    assert b"Examples:" in done.stdout and b"streamkit clock --stream tick" in done.stdout
    assert b"--interval" in done.stdout and b"--count" in done.stdout
