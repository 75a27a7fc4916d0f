"""The line parser under random bytes: ``relay --on-invalid fail|skip|raw`` with fixed seeds.

Inputs mix lines known to be valid (streamkit's canonical lines and bare payloads) with lines
known to be invalid (a byte that is never UTF-8, an impossible timestamp, too many prefix parts);
a second input is pure random bytes, whose validity only the parser decides. What must hold:
no traceback, no hang; ``skip`` writes exactly the valid lines and counts the others; ``fail``
writes exactly the valid lines before the first invalid one and names it (exit 3); ``raw``
writes every line, an invalid one as its own bytes.
"""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path

import pytest

from tests.faults.harness import Cli, no_traceback, record, run, tally

KEYS = ("alpha", "b.2", "c_3", "d-4")
PRINTABLE = bytes(range(0x20, 0x7F))


def valid_line(rnd: random.Random, n: int) -> tuple[bytes, str]:
    """A valid line and what it must come out as (key and payload, or the exact line)."""
    words = bytes(rnd.choices(PRINTABLE, k=rnd.randrange(0, 60))).decode()
    payload = f"v{n} {words}".rstrip()
    if rnd.random() < 0.5:
        ms = rnd.randrange(1000)
        line = (
            f"[2026-11-23T07:00:{n % 60:02}.{ms:03} | {rnd.choice(KEYS)} | {n} | {n % 3}] {payload}"
        )
        return line.encode(), line
    return payload.encode(), f"broadcast\t{payload}"


def invalid_line(rnd: random.Random) -> bytes:
    kind = rnd.randrange(3)
    noise = bytes(rnd.choices([b for b in range(256) if b not in b"\r\n"], k=rnd.randrange(0, 80)))
    if kind == 0:  # never UTF-8, wherever it sits
        at = rnd.randrange(len(noise) + 1)
        return noise[:at] + b"\xff" + noise[at:]
    text = bytes(rnd.choices(PRINTABLE, k=rnd.randrange(0, 40)))
    if kind == 1:
        return b"[2026-13-45T07:00:00 | alpha] " + text
    return b"[alpha | 1 | 2 | 3 | 4] " + text


def mixed_input(
    seed: int, lines: int, invalid_share: float
) -> tuple[list[bytes], list[bool], list[str]]:
    rnd = random.Random(seed)
    raw: list[bytes] = []
    valid: list[bool] = []
    expected: list[str] = []
    for n in range(lines):
        if rnd.random() < invalid_share:
            raw.append(invalid_line(rnd))
            valid.append(False)
        else:
            line, want = valid_line(rnd, n)
            raw.append(line)
            valid.append(True)
            expected.append(want)
    return raw, valid, expected


def as_expected(line: str) -> str:
    """An output line in the form ``valid_line`` predicts."""
    prefix, _, payload = line.partition("] ")
    key = prefix[1:].split(" | ")[1]
    if key == "broadcast":
        return f"broadcast\t{payload}"
    return line


def test_skip_writes_exactly_the_valid_lines() -> None:
    raw, valid, expected = mixed_input(seed=7, lines=20_000, invalid_share=0.3)
    result = run("relay", "--on-invalid", "skip", stdin=b"\n".join(raw) + b"\n", timeout=60)
    assert result.code == 0, result.stderr[-2000:]
    no_traceback(result.stderr)
    got = [as_expected(line) for line in result.lines()]
    invalid = valid.count(False)
    assert got == expected
    assert f"{invalid} invalid lines skipped" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "skipped invalid line" in line]
    assert len(warnings) == invalid
    counts = tally(expected, got)
    assert (counts.lost, counts.duplicated, counts.invented) == (0, 0, 0)
    record("line parser: skip", lines=len(raw), valid=len(expected), out=len(got),
           skipped=invalid, lost=0, duplicated=0, tracebacks=0, hangs=0)  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_fail_writes_everything_before_the_first_invalid_line(
    seed: int, cli: Cli, tmp_path: Path
) -> None:
    raw, valid, expected = mixed_input(
        seed=100 + seed, lines=3000, invalid_share=0.002 * (seed + 1)
    )
    first_bad = valid.index(False)
    source = tmp_path / "in.txt"
    source.write_bytes(b"\n".join(raw) + b"\n")
    result = cli.run("relay", "--on-invalid", "fail", stdin=source)
    assert result.code == 3, result.stderr
    no_traceback(result.stderr)
    assert result.stderr.count("\n") == 1 and f"<stdin>:{first_bad + 1}:" in result.stderr
    got = [as_expected(line) for line in result.lines()]
    assert got == expected[:first_bad]
    record("line parser: fail", lines=len(raw), before_first_invalid=first_bad, out=len(got),
           lost=0, tracebacks=0, hangs=0)  # fmt: skip


def test_raw_writes_every_line(cli: Cli, tmp_path: Path) -> None:
    raw, valid, _ = mixed_input(seed=11, lines=5000, invalid_share=0.3)
    source = tmp_path / "in.txt"
    source.write_bytes(b"\n".join(raw) + b"\n")
    result = cli.run("relay", "--on-invalid", "raw", "--output-format", "json", stdin=source)
    assert result.code == 0, result.stderr
    no_traceback(result.stderr)
    out = [json.loads(line) for line in result.lines()]
    assert len(out) == len(raw)
    for line, ok, record_ in zip(raw, valid, out):
        if "payload_base64" in record_:
            payload = base64.b64decode(record_["payload_base64"])
        elif isinstance(record_["payload"], str):
            payload = record_["payload"].encode()
        else:
            payload = json.dumps(record_["payload"]).encode()
        if not ok:
            assert record_["topic"] == "broadcast" and payload == line
        else:
            assert line.endswith(payload)
    record("line parser: raw", lines=len(raw), invalid=valid.count(False), out=len(out),
           lost=0, tracebacks=0, hangs=0)  # fmt: skip


@pytest.mark.parametrize("policy", ["fail", "skip", "raw"])
def test_pure_random_bytes(policy: str, cli: Cli, tmp_path: Path) -> None:
    rnd = random.Random(f"random-{policy}")
    any_byte = [b for b in range(256) if b not in b"\r\n"]
    ascii_ = [b for b in range(1, 128) if b not in b"\r\n"]
    # Some lines start with '[' and a plausible prefix, so the prefix parser gets exercised too.
    starts = [b"", b"[", b"[2026-11-23T07:00:00 | ", b"[a | ", b"[1 | 2] "]
    lines = [
        rnd.choice(starts)
        + bytes(rnd.choices(ascii_ if rnd.random() < 0.9 else any_byte, k=rnd.randrange(1, 120)))
        for _ in range(3000)
    ]
    source = tmp_path / "in.bin"
    source.write_bytes(b"\n".join(lines) + b"\n")
    args = ["relay", "--on-invalid", policy, "--output-format", "json"]
    result = cli.run(*args, stdin=source)
    assert not result.hung
    no_traceback(result.stderr)
    out = len(result.lines())
    if policy == "fail":
        assert result.code in (0, 3)
        if result.code == 3:
            bad = re.search(r"<stdin>:(\d+):", result.stderr)
            assert bad and out == int(bad.group(1)) - 1, result.stderr
        else:
            assert out == len(lines)
    elif policy == "skip":
        assert result.code == 0, result.stderr
        skipped = re.search(r"(\d+) invalid lines skipped", result.stderr)
        assert out + (int(skipped.group(1)) if skipped else 0) == len(lines)
    else:
        assert result.code == 0, result.stderr
        assert out == len(lines)
    record(f"line parser: random bytes, {policy}", lines=len(lines), out=out,
           exit3=int(result.code == 3), tracebacks=0, hangs=0)  # fmt: skip
