"""Regression cases for the defects of issue 15 (each test names its defect), counted like the
rest of the fault suite. They were written to the behaviour the issue and the docs ask for
before the fixes landed, and failed then.
"""

from __future__ import annotations

import json
import re
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.faults.damage import Sample, cases
from tests.faults.harness import Cli, fill, message_lines, no_traceback, record, run, spawn, tally
from tests.servers.kafka_broker import KafkaBroker
from tests.servers.redis_server import RedisServer

# --------------------------------------------------------------------------- defect 2


@pytest.mark.parametrize("kind", ["bit-flip", "byte-run", "zeroed-block"])
def test_append_refuses_damage_anywhere_and_leaves_the_file_as_it_was(
    kind: str, sample: Sample, cli: Cli, tmp_path: Path
) -> None:
    """Defect 2: in-place damage anywhere after the header (not only inside payloads). What
    decode calls damage, an append refuses with exit 3, leaving every byte as it was; only a
    file that decodes clean (damage no check can see) takes the append."""
    x_line = tmp_path / "x.txt"
    x_line.write_bytes(b"x\n")
    for n, found in enumerate(cases(kind, sample)):
        path = tmp_path / f"case{n}.ss"
        path.write_bytes(found.data)
        decoded = cli.run("decode", str(path))
        appended = cli.run("relay", "--output", f"file://{path}/a", stdin=x_line)
        assert not appended.hung
        no_traceback(appended.stderr)
        if decoded.code == 3:
            assert appended.code == 3, (found.start, appended.stderr)
            assert re.search(r"at byte \d+", appended.stderr), appended.stderr
            assert path.read_bytes() == found.data, f"append changed a damaged file ({found})"
        else:
            assert appended.code == 0, appended.stderr
            after = message_lines(cli.run("decode", str(path)).stdout)
            assert after[:-1] == message_lines(decoded.stdout) and after[-1].endswith("] x")
        unchanged = int(path.read_bytes() == found.data)
        record(f"regression/append after {kind} anywhere", files=1,
               refused=int(appended.code == 3), unchanged=unchanged)  # fmt: skip


def test_append_after_a_flipped_size_field_refuses(cli: Cli, tmp_path: Path) -> None:
    """Defect 2, the issue's case: bit 4 of byte 155 (the first frame's size field) of a
    20,000-message file; the append used to drop 0.9 MB of intact frames as a "tail"."""
    path = tmp_path / "t.ss"
    made = cli.run("clock", "--interval", "0", "--count", "20000", "--output", f"file://{path}/t")
    assert made.code == 0, made.stderr
    data = bytearray(path.read_bytes())
    data[155] ^= 1 << 4
    path.write_bytes(bytes(data))
    x_line = tmp_path / "x.txt"
    x_line.write_bytes(b"x\n")
    appended = cli.run("relay", "--output", f"file://{path}/t", stdin=x_line)
    no_traceback(appended.stderr)
    assert appended.code == 3, appended.stderr
    assert re.search(r"at byte \d+", appended.stderr), appended.stderr
    assert path.read_bytes() == bytes(data)


# --------------------------------------------------------------------------- defect 5


@pytest.mark.parametrize("interval", [2048, 512, 1025])
def test_repair_refuses_a_damaged_header(
    interval: int, sample: Sample, cli: Cli, tmp_path: Path
) -> None:
    """Defect 5: the header says another beacon interval than the file's beacons (1024).
    Repair must refuse, naming what disagrees, and leave the file alone (no backup either)."""
    data = bytearray(sample.data)
    at = 4 + data[3] + 8
    assert struct.unpack_from(">I", data, at)[0] == 1024
    struct.pack_into(">I", data, at, interval)
    path = tmp_path / "header.ss"
    path.write_bytes(bytes(data))
    repaired = cli.run("verify", "--repair", str(path))
    no_traceback(repaired.stderr)
    assert repaired.code == 3, (repaired.stdout, repaired.stderr)
    assert "1024" in repaired.stderr, repaired.stderr
    assert path.read_bytes() == bytes(data)
    assert not list(tmp_path.glob("header.ss.bak*"))


# --------------------------------------------------------------------------- defect 8


def test_verify_warns_about_fields_the_crc_does_not_cover(
    sample: Sample, cli: Cli, tmp_path: Path
) -> None:
    """Defect 8: a flipped bit in a frame's seq (breaks the per-stream run 1, 2, 3 ...) or high
    in its timestamp (hours away from the neighbouring beacons) passes the CRC; verify still
    exits 0 but warns, naming the frame's offset."""
    frames = sample.layout.messages
    spots = []
    for n in range(40, len(frames) - 40, 56):
        frame = frames[n]
        key_len = len(frame.key)
        seq_at = frame.start + 1 + key_len + 8  # key_len u8, key, shard u64, then seq u64
        ts_at = seq_at + 8
        spots.append((frame.start, seq_at + 7, 1 << (n % 8)))  # low byte of seq
        spots.append((frame.start, ts_at + 5, 1 << (n % 8)))  # ~2**(16..23) ms: hours
    for n, (start, at, bit) in enumerate(spots):
        if sample.layout.frame_at(at) is None or any(b <= at < e for b, e in sample.layout.beacons):
            continue  # a beacon splits this frame's header; the field is elsewhere
        data = bytearray(sample.data)
        data[at] ^= bit
        path = tmp_path / f"field{n}.ss"
        path.write_bytes(bytes(data))
        verified = cli.run("verify", str(path))
        no_traceback(verified.stderr)
        assert verified.code == 0, verified.stderr
        text = verified.stdout + verified.stderr
        warnings = [line for line in text.splitlines() if "warning" in line.lower()]
        assert any(str(start) in w or str(at) in w for w in warnings), (start, at, text)


# --------------------------------------------------------------------------- defect 4


HANDLER = """
import json

def handle(message):
    if json.loads(message.payload)["tick"] == {fail}:
        raise ValueError("tick {fail} is bad")
    return message.payload
"""


@pytest.mark.parametrize(("workers", "policy"), [(1, "fail"), (8, "fail"), (8, "retry:1")])
def test_processor_on_error_fail_writes_everything_before_the_failure(
    workers: int, policy: str, tmp_path: Path
) -> None:
    """Defect 4: everything before the first failing message, in input order, is written;
    the error names that message (tick:0:SEQ)."""
    total, fail = 30_000, 15_037
    (tmp_path / "failing.py").write_text(HANDLER.format(fail=fail))
    lines = b"".join(
        b'[2026-11-23T07:00:00.000 | tick | %d | 0] {"tick": %d}\n' % (n, n) for n in range(total)
    )
    result = run(
        "processor", "--input", "stdio:///tick", "--func", "failing:handle", "-I", str(tmp_path),
        "--workers", str(workers), "--on-error", policy, stdin=lines, timeout=60,
    )  # fmt: skip
    no_traceback(result.stderr)
    assert result.code == 1, result.stderr
    got = [json.loads(line.partition("] ")[2])["tick"] for line in result.lines()]
    assert got == list(range(fail)), f"{len(got)} written, first failure at {fail}"
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and f"tick:0:{fail}" in errors[0], result.stderr
    counts = tally(range(fail), got)
    record(f"regression/processor --on-error {policy}, {workers} workers", **counts.as_dict())


# --------------------------------------------------------------------------- defect 3


def _read_at(stream: object, rate: float, lines: list[bytes], stop: threading.Event) -> None:
    """Read lines at ``rate`` per second (a slow consumer of the relay's output)."""
    started = time.monotonic()
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)
        ahead = len(lines) / rate - (time.monotonic() - started)
        if ahead > 0.005:
            time.sleep(ahead)
        if stop.is_set():
            break


def _sigterm_run(args: list[str], rate: float, after: float) -> tuple[list[bytes], int, float]:
    relay = spawn(*args)
    lines: list[bytes] = []
    stop = threading.Event()
    reader = threading.Thread(target=_read_at, args=(relay.stdout, rate, lines, stop), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline:  # a group join takes a few seconds
            time.sleep(0.01)
        assert lines, "the relay delivered nothing"
        time.sleep(after)
        relay.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code = relay.wait(5)
        except subprocess.TimeoutExpired:
            code = -1
        took = time.monotonic() - signalled
        reader.join(10)
    finally:
        stop.set()
        relay.kill()
        relay.wait(10)
    assert relay.stderr is not None
    no_traceback(relay.stderr.read().decode(errors="replace"))
    return lines, code, took


@pytest.mark.parametrize("mode", ["realtime", "resumable"])
def test_kafka_relay_stops_reading_on_sigterm(mode: str, kafka_broker: KafkaBroker) -> None:
    """Defect 3: SIGTERM while stdout is read at 20k lines/s: exit 143 within ~2 s (stop
    fetching, drain what is in flight, commit what was written). In resumable mode a second
    run of the group delivers exactly the rest: nothing lost, nothing twice."""
    topic = kafka_broker.topic("sigterm")
    kafka_broker.create_topic(topic)
    sent = fill(f"kafka://{kafka_broker.address}", topic, 250_000, prefix=b"k", timeout=120)
    args = ["relay", "--input", kafka_broker.uri(topic), "--output", "stdio:///",
            "--offset", "start", "-e"]  # fmt: skip
    if mode == "resumable":
        args += ["--mode", "resumable", "--group", "G"]
    first, code, took = _sigterm_run(args, rate=20_000, after=1.0)
    assert code == 143 and took < 2.5, f"exit {code} {took:.1f}s after SIGTERM"
    assert len(first) < len(sent)
    if mode == "resumable":
        second = run(*args, stdin=None, timeout=120)
        assert second.code == 0, second.stderr
        got = [line.rstrip(b"\n").partition(b"] ")[2] for line in first]
        got += [line.encode().partition(b"] ")[2] for line in second.lines()]
        counts = tally(sent, got)
        assert (counts.lost, counts.duplicated) == (0, 0), counts
        record("regression/kafka SIGTERM + second run: resumable relay", **counts.as_dict())


# --------------------------------------------------------------------------- defect 1


def test_redis_burst_in_one_millisecond_reads_back(
    redis_server: RedisServer, unique_key: str
) -> None:
    """Defect 1: 100,000 messages with one timestamp relay into Redis and read back whole."""
    count = 100_000
    lines = b"".join(
        b"[2026-11-23T07:00:00.000 | b | %d | 0] m-%d\n" % (n, n) for n in range(count)
    )
    url = redis_server.stream_url(unique_key)
    into = run("relay", "--input", "stdio:///b", "--output", url, stdin=lines, timeout=60)
    assert into.code == 0, into.stderr
    back = run("relay", "--input", url, "--offset", "start", "-e", stdin=None, timeout=60)
    no_traceback(back.stderr)
    assert back.code == 0, back.stderr
    got = [line.partition("] ")[2] for line in back.lines()]
    counts = tally([f"m-{n}" for n in range(count)], got)
    assert (counts.lost, counts.duplicated) == (0, 0), counts
    record("regression/redis 100k messages in one millisecond", **counts.as_dict())


# --------------------------------------------------------------------------- defects 6, 7


@pytest.mark.parametrize("setting", ["tls_ca", "tls_cert", "tls_key"])
def test_missing_tls_file_is_one_line_naming_it(setting: str, redis_tls: RedisServer) -> None:
    """Defect 6: a TLS file that does not exist is one line naming it, not a traceback."""
    extra = ["-X", f"tls_ca={redis_tls.directory / 'ca.crt'}"] if setting != "tls_ca" else []
    result = run(
        "relay", "--input", redis_tls.stream_url("k"), "-e", *extra,
        "-X", f"{setting}=/nonexistent/{setting}.pem", stdin=None,
    )  # fmt: skip
    no_traceback(result.stderr)
    assert result.code in (1, 2), result.stderr
    assert result.stderr.count("\n") == 1 and f"/nonexistent/{setting}.pem" in result.stderr


@pytest.mark.parametrize("command", ["decode", "verify"])
def test_file_commands_never_echo_a_password(command: str) -> None:
    """Defect 7: decode/verify given a Redis URI by mistake must not print its password."""
    result = run(command, "redis://user:secretpw@127.0.0.1:1/k", stdin=None)
    no_traceback(result.stderr)
    assert result.code != 0
    assert "secretpw" not in result.stdout + result.stderr, result.stderr
