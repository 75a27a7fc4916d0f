"""Running a CLI program as a subprocess in a test: never left behind, stopped by a signal."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def reaped(proc: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
    """``proc``, killed and waited for on the way out if it is still running (a failed
    assertion or a timeout inside must not leave a relay or a server behind)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stopped_by(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20
) -> tuple[Any, Any]:
    """Sends ``sig`` and returns what ``proc`` wrote until it exited: (stdout, stderr)."""
    proc.send_signal(sig)
    return proc.communicate(timeout=timeout)
