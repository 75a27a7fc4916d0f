"""``streamkit processor`` against a private redis-server: commits follow writes across restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_processor import ENV, HANDLERS, parse
from tests.servers.redis_server import RedisServer

COMMAND = [sys.executable, "-m", "streamkit.cli.main", "processor"]


@pytest.fixture()
def handlers(tmp_path: Path) -> Path:
    (tmp_path / "sk_handlers.py").write_text(HANDLERS)
    return tmp_path


def run(
    handlers: Path, *args: str, stdin: bytes = b"", env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, "-I", str(handlers), *args],
        input=stdin, capture_output=True, timeout=60, env=env,
    )  # fmt: skip


def test_resumable_processor_restarts_after_a_failure_without_loss_or_repeats(
    redis_server: RedisServer, unique_key: str, handlers: Path
) -> None:
    url = redis_server.stream_url(unique_key)
    fill = run(handlers, "--input", "stdio:///x", "--output", url, "--func", "sk_handlers:slow",
               stdin=b"".join(b"n%d\n" % i for i in range(200)))  # fmt: skip
    assert fill.returncode == 0, fill.stderr
    common = ("--input", url, "--output", "stdio:///out", "--func", "sk_handlers:fail_150_once",
              "--mode", "resumable", "--group", "g", "--offset", "start", "-e",
              "--workers", "3")  # fmt: skip
    first = run(handlers, *common, env={**ENV, "SK_FAIL": "1"})
    assert first.returncode == 1, first.stderr
    assert b"poison" in first.stderr
    second = run(handlers, *common)
    assert second.returncode == 0, second.stderr
    got = [r[3] for r in parse(first.stdout)] + [r[3] for r in parse(second.stdout)]
    assert got == [b"N%d" % i for i in range(200)]  # nothing lost, nothing written twice
    assert redis_server.cli("XPENDING", unique_key, "g").split()[0] == "0"  # all acked
