"""``streamkit processor`` as a real subprocess over stdio pipes (and files for dead letters)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
COMMAND = [sys.executable, "-m", "streamkit.cli.main", "processor"]
LINE = re.compile(rb"^\[(\S+) \| (\S+) \| (\d+) \| (\d+)\] (.*)$")

HANDLERS = """
import asyncio, hashlib, json, time

def upper(message):
    return message.payload.upper()

def jitter(message):
    time.sleep(hashlib.md5(message.payload).digest()[0] / 255 * 0.004)
    return message.payload

async def ajitter(message):
    await asyncio.sleep(hashlib.md5(message.payload).digest()[0] / 255 * 0.004)
    return message.payload

def size(rows):
    return json.dumps({"n": len(rows), "first": rows[0].seq, "last": rows[-1].seq})

def bad_seven(message):
    if message.payload.endswith(b"7"):
        raise ValueError("sevens are bad")
    return message.payload

COUNTS = {}

def flaky(message):
    COUNTS[message.seq] = COUNTS.get(message.seq, 0) + 1
    if message.seq % 5 == 0 and COUNTS[message.seq] < 3:
        raise ConnectionError("transient")
    return message.payload

def slow(message):
    time.sleep(0.002)
    return message.payload

def fourth(message):
    if message.seq == 3:
        raise ValueError("the fourth")
    return message.payload

def from_50037(message):
    if message.seq == 50037 or (message.seq > 50037 and message.seq % 100 == 0):
        raise ValueError("bad tick")
    return message.payload

def fail_150_once(message):
    import os
    if os.environ.get("SK_FAIL") and message.payload == b"n150":
        raise RuntimeError("poison")
    return message.payload.upper()
"""


@pytest.fixture()
def handlers(tmp_path: Path) -> Path:
    (tmp_path / "sk_handlers.py").write_text(HANDLERS)
    return tmp_path


def lines(count: int, payload: str = "p{}") -> bytes:
    return b"".join(
        b"[2026-11-23T07:00:%02d.%03d | in | %d | 0] %s\n"
        % (n // 1000 % 60, n % 1000, n, payload.format(n).encode())
        for n in range(count)
    )


def parse(out: bytes) -> list[tuple[bytes, bytes, int, bytes]]:
    rows = []
    for raw in out.splitlines():
        match = LINE.match(raw)
        assert match, raw
        ts, key, seq, _, payload = match.groups()
        rows.append((ts, key, int(seq), payload))
    return rows


def processor(
    handlers: Path, *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, "--input", "stdio:///", "-I", str(handlers), *args],
        input=stdin, capture_output=True, timeout=timeout, env=ENV,
    )  # fmt: skip


def test_func_transforms_keeping_timestamps_and_order(handlers: Path) -> None:
    data = lines(3000)
    done = processor(handlers, "--output", "stdio:///out", "--func", "sk_handlers:upper",
                     "--workers", "4", stdin=data)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = parse(done.stdout)
    source = parse(data)
    assert [r[3] for r in rows] == [f"P{n}".encode() for n in range(3000)]
    assert [r[0] for r in rows] == [r[0] for r in source]
    assert {r[1] for r in rows} == {b"out"}
    assert done.stderr == b""


@pytest.mark.parametrize("func", ["sk_handlers:jitter", "sk_handlers:ajitter"])
def test_ordered_output_under_random_delays(handlers: Path, func: str) -> None:
    done = processor(handlers, "--func", func, "--workers", "16", stdin=lines(1500))
    assert done.returncode == 0, done.stderr
    assert [r[2] for r in parse(done.stdout)] == list(range(1500))


def test_unordered_partitions_keep_per_key_order(handlers: Path) -> None:
    data = b"".join(
        b'[in | %d] {"user": "u%d", "n": %d}\n' % (n, (n * 7919) % 13, n) for n in range(2000)
    )
    done = processor(handlers, "--func", "sk_handlers:jitter", "--workers", "8", "--unordered",
                     "--partition-by", "user", stdin=data)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = parse(done.stdout)
    assert sorted(r[2] for r in rows) == list(range(2000))
    per_user: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        document = json.loads(row[3])
        per_user[document["user"]].append(document["n"])
    assert len(per_user) == 13
    assert all(ns == sorted(ns) for ns in per_user.values())


def test_batches_respect_size(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:size", "--batch-size", "64",
                     "--batch-timeout", "5s", "--workers", "3", stdin=lines(1000))  # fmt: skip
    assert done.returncode == 0, done.stderr
    batches = [json.loads(r[3]) for r in parse(done.stdout)]
    assert all(b["n"] <= 64 for b in batches)
    assert sum(b["n"] for b in batches) == 1000
    assert [b["last"] for b in batches] == sorted(b["last"] for b in batches)


def test_exec_with_a_shell_command(handlers: Path) -> None:
    done = processor(handlers, "--exec", "sed -u 's/^p/exec-/'", "--workers", "3",
                     stdin=lines(2000))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [r[3] for r in parse(done.stdout)] == [f"exec-{n}".encode() for n in range(2000)]


def test_on_error_fail_exits_1_naming_the_message(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:bad_seven", stdin=lines(30))
    assert done.returncode == 1
    error = done.stderr.decode().strip()
    assert "in:0:7 b'p7'" in error and "ValueError: sevens are bad" in error
    assert "Traceback" not in error and len(error.splitlines()) == 1


def test_on_error_fail_writes_the_three_before_the_fourth(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:fourth", stdin=lines(4))
    assert done.returncode == 1
    assert [r[2] for r in parse(done.stdout)] == [0, 1, 2]
    error = done.stderr.decode().strip()
    assert "in:0:3 b'p3'" in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("workers", [["--workers", "1"], ["--workers", "8", "--ordered"]])
@pytest.mark.parametrize("policy", ["fail", "retry:1"])
def test_on_error_fail_at_scale_writes_exactly_what_came_before(
    handlers: Path, workers: list[str], policy: str
) -> None:
    done = processor(handlers, "--func", "sk_handlers:from_50037", "--on-error", policy,
                     *workers, stdin=lines(100_000), timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert [r[2] for r in parse(done.stdout)] == list(range(50_037))
    error = done.stderr.decode().strip()
    assert "in:0:50037 b'p50037'" in error and len(error.splitlines()) == 1


def test_key_filter_that_left_messages_out_says_so(handlers: Path) -> None:
    done = subprocess.run(
        [*COMMAND, "--input", "stdio:///tick", "-I", str(handlers), "--func", "sk_handlers:upper"],
        input=lines(5), capture_output=True, timeout=60, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        "streamkit processor: 5 messages of other streams left out by the key filter of "
        "--input stdio:///tick (it keeps tick; streams seen: in)"
    ]


def test_stats_takes_an_optional_interval_like_relay(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:upper", "--stats", "--count", "3",
                     stdin=lines(5))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(parse(done.stdout)) == 3
    assert done.stderr.decode().startswith("streamkit processor: done: ")


def test_on_error_skip_logs_and_continues(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:bad_seven", "--on-error", "skip",
                     stdin=lines(30))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [r[2] for r in parse(done.stdout)] == [n for n in range(30) if n % 10 != 7]
    assert done.stderr.decode().count("skipped in:0:") == 3


def test_on_error_retry_recovers(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:flaky", "--on-error", "retry:2",
                     "--stats", "10s", stdin=lines(40))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [r[2] for r in parse(done.stdout)] == list(range(40))
    assert "retried=16" in done.stderr.decode()


def test_on_error_retry_exhausted_fails(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:bad_seven", "--on-error", "retry:1",
                     stdin=lines(10))  # fmt: skip
    assert done.returncode == 1 and b"in:0:7" in done.stderr


def test_on_error_dead_letter_to_a_file(handlers: Path, tmp_path: Path) -> None:
    dlq = tmp_path / "dlq.ss"
    done = processor(handlers, "--func", "sk_handlers:bad_seven", "--on-error",
                     f"dead-letter:file://{dlq}/dlq", stdin=lines(30))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(parse(done.stdout)) == 27
    decoded = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "decode", str(dlq), "--format", "ndjson"],
        capture_output=True, env=ENV, timeout=30,
    )  # fmt: skip
    assert decoded.returncode == 0, decoded.stderr
    records = [json.loads(line) for line in decoded.stdout.splitlines() if line.startswith(b"{")]
    letters = [r for r in records if r["header"]["stream_key"] == "dlq"]  # not the EOS frame
    payloads = [
        json.loads(m["payload"]) if isinstance(m["payload"], str) else m["payload"] for m in letters
    ]
    assert [p["seq"] for p in payloads] == [7, 17, 27]
    assert payloads[0]["error"] == "ValueError: sevens are bad"
    assert payloads[0]["payload"] == "p7"


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--func", "sk_handlers:upper", "--exec", "cat"], "exactly one of"),
        ([], "exactly one of"),
        (["--func", "sk_handlers:nope"], "has no attribute 'nope'"),
        (["--func", "sk_handlers:upper", "--on-error", "explode"], "--on-error"),
        (["--func", "sk_handlers:upper", "--on-error", "dead-letter:memory://t/d"], "memory"),
        (["--exec", "cat", "--batch-size", "3"], "batches need --func"),
        (["--func", "sk_handlers:upper", "--batch-by", "user"], "--batch-by needs"),
    ],
)
def test_usage_errors_exit_2(handlers: Path, args: list[str], text: str) -> None:
    done = processor(handlers, *args, stdin=b"x\n")
    assert done.returncode == 2, done.stderr
    assert text in done.stderr.decode()
    assert b"Traceback" not in done.stderr


def test_sigterm_mid_stream_drains_count_in_equals_out(handlers: Path) -> None:
    process = subprocess.Popen(
        [*COMMAND, "--input", "stdio:///", "-I", str(handlers), "--func", "sk_handlers:slow",
         "--workers", "4", "--stats", "60s"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    stdin = process.stdin
    data = lines(100_000)
    written = [0]

    def feed() -> None:  # a live producer: keeps writing until the processor is gone
        try:
            for start in range(0, len(data), 4096):
                stdin.write(data[start : start + 4096])
                stdin.flush()
                written[0] += 1
                time.sleep(0.001)
        except (BrokenPipeError, ValueError, OSError):
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    first = os.read(process.stdout.fileno(), 1 << 16)  # processing has started
    assert first
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    # not communicate(): it would close stdin under the feeding thread
    rest = process.stdout.read()
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert process.wait(timeout=30) == 143, stderr
    out = parse(first + rest)
    summary = re.search(rb"done: in=(\d+) out=(\d+)", stderr)
    assert summary, stderr
    count_in, count_out = int(summary.group(1)), int(summary.group(2))
    assert count_in == count_out == len(out) > 0
    assert [r[2] for r in out] == list(range(len(out)))
    assert len(out) < 100_000  # it really stopped mid-stream


def test_malformed_line_exits_3_after_writing_what_came_before(handlers: Path) -> None:
    data = lines(500) + b"[Jan 1, 2022] bad\n" + lines(10)
    done = processor(handlers, "--func", "sk_handlers:upper", "--workers", "3", stdin=data)
    assert done.returncode == 3, done.stderr
    assert [r[2] for r in parse(done.stdout)] == list(range(500))
    assert b"<stdin>:501" in done.stderr and b"Traceback" not in done.stderr


def test_count_stops_after_n(handlers: Path) -> None:
    done = processor(handlers, "--func", "sk_handlers:upper", "--count", "42", stdin=lines(300))
    assert done.returncode == 0, done.stderr
    assert [r[2] for r in parse(done.stdout)] == list(range(42))


def test_closed_stdout_exits_0_quietly(handlers: Path) -> None:
    pipeline = subprocess.run(
        f"{' '.join(COMMAND)} --input stdio:/// -I {handlers} --func sk_handlers:upper | head -3; "
        'echo "status=${PIPESTATUS[0]}" >&2',
        shell=True, input=lines(100_000), capture_output=True, env=ENV, timeout=60,
        executable="/bin/bash",
    )  # fmt: skip
    assert pipeline.stdout.count(b"\n") == 3
    assert pipeline.stderr == b"status=0\n"  # the processor's own exit code, and no noise
