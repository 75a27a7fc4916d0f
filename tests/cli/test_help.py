"""Every command explains itself: ``-h`` and ``--help`` work and show a runnable example."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["clock", "relay", "processor", "decode", "verify", "stat", "collect"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_shows_usage_and_an_example(command: str, flag: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", command, flag], capture_output=True, timeout=60
    )
    assert done.returncode == 0
    text = done.stdout.decode()
    assert text.startswith(f"Usage: streamkit {command}")
    assert "Examples:" in text
    assert f"streamkit {command}" in text.split("Examples:", 1)[1]
    assert done.stderr == b""


def test_group_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "--help"], capture_output=True, timeout=60
    )
    assert done.returncode == 0
    listed = done.stdout.decode().split("Commands:", 1)[1]
    for command in COMMANDS:
        assert command in listed
