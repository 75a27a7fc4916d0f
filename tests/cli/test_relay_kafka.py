"""``streamkit relay`` to and from Kafka as subprocesses, checked with kcat on the same broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.processes import reaped, stopped_by
from tests.cli.slow_reader import read_slowly
from tests.servers.kafka_broker import KafkaBroker, Kcat, free_port

STREAMKIT = [sys.executable, "-c", "from streamkit.cli.main import main; main()"]


def relay(
    *args: str, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*STREAMKIT, "relay", *args], input=input, capture_output=True, timeout=timeout
    )


@pytest.fixture(params=["C", "pure"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The relay subprocess with the C codec (its Kafka produce loop), then pure Python."""
    monkeypatch.setenv("STREAMKIT_PURE_PYTHON", "1" if request.param == "pure" else "0")
    return str(request.param)


def kcat_read(kcat: Kcat, broker: KafkaBroker, topic: str, fmt: str = "%s\\n") -> list[str]:
    out = kcat.run(
        ["-b", broker.address, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", fmt]
    ).stdout
    return out.decode().splitlines()


@pytest.mark.usefixtures("codec")
def test_stdin_to_kafka_keeps_payloads_and_timestamps_for_kcat(
    kafka_broker: KafkaBroker, kcat: Kcat
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    lines = [f"[2026-11-23T07:00:{i:02d}.{i:03d} | x] payload {i}" for i in range(20)]
    done = relay(
        "--input", "stdio:///x", "--output", kafka_broker.uri(topic),
        input=("\n".join(lines) + "\n").encode(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = kcat_read(kcat, kafka_broker, topic, "%T %s\\n")
    expected_ms = [1795417200000 + i * 1000 + i for i in range(20)]
    assert got == [f"{ms} payload {i}" for i, ms in enumerate(expected_ms)]


def test_what_kcat_writes_relay_prints_in_order(kafka_broker: KafkaBroker, kcat: Kcat) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    kcat.run(
        ["-b", kafka_broker.address, "-P", "-t", topic],
        input=b"".join(b"from kcat %d\n" % i for i in range(50)),
    )
    done = relay(
        "--input", kafka_broker.uri(topic), "--output", f"stdio:///{topic}",
        "--offset", "start", "-e",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode().splitlines()
    assert len(out) == 50
    for i, line in enumerate(out):
        assert line.startswith("[20") and f"| {topic} | {i} | 0] from kcat {i}" in line


@pytest.mark.usefixtures("codec")
def test_json_lines_copy_a_topic_losslessly(
    kafka_broker: KafkaBroker, kcat: Kcat, tmp_path: Path
) -> None:
    source, copy = kafka_broker.topic("src"), kafka_broker.topic("copy")
    kafka_broker.create_topic(source, partitions=1)
    kafka_broker.create_topic(copy, partitions=1)
    kcat.run(
        ["-b", kafka_broker.address, "-P", "-t", source, "-K:", "-H", "trace=abc"],
        input=b'k1:{"a": 1}\nk2:plain text\nk3:[1, 2]\n',
    )
    dump = relay(
        "--input", kafka_broker.uri(source), "--output", f"stdio:///{source}",
        "--offset", "start", "-e", "--output-format", "json",
    )  # fmt: skip
    assert dump.returncode == 0, dump.stderr
    objects = [json.loads(line) for line in dump.stdout.decode().splitlines()]
    assert [o["key"] for o in objects] == ["k1", "k2", "k3"]
    (tmp_path / "dump.jsonl").write_bytes(dump.stdout)
    load = relay(
        "--input", f"stdio:///{source}", "--input-format", "json",
        "--output", kafka_broker.uri(copy),
        input=dump.stdout,
    )  # fmt: skip
    assert load.returncode == 0, load.stderr
    fmt = "%k|%T|%h|%s\\n"
    assert kcat_read(kcat, kafka_broker, copy, fmt) == kcat_read(kcat, kafka_broker, source, fmt)


@pytest.mark.usefixtures("codec")
def test_kafka_to_kafka_keeps_keys_headers_and_timestamps(
    kafka_broker: KafkaBroker, kcat: Kcat
) -> None:
    source, target = kafka_broker.topic("src"), kafka_broker.topic("dst")
    kafka_broker.create_topic(source, partitions=1)
    kafka_broker.create_topic(target, partitions=1)
    kcat.run(
        ["-b", kafka_broker.address, "-P", "-t", source, "-K:", "-H", "h=1"],
        input=b"".join(b"key%d:value %d\n" % (i, i) for i in range(30)),
    )
    done = relay(
        "--input", kafka_broker.uri(source), "--output", kafka_broker.uri(target),
        "--offset", "start", "-e",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    fmt = "%k|%T|%h|%s\\n"
    copied = kcat_read(kcat, kafka_broker, target, fmt)
    assert len(copied) == 30
    assert copied == kcat_read(kcat, kafka_broker, source, fmt)


def test_verbose_since_prints_start_offsets(kafka_broker: KafkaBroker, kcat: Kcat) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=2)
    kcat.run(["-b", kafka_broker.address, "-P", "-t", topic], input=b"a\nb\nc\n")
    done = relay(
        "--input", kafka_broker.uri(topic), "--output", "stdio:///x",
        "--since", "-10m", "-e", "-v",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert f"{topic}[0] starts at offset" in err and f"{topic}[1] starts at offset" in err
    assert sorted(line.rsplit("] ", 1)[1] for line in done.stdout.decode().splitlines()) == [
        "a",
        "b",
        "c",
    ]


def test_resumable_relay_continues_where_the_last_run_stopped(
    kafka_broker: KafkaBroker, kcat: Kcat
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    kcat.run(
        ["-b", kafka_broker.address, "-P", "-t", topic],
        input=b"".join(b"m%d\n" % i for i in range(10)),
    )
    common = [
        "--input", kafka_broker.uri(topic), "--output", "stdio:///x", "--offset", "start",
        "--mode", "resumable", "--group", kafka_broker.topic("g"),
    ]  # fmt: skip
    first = relay(*common, "--count", "4")
    assert first.returncode == 0, first.stderr
    second = relay(*common, "-e")
    assert second.returncode == 0, second.stderr

    def payloads(done: subprocess.CompletedProcess[bytes]) -> list[str]:
        return [line.rsplit("] ", 1)[1] for line in done.stdout.decode().splitlines()]

    assert payloads(first) == ["m0", "m1", "m2", "m3"]
    assert payloads(second) == ["m4", "m5", "m6", "m7", "m8", "m9"]


def test_errors_are_one_line_with_their_exit_code(kafka_broker: KafkaBroker) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    unreachable = relay(
        "--input", "stdio:///x", "--output", f"kafka://{nowhere}/t", input=b"x\n",
    )  # fmt: skip
    unreachable_input = relay("--input", f"kafka://{nowhere}/t", "-e")
    # A refused connection fails at once (librdkafka alone would retry for --connect-timeout).
    assert time.monotonic() - started < 8.0
    bad_setting = relay(
        "--input", kafka_broker.uri("t"), "--output", kafka_broker.uri("t2"),
        "-X", "bogus.setting=1",
    )  # fmt: skip
    missing = relay(
        "--input", kafka_broker.uri(kafka_broker.topic("missing")), "--output", "stdio:///x"
    )
    for done, code, words in (
        (unreachable, 1, f"no Kafka broker at {nowhere} (connection refused)"),
        (unreachable_input, 1, f"no Kafka broker at {nowhere} (connection refused)"),
        (bad_setting, 2, "bogus.setting"),
        (missing, 1, "does not exist"),
    ):
        err = done.stderr.decode().strip()
        assert done.returncode == code, err
        assert words in err
        assert "Traceback" not in err and len(err.splitlines()) == 1, err


@pytest.mark.usefixtures("codec")
def test_relay_into_kafka_survives_a_broker_restart(
    kafka_restartable: KafkaBroker, kcat: Kcat
) -> None:
    """The memory broker forgets what it had; what the relay accepts afterwards is not lost."""
    topic = kafka_restartable.topic()
    kafka_restartable.create_topic(topic, partitions=1)
    proc = subprocess.Popen(
        [*STREAMKIT, "relay", "--input", "stdio:///x", "--output", kafka_restartable.uri(topic)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    with reaped(proc):
        proc.stdin.write(b"".join(b"before %d\n" % i for i in range(100)))
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while len(kcat_read(kcat, kafka_restartable, topic)) < 100:
            assert time.monotonic() < deadline, "first lines never arrived"
            time.sleep(0.1)
        kafka_restartable.stop()
        proc.stdin.write(b"".join(b"during %d\n" % i for i in range(100)))
        proc.stdin.flush()
        time.sleep(1.0)
        kafka_restartable.start()
        proc.stdin.write(b"".join(b"after %d\n" % i for i in range(100)))
        proc.stdin.close()
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    got = kcat_read(kcat, kafka_restartable, topic)
    assert got == [f"during {i}" for i in range(100)] + [f"after {i}" for i in range(100)]


def test_sigterm_stops_a_following_relay_after_writing_what_it_read(
    kafka_broker: KafkaBroker, kcat: Kcat
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    proc = subprocess.Popen(
        [*STREAMKIT, "relay", "--input", kafka_broker.uri(topic), "--output", "stdio:///x"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    with reaped(proc):
        time.sleep(1.5)  # started and following from the end
        kcat.run(["-b", kafka_broker.address, "-P", "-t", topic], input=b"live 1\nlive 2\n")
        time.sleep(1.0)
        out, err = stopped_by(proc)
    assert proc.returncode == 143, err
    assert [line.rsplit("] ", 1)[1] for line in out.decode().splitlines()] == ["live 1", "live 2"]


def test_redis_to_kafka_and_back_keeps_timestamps(
    kafka_broker: KafkaBroker, kcat: Kcat, redis_server: Any, unique_key: str
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    source, back = f"{unique_key}-src", f"{unique_key}-back"
    for i in range(10):
        redis_server.cli("XADD", source, f"{1_700_000_000_000 + 5 * i}-0", "msg", f"r{i}")
    forth = relay(
        "--input", redis_server.stream_url(source), "--output", kafka_broker.uri(topic),
        "--offset", "start", "-e",
    )  # fmt: skip
    assert forth.returncode == 0, forth.stderr
    assert kcat_read(kcat, kafka_broker, topic, "%T %s\\n") == [
        f"{1_700_000_000_000 + 5 * i} r{i}" for i in range(10)
    ]
    home = relay(
        "--input", kafka_broker.uri(topic), "--output", redis_server.stream_url(back),
        "--offset", "start", "-e",
    )  # fmt: skip
    assert home.returncode == 0, home.stderr
    entries = redis_server.cli("XRANGE", back, "-", "+").split()
    ids = [e for e in entries if "-" in e and e.split("-")[0].isdigit()]
    assert [i.split("-")[0] for i in ids] == [str(1_700_000_000_000 + 5 * i) for i in range(10)]
    assert [e for e in entries if e.startswith("r")] == [f"r{i}" for i in range(10)]


@pytest.mark.usefixtures("codec")
def test_sigterm_flushes_what_a_relay_into_kafka_accepted(
    kafka_broker: KafkaBroker, kcat: Kcat
) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    proc = subprocess.Popen(
        [*STREAMKIT, "relay", "--input", "stdio:///x", "--output", kafka_broker.uri(topic)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    with reaped(proc):
        proc.stdin.write(b"".join(b"line %d\n" % i for i in range(500)))
        proc.stdin.flush()
        time.sleep(1.0)  # read and handed to librdkafka; stdin stays open (no EOF)
        _, err = stopped_by(proc)
    assert proc.returncode == 143, err
    assert kcat_read(kcat, kafka_broker, topic) == [f"line {i}" for i in range(500)]


def _fill(broker: KafkaBroker, topic: str, count: int) -> None:
    broker.create_topic(topic, partitions=1)
    done = subprocess.run(
        [*STREAMKIT, "clock", "--interval", "0", "--count", str(count),
         "--output", broker.uri(topic)],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _reader(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*STREAMKIT, "relay", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_sigterm_stops_a_kafka_relay_that_has_a_backlog_at_once(kafka_broker: KafkaBroker) -> None:
    """librdkafka holds a deep local queue: the signal must still stop reading within a batch."""
    topic = kafka_broker.topic()
    _fill(kafka_broker, topic, 150_000)
    proc = _reader("--input", kafka_broker.uri(topic), "--offset", "start", "-e")
    got = read_slowly(proc, lines_per_second=20_000, signal_after=20_000)
    assert got.returncode == 143, got.stderr
    # A batch in hand plus what the pipe holds (64 KiB, ~1,400 lines); not the whole backlog.
    assert len(got.lines) - got.at_signal < 5_000, (len(got.lines), got.at_signal)
    assert got.exit_seconds < 3.0
    ticks = [json.loads(line.rsplit(b"] ", 1)[1])["tick"] for line in got.lines]
    assert ticks == list(range(len(ticks)))


def test_sigterm_commits_exactly_what_a_resumable_kafka_relay_wrote(
    kafka_broker: KafkaBroker,
) -> None:
    topic, group = kafka_broker.topic(), kafka_broker.topic("g")
    _fill(kafka_broker, topic, 100_000)
    common = ("--input", kafka_broker.uri(topic), "--offset", "start", "-e",
              "--mode", "resumable", "--group", group)  # fmt: skip
    first = read_slowly(_reader(*common), lines_per_second=20_000, signal_after=20_000)
    assert first.returncode == 143, first.stderr
    assert len(first.lines) < 30_000
    second = relay(*common)
    assert second.returncode == 0, second.stderr
    lines = first.lines + second.stdout.splitlines()
    ticks = [json.loads(line.rsplit(b"] ", 1)[1])["tick"] for line in lines]
    assert ticks == list(range(100_000))


def test_e_alone_prints_the_whole_topic_like_kcat(kafka_broker: KafkaBroker, kcat: Kcat) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    kcat.run(["-b", kafka_broker.address, "-P", "-t", topic], input=b"o1\no2\no3\n")
    whole = relay("--input", kafka_broker.uri(topic), "-e")
    assert whole.returncode == 0, whole.stderr
    assert [line.rsplit(b"] ", 1)[1] for line in whole.stdout.splitlines()] == [b"o1", b"o2", b"o3"]
    last = relay("--input", kafka_broker.uri(topic), "-e", "--offset", "-2")
    assert last.returncode == 0, last.stderr
    assert [line.rsplit(b"] ", 1)[1] for line in last.stdout.splitlines()] == [b"o2", b"o3"]
    zero = relay("--input", kafka_broker.uri(topic), "-e", "--offset", "-0")
    assert zero.returncode == 2 and b"-0" in zero.stderr


def test_a_broker_outage_is_one_streamkit_line_not_librdkafka_chatter(
    kafka_restartable: KafkaBroker,
) -> None:
    broker = kafka_restartable
    topic = broker.topic()
    broker.create_topic(topic, partitions=1)
    proc = subprocess.Popen(
        [*STREAMKIT, "relay", "--input", broker.uri(topic), "--mode", "resumable",
         "--group", broker.topic("g")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    with reaped(proc):
        time.sleep(4.0)  # joined the group, fetching
        broker.stop()
        time.sleep(3.0)  # librdkafka retries (and would log) every few hundred ms
        broker.start()
        time.sleep(1.0)
        _, err = stopped_by(proc, signal.SIGTERM, 30)
    text = err.decode()
    assert proc.returncode == 143, text
    assert text.count(f"streamkit: kafka broker {broker.address} down") == 1, text
    assert "FAIL [" not in text and "rdkafka#" not in text, text
    assert len(text.strip().splitlines()) == 1, text
