"""Damaged ``.ss`` files x decode / verify / verify --repair / append, with fixed seeds.

One sample file (600 messages in four stream/shard pairs, a beacon every 1024 bytes, EOS) is
damaged in five ways — bit flips, runs of random bytes, truncation, zeroed blocks, garbage
appended — ten times each. What must hold, counted per case:

* decode prints every message that lies wholly before the first damaged byte, exactly as in the
  intact file; after that only the frame the damage hit may differ (a flip in a seq, timestamp or
  key field, which no checksum covers), and nothing is dropped without exit code 3;
* verify agrees with decode on the count and exits 3 exactly when it finds damage;
* verify --repair keeps exactly what decode printed, backs the damaged file up byte for byte, and
  leaves a file that verifies clean and takes an append;
* append refuses (exit 3, file byte-identical) damage inside the file, and resumes over a cut
  tail. Here the in-place damage is put inside payloads, where the CRC sees it; the same matrix
  with damage anywhere is in test_regressions.py.

Every command: no traceback, no hang (a 20 s limit; a run takes ~40 ms), one line on stderr.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tests.faults.damage import CLASSES, Damage, Sample, cases, hit_frames
from tests.faults.harness import Cli, Result, message_lines, no_traceback, record, run


def check_run(result: Result, codes: tuple[int, ...]) -> None:
    """Finished in time, an allowed exit code, no traceback, at most one line on stderr."""
    assert not result.hung, "hung"
    no_traceback(result.stderr)
    assert result.code in codes, (result.code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) <= 1, result.stderr
    if result.code == 3:
        assert re.search(r"at byte \d+", result.stderr), result.stderr


def check_delivered(sample: Sample, found: Damage, lines: list[str], code: int | None) -> int:
    """decode's rules (module doc); returns how many lines differ from the intact file."""
    intact = sample.layout.intact_before(found.start)
    assert lines[:intact] == sample.lines[:intact], "a message before the damage was lost"
    assert len(lines) <= len(sample.lines)
    differing = {n for n, line in enumerate(lines) if line != sample.lines[n]}
    assert differing <= hit_frames(sample, found), "a message away from the damage changed"
    if found.kind == "truncation":
        assert len(lines) == intact
    elif code == 0:
        assert len(lines) == len(sample.lines), "messages dropped without an error"
    return len(differing)


def write(tmp_path: Path, found: Damage, n: int) -> Path:
    path = tmp_path / f"case{n}.ss"
    path.write_bytes(found.data)
    return path


@pytest.mark.parametrize("kind", CLASSES)
def test_decode_and_verify_keep_everything_before_the_damage(
    kind: str, sample: Sample, cli: Cli, tmp_path: Path
) -> None:
    for n, found in enumerate(cases(kind, sample)):
        path = write(tmp_path, found, n)
        decoded = cli.run("decode", str(path))
        check_run(decoded, (0, 3))
        lines = message_lines(decoded.stdout)
        changed = check_delivered(sample, found, lines, decoded.code)

        verified = cli.run("verify", str(path))
        check_run(verified, (0, 3))
        counted = re.search(r"^messages: (\d+) ", verified.stdout, re.M)
        assert counted and int(counted.group(1)) == len(lines), verified.stdout
        if kind == "garbage-appended":
            assert (decoded.code, verified.code) == (0, 3)  # readers stop at EOS; verify says so
        else:
            assert verified.code == decoded.code
        assert path.read_bytes() == found.data  # reading never writes
        intact = sample.layout.intact_before(found.start)
        record(
            f"corrupt/{kind}: decode+verify",
            files=1,
            messages=len(sample.lines),
            before_damage=intact,
            delivered=len(lines),
            lost_before_damage=0,
            changed_by_damage=changed,
            exit3=int(verified.code == 3),
            tracebacks=0,
            hangs=0,
        )


@pytest.mark.parametrize("kind", CLASSES)
def test_repair_keeps_what_decode_gives_and_takes_an_append(
    kind: str, sample: Sample, cli: Cli, tmp_path: Path, x_line: Path
) -> None:
    for n, found in enumerate(cases(kind, sample)):
        path = write(tmp_path, found, n)
        before = message_lines(cli.run("decode", str(path)).stdout)
        repaired = cli.run("verify", "--repair", str(path))
        check_run(repaired, (0,))
        backups = sorted(tmp_path.glob(f"case{n}.ss.bak*"))
        if "nothing to repair" in repaired.stdout:
            assert not backups and path.read_bytes() == found.data
        else:
            assert "repaired: backup written to" in repaired.stdout, repaired.stdout
            assert len(backups) == 1 and backups[0].read_bytes() == found.data
        after = cli.run("decode", str(path))
        check_run(after, (0,))
        kept = message_lines(after.stdout)
        assert kept == before, "repair kept something else than decode delivered"
        check_delivered(sample, found, kept, None)
        assert cli.run("verify", str(path)).code == 0

        appended = cli.run("relay", "--output", f"file://{path}/a", stdin=x_line)
        check_run(appended, (0,))
        final = message_lines(cli.run("decode", str(path)).stdout)
        assert final[:-1] == kept and final[-1].endswith("] x") and "| a |" in final[-1]
        intact = sample.layout.intact_before(found.start)
        record(
            f"corrupt/{kind}: repair+append",
            files=1,
            messages=len(sample.lines),
            before_damage=intact,
            kept=len(kept),
            lost_before_damage=0,
            appended=1,
            tracebacks=0,
            hangs=0,
        )


@pytest.fixture
def x_line(tmp_path: Path) -> Path:
    path = tmp_path / "x.txt"
    path.write_bytes(b"x\n")
    return path


@pytest.mark.parametrize("kind", CLASSES)
def test_append_refuses_damage_and_resumes_over_a_cut_tail(
    kind: str, sample: Sample, cli: Cli, tmp_path: Path, x_line: Path
) -> None:
    """In-place damage inside payloads (the CRC sees it); anywhere: test_regressions.py."""
    for n, found in enumerate(cases(kind, sample, payload_only=True)):
        path = write(tmp_path, found, n)
        intact = sample.layout.intact_before(found.start)
        appended = cli.run("relay", "--output", f"file://{path}/a", stdin=x_line)
        if kind == "truncation":
            check_run(appended, (0,))
            final = message_lines(cli.run("decode", str(path)).stdout)
            assert final[:-1] == sample.lines[:intact] and final[-1].endswith("] x")
            kept = intact
        else:
            check_run(appended, (3,))
            assert "verify --repair" in appended.stderr
            assert path.read_bytes() == found.data, "a refused append changed the file"
            assert not list(tmp_path.glob(f"case{n}.ss.bak*"))
            kept = len(message_lines(cli.run("decode", str(path)).stdout))
            assert kept >= intact
        record(
            f"corrupt/{kind}: append",
            files=1,
            messages=len(sample.lines),
            before_damage=intact,
            kept=kept,
            refused=int(appended.code == 3),
            tracebacks=0,
            hangs=0,
        )


def test_header_damage_is_reported_not_misread(sample: Sample, cli: Cli, tmp_path: Path) -> None:
    """A flipped bit in each of the header's fields: decode and verify still never print a
    message that is not in the file, and say exit 3 when they cannot trust what follows."""
    rnd = random.Random("header")
    name_len = sample.data[3]
    spots = [0, 1, 2, 3, 5, 4 + name_len, 4 + name_len + 8, 4 + name_len + 10,
             4 + name_len + 11, 100, 127]  # fmt: skip
    for n, at in enumerate(spots):
        data = bytearray(sample.data)
        data[at] ^= 1 << rnd.randrange(8)
        found = Damage("header", bytes(data), at, at + 1)
        path = write(tmp_path, found, n)
        decoded = cli.run("decode", str(path))
        check_run(decoded, (0, 3))
        lines = message_lines(decoded.stdout)
        assert lines == sample.lines[: len(lines)]
        if decoded.code == 0:
            assert len(lines) == len(sample.lines)
        verified = cli.run("verify", str(path))
        check_run(verified, (0, 3))
        record("corrupt/header bit-flip: decode+verify", files=1, exit3=int(decoded.code == 3),
               delivered=len(lines), tracebacks=0, hangs=0)  # fmt: skip


@pytest.mark.parametrize("kind", CLASSES)
def test_a_fresh_interpreter_agrees(kind: str, sample: Sample, cli: Cli, tmp_path: Path) -> None:
    """The forked runner is the real program: the same case in a new process, same result."""
    found = next(cases(kind, sample))
    path = write(tmp_path, found, 0)
    fresh, forked = run("decode", str(path)), cli.run("decode", str(path))
    assert (fresh.code, fresh.stdout, fresh.stderr) == (forked.code, forked.stdout, forked.stderr)
