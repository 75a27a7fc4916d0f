"""SIGKILL a relay writing a ``.ss`` file from a clock, then verify, repair and append.

``clock --interval 0 | relay --output file://x.ss/t`` is killed once the file has reached a
size drawn from a fixed seed (so the kill lands at different points of a batch, a beacon, a
frame). Then: what ``verify`` counts as intact is a gap-free run of seqs 0..K-1 carrying ticks
0..K-1; ``verify --repair`` keeps exactly those K; an append of a line is kept after them, and a
writer that numbers its own messages (clock) continues at seq K. Counted:
in (K, intact by verify), out (kept after repair), lost (0), duplicated (0).
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.faults.harness import ENV, STREAMKIT, Cli, message_lines, no_traceback, record

KILLS = 6


def _fields(line: str) -> tuple[str, int, str]:
    prefix, _, payload = line.partition("] ")
    parts = [p.strip() for p in prefix[1:].split("|")]
    return parts[1], int(parts[2]), payload


def _kill_when(path: Path, size: int) -> int:
    """Run clock | relay into ``path``; SIGKILL the relay once the file has ``size`` bytes."""
    clock = subprocess.Popen(
        [*STREAMKIT, "clock", "--stream", "t", "--interval", "0", "--count", "100000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    relay = subprocess.Popen(
        [*STREAMKIT, "relay", "--input", "stdio:///t", "--output", f"file://{path}/t",
         "--beacon-interval", "4096"],
        stdin=clock.stdout,
        stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    assert clock.stdout is not None
    clock.stdout.close()
    deadline = time.monotonic() + 30
    try:
        while not (path.exists() and path.stat().st_size >= size):
            assert relay.poll() is None, "the relay ended before it was killed"
            assert time.monotonic() < deadline, "the file did not grow"
            time.sleep(0.002)
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
    finally:
        relay.kill()
        clock.kill()
        clock.wait(10)
        relay.wait(10)
    assert relay.stderr is not None
    no_traceback(relay.stderr.read().decode(errors="replace"))
    relay.stderr.close()
    return relay.returncode


def test_sigkill_mid_write_then_repair_and_append(cli: Cli, tmp_path: Path) -> None:
    rnd = random.Random("sigkill")
    x_line = tmp_path / "x.txt"
    x_line.write_bytes(b"x\n")
    for n in range(KILLS):
        path = tmp_path / f"kill{n}.ss"
        code = _kill_when(path, rnd.randrange(20_000, 600_000))
        assert code == -signal.SIGKILL

        verified = cli.run("verify", str(path))
        assert not verified.hung and verified.code in (0, 3), verified.stderr
        no_traceback(verified.stderr)
        if verified.code == 3:
            assert "ends in the middle" in verified.stderr, verified.stderr
        counted = re.search(r"^messages: (\d+) ", verified.stdout, re.M)
        assert counted, verified.stdout
        intact = int(counted.group(1))
        assert intact > 0

        decoded = cli.run("decode", str(path))
        assert decoded.code == verified.code
        lines = message_lines(decoded.stdout)
        seqs = [_fields(line)[1] for line in lines]
        assert seqs == list(range(intact)), "seqs are not contiguous"
        assert [_fields(line)[2] for line in lines] == [f'{{"tick": {i}}}' for i in range(intact)]

        repaired = cli.run("verify", "--repair", str(path))
        assert repaired.code == 0, repaired.stderr
        no_traceback(repaired.stderr)
        kept = message_lines(cli.run("decode", str(path)).stdout)
        assert kept == lines, "repair kept something else than verify called intact"
        assert cli.run("verify", str(path)).code == 0

        appended = cli.run("relay", "--output", f"file://{path}/t", stdin=x_line)
        assert appended.code == 0, appended.stderr
        final = message_lines(cli.run("decode", str(path)).stdout)
        assert final[:-1] == kept and _fields(final[-1])[::2] == ("t", "x")
        assert _fields(final[-1])[1] == intact  # a new stdin's seq 0 continues the file's
        # A writer that numbers its own messages continues the file's seqs.
        more = cli.run("clock", "--stream", "t", "--interval", "0", "--count", "3",
                       "--output", f"file://{path}/t")  # fmt: skip
        assert more.code == 0, more.stderr
        final = message_lines(cli.run("decode", str(path)).stdout)
        assert [_fields(line)[1] for line in final[-3:]] == [intact + 1, intact + 2, intact + 3]
        assert cli.run("verify", str(path)).code == 0
        record(
            "SIGKILL mid-write: verify, repair, append",
            kills=1,
            torn_tail=int(verified.code == 3),
            intact=intact,
            kept=len(kept),
            lost=intact - len(kept),
            duplicated=len(seqs) - len(set(seqs)),
            appended_contiguous=1,
            tracebacks=0,
            hangs=0,
        )
