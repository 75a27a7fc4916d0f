"""``streamkit relay`` with several ``--input``: a join by timestamp, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.servers.kafka_broker import KafkaBroker
from tests.servers.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-m", "streamkit.cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str, stdin: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*STREAMKIT, *args], input=stdin, capture_output=True, env=ENV, timeout=timeout, check=False
    )


def line(ms: int, key: str, seq: int, n: int) -> bytes:
    return b'[2026-11-23T07:%02d:%02d.%03d | %s | %d | 0] {"n":%d}' % (
        ms // 60_000, ms // 1000 % 60, ms % 1000, key.encode(), seq, n,
    )  # fmt: skip


def record(path: Path, key: str, stamps: list[int]) -> list[bytes]:
    lines = [line(ms, key, i + 1, ms) for i, ms in enumerate(stamps)]
    done = run(
        "relay", "--input", f"stdio:///{key}", "--output", f"file://{path}/{key}",
        stdin=b"\n".join(lines) + b"\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return lines


def stamp_of(raw: bytes) -> bytes:
    return raw[1:24]


def test_three_recordings_join_into_one_sorted_complete_timeline(tmp_path: Path) -> None:
    recorded = []
    for offset, key in enumerate(("c", "a", "b")):
        # Interleaved: c at 0,3,6..; a at 1,4,7..; b at 2,5,8..; and all three at 30000.
        recorded += record(tmp_path / f"{key}.ss", key, [*range(offset, 3000, 3), 30_000])
    done = run(
        "relay",
        *(arg for key in "cab" for arg in ("--input", f"file://{tmp_path}/{key}.ss/{key}")),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    out = done.stdout.splitlines()
    assert sorted(out) == sorted(recorded)  # complete, nothing twice
    assert [stamp_of(r) for r in out] == sorted(stamp_of(r) for r in out)
    assert [r.split(b" | ")[1] for r in out[-3:]] == [b"a", b"b", b"c"]  # ties: key order


def test_the_join_writes_one_file_that_replays_as_one_timeline(tmp_path: Path) -> None:
    a = record(tmp_path / "a.ss", "a", [0, 20, 40])
    b = record(tmp_path / "b.ss", "b", [10, 30])
    done = run(
        "relay", "--input", f"file://{tmp_path}/a.ss/a", "--input", f"file://{tmp_path}/b.ss/b",
        "--output", f"file://{tmp_path}/ab.ss/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    back = run("relay", "--input", f"file://{tmp_path}/ab.ss/")
    assert back.stdout.splitlines() == [a[0], b[0], a[1], b[1], a[2]]


def test_a_join_replays_at_a_pace(tmp_path: Path) -> None:
    a = record(tmp_path / "a.ss", "a", list(range(0, 1000, 100)))
    b = record(tmp_path / "b.ss", "b", list(range(50, 1050, 100)))
    start = time.monotonic()
    done = run(
        "relay", "--input", f"file://{tmp_path}/a.ss/a", "--input", f"file://{tmp_path}/b.ss/b",
        "--pace", "2x",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [x for pair in zip(a, b) for x in pair]
    assert elapsed >= 0.475  # 0 .. 950 ms at 2x; a timer never fires early


def test_a_silent_redis_input_delays_the_join_by_at_most_max_lateness(
    tmp_path: Path, redis_server: RedisServer, unique_key: str
) -> None:
    recorded = record(tmp_path / "f.ss", "f", list(range(0, 500, 5)))
    start = time.monotonic()
    done = run(
        "relay", "--input", f"file://{tmp_path}/f.ss/f",
        "--input", redis_server.stream_url(unique_key),  # follows, and never says anything
        "--max-lateness", "1s", "--count", str(len(recorded)),
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == recorded
    assert 1.0 <= elapsed < 20  # waited for the silent input, then moved on


def test_a_file_a_redis_stream_and_a_kafka_topic_join_into_one_timeline(
    tmp_path: Path, redis_server: RedisServer, unique_key: str, kafka_broker: KafkaBroker
) -> None:
    topic = kafka_broker.topic("join")
    kafka_broker.create_topic(topic, partitions=1)
    in_file = record(tmp_path / "f.ss", "f", [0, 30, 60])
    in_redis = [line(ms, unique_key, i + 1, ms) for i, ms in enumerate((10, 40, 70))]
    in_kafka = [line(ms, topic, i + 1, ms) for i, ms in enumerate((20, 50, 80))]
    for uri, key, lines in (
        (redis_server.stream_url(unique_key), unique_key, in_redis),
        (kafka_broker.uri(topic), topic, in_kafka),
    ):
        sent = run("relay", "--input", f"stdio:///{key}", "--output", uri,
                   stdin=b"\n".join(lines) + b"\n")  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    done = run(
        "relay", "--input", redis_server.stream_url(unique_key),
        "--input", kafka_broker.uri(topic), "--input", f"file://{tmp_path}/f.ss/f",
        "--offset", "start", "-e",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert [stamp_of(r) for r in out] == [stamp_of(line(ms, "x", 0, 0)) for ms in range(0, 90, 10)]
    payloads = [r.rsplit(b"] ", 1)[1] for r in out]
    assert payloads == [b'{"n":%d}' % ms for ms in range(0, 90, 10)]
    assert [r.split(b" | ")[1] for r in out[:3]] == [b"f", unique_key.encode(), topic.encode()]
    assert in_file[0] in out


def test_a_late_message_is_delivered_and_counted(
    tmp_path: Path, redis_server: RedisServer, unique_key: str
) -> None:
    recorded = record(tmp_path / "f.ss", "f", [1000, 2000])
    relay = subprocess.Popen(
        [*STREAMKIT, "relay", "--input", f"file://{tmp_path}/f.ss/f",
         "--input", redis_server.stream_url(unique_key), "--max-lateness", "200ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    assert relay.stdout is not None
    try:
        got = [relay.stdout.readline().rstrip(b"\n") for _ in recorded]
        assert got == recorded
        old = line(500, unique_key, 1, 500)  # older than what was already written
        sent = run("relay", "--input", f"stdio:///{unique_key}", "--output",
                   redis_server.stream_url(unique_key), stdin=old + b"\n")  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        late = relay.stdout.readline().rstrip(b"\n")
        assert stamp_of(late) == stamp_of(old) and late.endswith(b'{"n":500}')
    finally:
        relay.terminate()
        _, err = relay.communicate(timeout=20)
    assert relay.returncode == 143
    assert b"1 late messages delivered out of timestamp order" in err
    assert b"Traceback" not in err


def test_late_drop_changes_nothing_when_nothing_is_late(tmp_path: Path) -> None:
    # Both inputs finite: nothing is ever late, so --late drop changes nothing.
    a = record(tmp_path / "a.ss", "a", [5, 15])
    b = record(tmp_path / "b.ss", "b", [10])
    done = run(
        "relay", "--input", f"file://{tmp_path}/a.ss/a", "--input", f"file://{tmp_path}/b.ss/b",
        "--late", "drop",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [a[0], b[0], a[1]]
    assert done.stderr == b""


def test_join_usage_errors(tmp_path: Path) -> None:
    record(tmp_path / "a.ss", "a", [1])
    one = run("relay", "--input", f"file://{tmp_path}/a.ss/a", "--max-lateness", "1s")
    assert one.returncode == 2
    assert one.stderr.count(b"\n") == 1 and b"--max-lateness" in one.stderr
    two = run(
        "relay", "--input", f"file://{tmp_path}/a.ss/a", "--input", f"file://{tmp_path}/a.ss/a",
        "--mode", "resumable", "--group", "g",
    )  # fmt: skip
    assert two.returncode == 2
    assert b"--mode" in two.stderr and b"Traceback" not in two.stderr
    loop = run(
        "relay", "--input", f"file://{tmp_path}/a.ss/a", "--input", f"file://{tmp_path}/b.ss/b",
        "--output", f"file://{tmp_path}/b.ss/b",
    )  # fmt: skip
    assert loop.returncode == 2 and b"loop" in loop.stderr
