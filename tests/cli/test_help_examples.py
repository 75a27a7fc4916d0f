"""The examples in ``-h`` run as written (issue 11 #6: processor's failed on a missing --input).

Each example of ``clock``, ``relay`` and ``processor`` runs in a shell, in one working folder (so
an example may read what an earlier one wrote), against the private Redis and Kafka servers
(their ports put in place of the defaults), with a few clock lines on stdin, and with ``mypkg``
and ``db`` — the "your own module" of processor's examples — written there first. An example
that ends must exit 0; one that follows a stream (Redis or Kafka without -e) must still be
running after a few seconds and exit 143 on SIGTERM, with no error on stderr either way.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.kafka_broker import KafkaBroker
from tests.servers.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
FOLLOW_SECONDS = 7.0

MODULES = {
    "mypkg/__init__.py": "",
    "mypkg/enrich.py": "def handle(message):\n    return message.payload.upper()\n",
    "db.py": "def insert_many(rows):\n    return None\n",
}


def help_examples(command: str) -> list[str]:
    """The example commands of ``streamkit COMMAND -h``, continuation lines joined."""
    text = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", command, "-h"],
        capture_output=True, check=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout.decode()  # fmt: skip
    section = text.split("Examples", 1)[1].split(":", 1)[1]
    joined = re.sub(r"\\\n\s*", "", section)
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("streamkit ")]


def run_example(example: str, folder: Path, stdin: bytes) -> tuple[int | None, bytes, bytes]:
    """(exit code, or None if it was still running and exited 143 on SIGTERM; stdout; stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{ROOT / 'bin'}:{os.environ['PATH']}"}
    shell = subprocess.Popen(
        ["bash", "-c", f"set -o pipefail; {example}"], cwd=folder, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = shell.communicate(stdin, timeout=FOLLOW_SECONDS)
        return shell.returncode, out, err
    except subprocess.TimeoutExpired:
        # SIGTERM the commands (bash's children; bash itself if it exec'd the only one), so
        # bash reports their exit code as a terminal's Ctrl-C would not hide it
        children = Path(f"/proc/{shell.pid}/task/{shell.pid}/children").read_text().split()
        for pid in [int(child) for child in children] or [shell.pid]:
            os.kill(pid, signal.SIGTERM)
        out, err = shell.communicate(timeout=30)
        assert shell.returncode == 143, (example, shell.returncode, err.decode())
        return None, out, err


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    for name, text in MODULES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_processor_examples_are_found() -> None:
    examples = help_examples("processor")
    assert len(examples) == 4
    assert all(example.count("streamkit") >= 1 for example in examples)


@pytest.mark.parametrize("command", ["clock", "relay", "processor"])
def test_every_help_example_runs(
    command: str, folder: Path, redis_server: RedisServer, kafka_broker: KafkaBroker
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ticks = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "clock", "--interval", "0", "--count", "5"],
        capture_output=True, check=True, timeout=60, env=env,
    ).stdout  # fmt: skip
    for stream in (  # the streams the examples read: a user's examples read existing data
        f"redis://127.0.0.1:{redis_server.port}/orders",
        f"redis://127.0.0.1:{redis_server.port}/rows",
        f"kafka://{kafka_broker.address}/events",
    ):
        relay = [sys.executable, "-m", "streamkit.cli.main", "relay", "--output", stream]
        subprocess.run(relay, input=ticks, check=True, timeout=60, env=env)
    for example in help_examples(command):
        local = example.replace("127.0.0.1:6379", f"127.0.0.1:{redis_server.port}")
        local = local.replace("127.0.0.1:9092", kafka_broker.address)
        code, out, err = run_example(local, folder, ticks)
        assert code in (0, None), (example, code, err.decode())
        assert b"rror" not in err and b"Traceback" not in err, (example, err.decode())
        if example.endswith("--func mypkg.enrich:handle") or "jq -c .tick" in example:
            assert out, example  # the stdin examples print what the handler made
