"""Read a relay's stdout slowly, send it a signal part-way, and count what came before and after.

Used by the SIGTERM tests: a consumer that keeps fetching after the signal shows up as many lines
written after it, and as a late exit.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass

from tests.cli.processes import reaped

__all__ = ["SlowRead", "read_slowly"]


@dataclass
class SlowRead:
    returncode: int
    lines: list[bytes]
    at_signal: int
    """Lines read when the signal was sent."""
    exit_seconds: float
    """From the signal to the process's exit."""
    stderr: str


def read_slowly(
    proc: subprocess.Popen[bytes],
    *,
    lines_per_second: float = 20_000,
    signal_after: int = 20_000,
    signal_number: int = signal.SIGTERM,
    timeout: float = 60,
) -> SlowRead:
    """Read ``proc``'s stdout at ``lines_per_second``; signal it after ``signal_after`` lines."""
    assert proc.stdout is not None and proc.stderr is not None
    data = bytearray()
    count = 0
    at_signal = -1
    sent_at = 0.0
    start = time.monotonic()
    with reaped(proc):
        while True:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break
            data += chunk
            count += chunk.count(b"\n")
            ahead = count / lines_per_second - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            if at_signal < 0 and count >= signal_after:
                proc.send_signal(signal_number)
                at_signal, sent_at = count, time.monotonic()
            assert time.monotonic() - start < timeout, "the relay did not finish in time"
        proc.wait(timeout)
    exited = time.monotonic()
    return SlowRead(
        proc.returncode,
        bytes(data).splitlines(),
        at_signal,
        exited - sent_at if at_signal >= 0 else 0.0,
        proc.stderr.read().decode(errors="replace"),
    )
