"""``relay -f/--format-template``: kcat's ``-f`` on relay's stdout, checked against kcat itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.kafka_broker import KafkaBroker, Kcat

ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = [sys.executable, "-m", "streamkit.cli.main"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def relay(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*STREAMKIT, "relay", *args], input=stdin, capture_output=True, timeout=60, env=ENV
    )


JSON_LINES = b"".join(
    json.dumps(record).encode() + b"\n"
    for record in [
        {
            "topic": "orders",
            "partition": 2,
            "offset": 5,
            "ts": 1796153794123,
            "key": "k1",
            "headers": {"trace": "abc"},
            "payload": "first",
        },
        {
            "topic": "orders",
            "partition": 2,
            "offset": 6,
            "ts": 1796153794124,
            "key": None,
            "payload": "second",
        },
    ]
)


def test_template_prints_every_field_of_each_message() -> None:
    done = relay("--input-format", "json", "-f", "%t/%p/%o %T %{time} key=%k [%h] %s\\n",
                 stdin=JSON_LINES)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b"orders/2/5 1796153794123 2026-12-01T19:36:34.123 key=k1 [trace=abc] first\n"
        b"orders/2/6 1796153794124 2026-12-01T19:36:34.124 key= [] second\n"
    )
    renamed = relay("--input-format", "json", "--output", "stdio:///out",
                    "--format-template", "%t %s\\n", stdin=JSON_LINES)  # fmt: skip
    assert renamed.stdout == b"out first\nout second\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-f", "%s", "--output", "file://./x.ss/x"], "a template formats stdout"),
        (["-f", "%s", "--output-format", "json"], "either a template or --output-format json"),
        (["-f", "%q\\n"], "unknown field %q"),
    ],
)
def test_template_usage_errors_are_one_line_exit_2(
    args: list[str], says: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [*STREAMKIT, "relay", *args], input=b"[a] x\n", capture_output=True, timeout=60,
        env=ENV, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith("streamkit relay: error: --format-template: ") and says in line
    assert not (tmp_path / "x.ss").exists()


def test_kafka_template_prints_what_kcat_prints(kafka_broker: KafkaBroker, kcat: Kcat) -> None:
    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic, partitions=1)
    kcat.run(
        ["-b", kafka_broker.address, "-P", "-t", topic, "-K:", "-H", "h=1", "-H", "g=two"],
        input=b"".join(b"key%d:value %d\n" % (i, i) for i in range(20)),
    )
    fmt = "%t|%p|%o|%T|%k|%K|%S|%h|%s\\n"
    theirs = kcat.run(
        ["-b", kafka_broker.address, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", fmt]
    ).stdout
    ours = relay("--input", kafka_broker.uri(topic), "--offset", "start", "-e", "-f", fmt)
    assert ours.returncode == 0, ours.stderr
    assert len(theirs.splitlines()) == 20
    assert ours.stdout == theirs
