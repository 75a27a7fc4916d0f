"""Damaged copies of a sample ``.ss`` file, drawn from fixed seeds (used by the corrupt-file
tests and by test_regressions.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.faults.harness import Layout

CLASSES = ("bit-flip", "byte-run", "truncation", "zeroed-block", "garbage-appended")
CASES = 10
"""Damaged copies per class."""


@dataclass
class Sample:
    path: Path
    data: bytes
    layout: Layout
    lines: list[str]
    """The intact file's message lines, as decode prints them."""


@dataclass
class Damage:
    kind: str
    data: bytes
    start: int
    """The first damaged byte (truncation: the cut; garbage: the old end of the file)."""
    end: int
    """One past the last damaged byte."""


def _payload_spot(rnd: random.Random, shape: Layout) -> tuple[int, int]:
    """A stretch of one payload: (start, most bytes available there)."""
    frame = rnd.choice(shape.messages)
    start, end = rnd.choice(frame.payload)
    at = rnd.randrange(start, end)
    return at, end - at


def damage(kind: str, rnd: random.Random, sample: Sample, *, payload_only: bool = False) -> Damage:
    """One damaged copy of the sample; ``payload_only`` keeps in-place damage inside payloads."""
    data = bytearray(sample.data)
    size = len(data)
    if payload_only:
        at, room = _payload_spot(rnd, sample.layout)
    else:
        at, room = rnd.randrange(128, size), size
    if kind == "bit-flip":
        data[at] ^= 1 << rnd.randrange(8)
        return Damage(kind, bytes(data), at, at + 1)
    if kind == "byte-run":
        n = min(rnd.randrange(2, 65), room, size - at)
        data[at : at + n] = rnd.randbytes(n)
        return Damage(kind, bytes(data), at, at + n)
    if kind == "zeroed-block":
        n = min(rnd.randrange(16, 513), room, size - at)
        data[at : at + n] = bytes(n)
        return Damage(kind, bytes(data), at, at + n)
    if kind == "truncation":
        cut = rnd.randrange(129, size)
        return Damage(kind, bytes(data[:cut]), cut, size)
    if kind == "garbage-appended":
        extra = rnd.randbytes(rnd.randrange(1, 4000))
        return Damage(kind, bytes(data) + extra, size, size + len(extra))
    raise AssertionError(kind)


def cases(kind: str, sample: Sample, *, payload_only: bool = False) -> Iterator[Damage]:
    rnd = random.Random(f"{kind}-{payload_only}")  # fixed seed per class
    for _ in range(CASES):
        yield damage(kind, rnd, sample, payload_only=payload_only)


def hit_frames(sample: Sample, found: Damage) -> set[int]:
    """Indexes of the messages whose bytes overlap the damaged range."""
    return {
        n
        for n, f in enumerate(sample.layout.messages)
        if f.start < found.end and found.start < f.end
    }
