"""``relay`` stdio → stdio on the compiled codec's transcoding path against the pure batch loop.

The same input through ``streamkit relay`` with the C codec and with ``STREAMKIT_PURE_PYTHON=1``
must give the same stdout, stderr and exit code: default and keyed URIs, several keys and
shards, SeaStreamer's three-field lines, plain lines, and invalid lines under each policy.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamkit.backends.base import ConsumerOptions, ProducerOptions
from streamkit.backends.stdio import (
    StdioConsumer,
    StdioProducer,
    _StdinHub,
    _StdoutWriter,
    relay_lines,
)
from streamkit.formats import line as pure_line
from streamkit.formats import line_compiled

ROOT = Path(__file__).resolve().parents[3]
STREAMKIT = [sys.executable, "-m", "streamkit.cli.main", "relay"]
TIMEOUT = 60


def relay(args: list[str], data: bytes, pure: bool) -> tuple[bytes, bytes, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMKIT_PURE_PYTHON": "1" if pure else "0"}
    done = subprocess.run(
        [*STREAMKIT, *args], input=data, capture_output=True, env=env, timeout=TIMEOUT, check=False
    )
    return done.stdout, done.stderr, done.returncode


def untimed(result: tuple[bytes, bytes, int]) -> tuple[list[bytes], bytes, int]:
    """Plain and raw lines are stamped with the clock: leave their time out of the comparison
    (every time in the inputs is 2026-11-23T07:MM:SS)."""
    out = [
        line if line.startswith(b"[2026-11-23T07:") else line.split(b" | ", 1)[1]
        for line in result[0].splitlines()
    ]
    return out, result[1], result[2]


def lines(count: int, keys: int, shards: int, fields: int) -> bytes:
    out = []
    for n in range(count):
        key = f"k{n % keys}" if keys > 1 else "tick"
        ts = f"2026-11-23T07:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}"
        if fields == 4:
            out.append(f'[{ts}.{n % 1000:03d} | {key} | {n} | {n % shards}] {{"tick": {n}}}\n')
        else:
            out.append(f'[{ts} | {key} | {n}] {{"tick": {n}}}\n')
    return "".join(out).encode()


BIG = lines(20_000, 1, 1, 4)
MANY = lines(20_000, 7, 3, 4)
SEA = lines(20_000, 1, 1, 3)
PLAIN = b"".join(b"plain %d\n" % n for n in range(5000))
HEAD = lines(300, 1, 1, 4)
MIXED = (
    lines(500, 7, 3, 4)
    + lines(500, 1, 1, 3)
    + b"[2026-11-23T07:00:00 | k1 | 007 | 02] lead zeros\n"
    + PLAIN
)


@pytest.mark.parametrize(
    ("args", "data"),  # ids: the env var PYTEST_CURRENT_TEST would otherwise hold the data
    [
        ([], BIG),
        (["--input", "stdio:///tick", "--output", "stdio:///tick"], BIG),
        (["--input", "stdio:///k1,k3", "--output", "stdio:///out"], MANY),
        (["--input", "stdio:///k0,k1,k2,k3,k4,k5,k6", "--output", "stdio:///k0"], MANY),
        (["--input", "stdio:///tick", "--output", "stdio:///tick"], SEA),
        ([], SEA),
        (["--input", "stdio:///k2"], MIXED),
    ],
    ids=[
        "default",
        "keyed",
        "two-keys-renamed",
        "7x3",
        "seastreamer-keyed",
        "seastreamer",
        "mixed",
    ],
)
def test_fast_relay_writes_what_the_batch_loop_writes(args: list[str], data: bytes) -> None:
    fast = relay(args, data, pure=False)
    assert fast[2] == 0, fast[1]
    assert fast[0]  # something was relayed
    assert untimed(fast) == untimed(relay(args, data, pure=True))


def test_plain_lines_get_the_same_sequence_numbers() -> None:
    # Timestamps of plain lines are the clock: compare everything after the time.
    fast, pure = relay([], MIXED, pure=False), relay([], MIXED, pure=True)
    assert fast[2] == pure[2] == 0
    strip = [line.split(b" | ", 1)[-1] for line in fast[0].splitlines()]
    assert strip == [line.split(b" | ", 1)[-1] for line in pure[0].splitlines()]
    assert len(strip) == MIXED.count(b"\n")


@pytest.mark.parametrize("policy", ["fail", "skip", "raw"])
def test_invalid_lines_end_or_pass_alike(policy: str) -> None:
    data = HEAD + b"[2026-11-23T07:00:00 | bad key | 1] x\n" + b"\xff\xfe\n" + BIG
    args = ["--on-invalid", policy, "--input", "stdio:///tick", "--output", "stdio:///tick"]
    fast = relay(args, data, pure=False)
    assert untimed(fast) == untimed(relay(args, data, pure=True))
    assert fast[2] == {"fail": 3, "skip": 0, "raw": 3}[policy]  # raw: \xff cannot be a line
    if policy == "fail":
        assert b"<stdin>:" in fast[1] and fast[1].count(b"\n") == 1


def test_a_payload_the_format_cannot_carry_stops_after_the_lines_before_it() -> None:
    # A raw invalid-UTF-8 line becomes a payload that cannot be written as a line.
    data = HEAD + b"\xff\n" + BIG
    fast = relay(["--on-invalid", "raw"], data, pure=False)
    assert untimed(fast) == untimed(relay(["--on-invalid", "raw"], data, pure=True))
    assert fast[2] == 3 and fast[0] and fast[1].count(b"\n") == 1


KEYED = [
    ((), None),
    (("tick",), "tick"),
    (("k1", "k3"), "out"),
    (tuple(f"k{n}" for n in range(7)), "out"),
]


@pytest.mark.parametrize("codec", ["pure", "C"])
@pytest.mark.parametrize(("keys", "out_key"), KEYED, ids=["default", "keyed", "two", "7x3"])
def test_keyed_uris_take_the_transcoding_path_of_the_default_ones(
    codec: str, keys: tuple[str, ...], out_key: str | None
) -> None:
    """Keys on either side must not send the relay back to the batch loop (issue 12): with the
    C decoder ``relay_lines`` transcodes and counts what it wrote; the pure one declines."""
    data = lines(300, 1, 1, 4) + lines(700, 7, 3, 4)
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    try:
        os.write(in_write, data)  # ~60 KB: fits the pipe, so no reader is needed meanwhile
        os.close(in_write)
        hub = _StdinHub(in_read)
        hub.configure(ConsumerOptions())
        decoder = line_compiled.LineDecoder if codec == "C" else pure_line.LineDecoder
        hub.decoder = decoder("<stdin>")
        consumer = StdioConsumer(hub, keys, ConsumerOptions())
        hub.consumers.append(consumer)
        producer = StdioProducer(_StdoutWriter(out_write), out_key, ProducerOptions())
        relayed = asyncio.run(relay_lines(consumer, producer))
        os.close(out_write)
        written = b""
        while block := os.read(out_read, 1 << 16):
            written += block
    finally:
        for fd in (in_read, out_read, out_write):
            try:
                os.close(fd)
            except OSError:
                pass
    if codec == "pure":
        assert relayed is None and written == b""
        return
    wanted = [
        line for line in data.splitlines() if not keys or line.split(b" | ")[1].decode() in keys
    ]
    assert relayed == len(wanted) == written.count(b"\n")
    if out_key is not None:
        assert {line.split(b" | ")[1] for line in written.splitlines()} == {out_key.encode()}
    assert consumer.filtered == len(data.splitlines()) - len(wanted)
