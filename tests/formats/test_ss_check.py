"""What the CRC does not cover (issue 15.8): seq, timestamp, key and shard fields, per stream."""

from __future__ import annotations

import pytest

from streamkit.formats.ss import HEADER_SIZE, Item, SsDecoder, SsEncoder
from streamkit.formats.ss_check import SequenceChecker

T0 = 1_796_000_000_000
FRAME = 1 + 1 + 28 + 8 + 3  # key "k", 8-byte payload


def encode(count: int, interval: int = 1 << 20, step_ms: int = 10) -> bytes:
    encoder = SsEncoder(interval)
    data = encoder.header("c.ss", 0)
    frames = [("k", 0, i, T0 + i * step_ms, b"tick-%03d" % i) for i in range(1, count + 1)]
    return data + encoder.encode(frames) + encoder.eos(T0 + 10**6)


def check(data: bytes, interval: int = 1 << 20) -> list[str]:
    decoder = SsDecoder(source="c.ss")
    decoder.feed(data)
    decoder.eof()
    items: list[Item] = []
    while batch := decoder.read(37):  # odd batches: offsets carry over between them
        items.extend(batch)
    checker = SequenceChecker(interval)
    position = 0
    for i in range(0, len(items), 37):
        position = checker.add(items[i : i + 37], position)
    return checker.warnings


def field_at(n: int, field: str) -> int:
    """Offset of a field of message n (1-based) in a file of FRAME-sized frames, no beacons."""
    start = HEADER_SIZE + (n - 1) * FRAME
    return start + {"key": 1, "shard": 2, "seq": 10, "ts": 18}[field]


def flip(data: bytes, at: int, bit: int) -> bytes:
    return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]


def test_a_sound_file_gives_no_warnings() -> None:
    assert check(encode(500)) == []
    assert check(encode(500, interval=1024), 1024) == []


@pytest.mark.parametrize("bit", [0, 3, 17, 62])
def test_a_flipped_seq_bit_is_named_with_its_offset(bit: int) -> None:
    warnings = check(flip(encode(50), field_at(20, "seq") + 7 - bit // 8, bit % 8))
    assert warnings, bit
    start = HEADER_SIZE + 19 * FRAME
    assert any(f"at byte {start}" in w or f"at byte {start + FRAME}" in w for w in warnings)
    assert all("seq" in w for w in warnings)


@pytest.mark.parametrize("bit", [12, 30, 45])
def test_a_flipped_timestamp_bit_is_named(bit: int) -> None:
    warnings = check(flip(encode(50), field_at(20, "ts") + 7 - bit // 8, bit % 8))
    start = HEADER_SIZE + 19 * FRAME
    assert [w for w in warnings if f"at byte {start}" in w and "timestamp" in w], warnings


def test_a_timestamp_after_the_next_beacons_marker_is_named() -> None:
    data = encode(60, interval=1024)
    # Message 5 lies before the first beacon (at 1024), which holds the stream's highest
    # timestamp so far (message 22's, T0 + 220 ms). +256 ms is less than the outlier rule
    # notices, but more than the beacon allows.
    warnings = check(flip(data, field_at(5, "ts") + 6, 0), 1024)
    assert any("after the highest the next beacon (beacon 1 at byte 1024)" in w for w in warnings)


@pytest.mark.parametrize("field", ["shard", "key"])
def test_a_flipped_key_or_shard_is_missing_from_the_next_beacon(field: str) -> None:
    data = encode(200, interval=4096)  # room for 7 markers: a beacon lists every stream
    at = field_at(5, field) + (7 if field == "shard" else 0)
    warnings = check(flip(data, at, 0), 4096)  # shard 0 -> 1, key "k" -> "j"
    start = HEADER_SIZE + 4 * FRAME
    assert any(
        f"at byte {start}" in w and "lists every stream written so far" in w for w in warnings
    ), warnings
    assert any("seq jumps from 4" in w for w in warnings)  # its stream lost message 5


def test_streams_with_gaps_by_design_are_not_held_to_continuity() -> None:
    encoder = SsEncoder(1 << 20)
    seqs = [(T0 + i) << 16 | (i % 3) for i in range(100)]  # Redis-derived: ms << 16 | n
    frames = [("r", 0, s, T0 + i, b"x") for i, s in enumerate(seqs)]
    data = encoder.header("r.ss", 0) + encoder.encode(frames)
    assert check(data) == []


def test_warnings_are_capped_and_counted() -> None:
    encoder = SsEncoder(1 << 20)
    frames = [("k", 0, 5, T0, b"x") for _ in range(300)]  # the same seq over and over
    data = encoder.header("r.ss", 0) + encoder.encode(frames)
    decoder = SsDecoder()
    decoder.feed(data)
    checker = SequenceChecker(1 << 20, limit=10)
    checker.add(decoder.read(10**6), 0)
    assert len(checker.warnings) == 10 and checker.dropped == 289
