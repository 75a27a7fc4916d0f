"""``streamkit relay`` with Redis at either end, as real subprocesses against a private server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.cli.slow_reader import read_slowly
from tests.servers.redis_server import RedisServer

LINE = re.compile(rb"^\[(\S+) \| (\S+) \| (\d+) \| (\d+)\] (.*)$")
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def relay(
    *args: str, stdin: bytes | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "relay", *args],
        input=stdin, capture_output=True, timeout=timeout, env=ENV,
    )  # fmt: skip


def start_relay(*args: str, stdin: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "relay", *args],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip


def parse(out: bytes) -> list[tuple[str, str, int, int, bytes]]:
    rows = []
    for raw in out.splitlines():
        match = LINE.match(raw)
        assert match, raw
        ts, key, seq, shard, payload = match.groups()
        rows.append((ts.decode(), key.decode(), int(seq), int(shard), payload))
    return rows


def redis_ids(server: RedisServer, key: str) -> list[tuple[int, int]]:
    words = server.cli("XRANGE", key, "-", "+").split()
    return [
        (int(w.split("-")[0]), int(w.split("-")[1])) for w in words if re.fullmatch(r"\d+-\d+", w)
    ]


def test_stdio_to_redis_and_back_keeps_timestamps(
    redis_server: RedisServer, unique_key: str
) -> None:
    lines = b"".join(b"[2026-11-23T07:00:%02d.250 | x] payload %d\n" % (i, i) for i in range(20))
    url = redis_server.stream_url(unique_key)
    done = relay("--input", "stdio:///x", "--output", url, stdin=lines)
    assert done.returncode == 0, done.stderr
    ids = redis_ids(redis_server, unique_key)
    assert len(ids) == 20
    back = relay("--input", url, "--output", f"stdio:///{unique_key}", "--offset", "start", "-e")
    assert back.returncode == 0, back.stderr
    rows = parse(back.stdout)
    assert [r[4] for r in rows] == [b"payload %d" % i for i in range(20)]
    for i, (ts, key, seq, shard, _) in enumerate(rows):
        assert ts == f"2026-11-23T07:00:{i:02d}.250"
        assert (key, shard) == (unique_key, 0)
        ms, sub = ids[i]
        assert seq == (ms << 16) | sub


def test_redis_to_file_keeps_original_timestamps(
    redis_server: RedisServer, unique_key: str, tmp_path: Path
) -> None:
    for i in range(10):
        redis_server.cli("XADD", unique_key, f"17000000000{i:02d}-{i}", "msg", f"m{i}")
    url = redis_server.stream_url(unique_key)
    target = f"file://{tmp_path}/dump.ss/{unique_key}"
    done = relay("--input", url, "--output", target, "--offset", "start", "-e")
    assert done.returncode == 0, done.stderr
    back = relay("--input", target, "--output", f"stdio:///{unique_key}")
    assert back.returncode == 0, back.stderr
    rows = parse(back.stdout)
    assert [r[4] for r in rows] == [b"m%d" % i for i in range(10)]
    assert [r[2] for r in rows] == [((1700000000000 + i) << 16) | i for i in range(10)]
    assert rows[3][0] == "2023-11-14T22:13:20.003"


def test_resumable_relay_continues_where_it_stopped(
    redis_server: RedisServer, unique_key: str
) -> None:
    url = redis_server.stream_url(unique_key)
    fill = relay("--input", "stdio:///x", "--output", url,
                 stdin=b"".join(b"n%d\n" % i for i in range(10)))  # fmt: skip
    assert fill.returncode == 0, fill.stderr
    common = ("--input", url, "--output", "stdio:///out", "--mode", "resumable", "--group", "g")
    first = relay(*common, "--offset", "start", "--count", "4")
    assert first.returncode == 0, first.stderr
    second = relay(*common, "-e")
    assert second.returncode == 0, second.stderr
    got = [r[4] for r in parse(first.stdout)] + [r[4] for r in parse(second.stdout)]
    assert got == [b"n%d" % i for i in range(10)]
    assert redis_server.cli("XPENDING", unique_key, "g").split()[0] == "0"


def test_relays_survive_a_redis_restart(redis_restartable: RedisServer, unique_key: str) -> None:
    server = redis_restartable
    url = server.stream_url(unique_key)
    reader = start_relay("--input", url, "--output", "stdio:///out", "--offset", "start")
    writer = start_relay("--input", "stdio:///x", "--output", url, stdin=subprocess.PIPE)
    assert writer.stdin is not None and reader.stdout is not None
    writer.stdin.write(b"".join(b"a%d\n" % i for i in range(500)))
    writer.stdin.flush()
    # Both connected and working before the restart (a slow start-up would otherwise meet the
    # server down, which is a start-up failure: exit 1 at once, not a reconnect).
    deadline = time.monotonic() + 20
    while int(server.cli("XLEN", unique_key)) < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    server.restart(keep_data=True, downtime=0.5)
    writer.stdin.write(b"".join(b"b%d\n" % i for i in range(500)))
    writer.stdin.close()
    assert writer.wait(timeout=30) == 0, writer.stderr.read() if writer.stderr else ""
    wanted = {b"a%d" % i for i in range(500)} | {b"b%d" % i for i in range(500)}
    deadline = time.monotonic() + 20
    while int(server.cli("XLEN", unique_key)) < len(wanted) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    reader.send_signal(signal.SIGTERM)
    out, err = reader.communicate(timeout=20)
    assert reader.returncode == 143, err
    payloads = [r[4] for r in parse(out)]
    assert set(payloads) == wanted  # nothing lost
    duplicates = len(payloads) - len(set(payloads))
    assert duplicates == 0  # realtime resumes after the last delivered id
    assert b"reconnecting with backoff" in err
    assert err.count(b"\n") <= 3 and b"Traceback" not in err


def test_failures_are_one_line(redis_server: RedisServer, unique_key: str) -> None:
    redis_server.cli("SET", unique_key, "a string")
    wrong_type = relay("--input", redis_server.stream_url(unique_key), "--output", "stdio:///x",
                       "--offset", "start", "-e")  # fmt: skip
    host = f"{redis_server.host}:{redis_server.port}"
    wrong_password = relay("--input", f"redis://nobody:wrongpw@{host}/{unique_key}",
                           "--output", "stdio:///x")  # fmt: skip
    for result, needle in ((wrong_type, b"WRONGTYPE"), (wrong_password, b"authentication failed")):
        assert result.returncode == 1
        assert needle in result.stderr
        assert result.stderr.strip().count(b"\n") == 0, result.stderr
        assert b"wrongpw" not in result.stderr


def test_load_balanced_relay_claims_a_dead_members_entries(
    redis_server: RedisServer, unique_key: str
) -> None:
    url = redis_server.stream_url(unique_key)
    fill = relay("--input", "stdio:///x", "--output", url,
                 stdin=b"".join(b"e%d\n" % i for i in range(200)))  # fmt: skip
    assert fill.returncode == 0, fill.stderr
    redis_server.cli("XGROUP", "CREATE", unique_key, "lb", "0")
    # a member that read 50 entries and died before writing them anywhere
    redis_server.cli(
        "XREADGROUP", "GROUP", "lb", "ghost", "COUNT", "50", "STREAMS", unique_key, ">"
    )
    time.sleep(0.3)
    survivor = relay(
        "--input", url, "--output", "stdio:///out", "--mode", "load-balanced", "--group", "lb",
        "--consumer-name", "survivor", "--claim-idle", "200ms", "-e",
    )  # fmt: skip
    assert survivor.returncode == 0, survivor.stderr
    got = sorted(r[4] for r in parse(survivor.stdout))
    assert got == sorted(b"e%d" % i for i in range(200))
    assert redis_server.cli("XPENDING", unique_key, "lb").split()[0] == "0"


def test_sigterm_flushes_what_stdin_gave(redis_server: RedisServer, unique_key: str) -> None:
    url = redis_server.stream_url(unique_key)
    writer = start_relay("--input", "stdio:///x", "--output", url, stdin=subprocess.PIPE)
    assert writer.stdin is not None
    writer.stdin.write(b"".join(b"s%d\n" % i for i in range(3000)))
    writer.stdin.flush()
    deadline = time.monotonic() + 10
    while int(redis_server.cli("XLEN", unique_key) or 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.send_signal(signal.SIGTERM)
    _, err = writer.communicate(timeout=20)
    assert writer.returncode == 143, err
    assert int(redis_server.cli("XLEN", unique_key)) == 3000


def test_a_burst_in_one_millisecond_reads_back_whole(
    redis_server: RedisServer, unique_key: str
) -> None:
    """200,000 lines with one timestamp: what the relay writes, the relay reads (issue 15.1)."""
    lines = b"".join(b"[2026-11-23T07:00:00.000 | b] line %d\n" % i for i in range(200_000))
    url = redis_server.stream_url(unique_key)
    written = relay("--input", "stdio:///b", "--output", url, "-v", stdin=lines, timeout=120)
    assert written.returncode == 0, written.stderr
    assert b"more than 65,536 messages share a millisecond" in written.stderr
    assert b"134464 messages were stored with a later millisecond" in written.stderr
    last = redis_server.cli("XREVRANGE", unique_key, "+", "-", "COUNT", "1").split()[0]
    assert last == "1795417200003-3391"  # 3 full milliseconds, then the rest
    read = relay("--input", url, "--offset", "start", "-e", timeout=120)
    assert read.returncode == 0, read.stderr
    rows = parse(read.stdout)
    assert [row[4] for row in rows] == [b"line %d" % i for i in range(200_000)]
    seqs = [row[2] for row in rows]
    assert seqs == sorted(set(seqs))
    assert {row[0] for row in rows[:65_536]} == {"2026-11-23T07:00:00.000"}
    assert rows[-1][0] == "2026-11-23T07:00:00.003"
    assert b"N > 65535" not in read.stderr


def test_entries_other_clients_wrote_past_65535_per_ms_are_read_and_counted(
    redis_server: RedisServer, unique_key: str
) -> None:
    for entry_id in ("1700000000000-65535", "1700000000000-65536", "1700000000000-99999"):
        redis_server.cli("XADD", unique_key, entry_id, "msg", entry_id)
    read = relay("--input", redis_server.stream_url(unique_key), "--offset", "start", "-e")
    assert read.returncode == 0, read.stderr
    assert [row[4] for row in parse(read.stdout)] == [
        b"1700000000000-65535", b"1700000000000-65536", b"1700000000000-99999"
    ]  # fmt: skip
    assert {row[2] for row in parse(read.stdout)} == {(1700000000000 << 16) | 0xFFFF}
    err = read.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "2 entries had an id MS-N with N > 65535" in err, err


def test_e_alone_reads_from_the_start_and_minus_n_the_last(
    redis_server: RedisServer, unique_key: str
) -> None:
    for i in range(5):
        redis_server.cli("XADD", unique_key, "*", "msg", f"r{i}")
    url = redis_server.stream_url(unique_key)
    whole = relay("--input", url, "-e")
    assert whole.returncode == 0, whole.stderr
    assert [row[4] for row in parse(whole.stdout)] == [b"r0", b"r1", b"r2", b"r3", b"r4"]
    last = relay("--input", url, "--no-follow", "--offset", "-2")
    assert last.returncode == 0, last.stderr
    assert [row[4] for row in parse(last.stdout)] == [b"r3", b"r4"]


def test_the_summary_after_giving_up_counts_what_redis_acknowledged(
    redis_restartable: RedisServer, unique_key: str
) -> None:
    """Pipelined batches in flight when Redis went away are not counted as relayed."""
    server = redis_restartable
    url = server.stream_url(unique_key)
    writer = start_relay(
        "--input", "stdio:///x", "--output", url, "-v", "-X", "reconnect_timeout=1",
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert writer.stdin is not None

    def feed() -> None:
        assert writer.stdin is not None
        try:
            for i in range(400):
                writer.stdin.write(b"".join(b"line %d\n" % (i * 250 + j) for j in range(250)))
                writer.stdin.flush()
                time.sleep(0.01)
        except (BrokenPipeError, ValueError):
            pass

    feeder = threading.Thread(target=feed)
    feeder.start()
    deadline = time.monotonic() + 30
    while int(server.cli("XLEN", unique_key)) < 10_000:
        assert time.monotonic() < deadline, "the relay never wrote"
        time.sleep(0.01)
    server.stop(save=True)  # the data stays (dump.rdb); the relay gives up after 1 s
    feeder.join(60)
    assert writer.wait(30) == 1
    err = writer.stderr.read().decode() if writer.stderr else ""
    server.start()
    stored = int(server.cli("XLEN", unique_key))
    match = re.search(r"(\d+) messages relayed", err)
    assert match, err
    relayed = int(match.group(1))
    assert relayed <= stored <= relayed + 2000, (relayed, stored, err)


def test_sigterm_stops_a_redis_relay_with_a_backlog_at_once(
    redis_server: RedisServer, unique_key: str
) -> None:
    url = redis_server.stream_url(unique_key)
    lines = b"".join(b"[2026-11-23T07:00:%02d.%03d | b] n %d\n" % (i // 1000 % 60, i % 1000, i)
                     for i in range(100_000))  # fmt: skip
    assert relay("--input", "stdio:///b", "--output", url, stdin=lines, timeout=120).returncode == 0
    got = read_slowly(
        start_relay("--input", url, "--offset", "start", "-e"),
        lines_per_second=20_000,
        signal_after=20_000,
    )
    assert got.returncode == 143, got.stderr
    assert len(got.lines) - got.at_signal < 5_000, (len(got.lines), got.at_signal)
    assert got.exit_seconds < 3.0
    assert [row[4] for row in parse(b"\n".join(got.lines))] == [
        b"n %d" % i for i in range(len(got.lines))
    ]
