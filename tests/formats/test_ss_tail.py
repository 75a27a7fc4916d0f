"""A frame cut off by the end of the data: a crashed writer's torn tail, or damage in disguise.

Only an item that really is the last one may be called a half-written tail (``truncated``), since
appending and repairing cut such a tail off. A size field that claims more than the file holds
while intact frames, a beacon or an impossible head say otherwise is damage.
"""

from __future__ import annotations

import pytest

from streamkit.errors import FileFormatError
from streamkit.formats.ss import HEADER_SIZE, Message, SsDecoder, SsEncoder

FRAME = 1 + 1 + 28 + 8 + 3  # key "k", 8-byte payload


def encode(count: int, interval: int = 1 << 20, eos: bool = False) -> bytes:
    encoder = SsEncoder(interval)
    data = encoder.header("t.ss", 0)
    data += encoder.encode([("k", 0, i, 1000 + i, b"tick-%03d" % i) for i in range(1, count + 1)])
    if eos:
        data += encoder.eos(10**6)
    return data


def read_all(data: bytes) -> tuple[list[Message], FileFormatError, SsDecoder]:
    decoder = SsDecoder(source="t.ss")
    decoder.feed(data)
    decoder.eof()
    got: list[Message] = []
    with pytest.raises(FileFormatError) as info:
        while True:
            items = decoder.read(1000)
            if not items:
                break
            got.extend(m for m in items if isinstance(m, Message))
    return got, info.value, decoder


def flip(data: bytes, at: int, bit: int) -> bytes:
    return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]


def test_a_size_field_claiming_past_the_end_with_frames_behind_it_is_damage() -> None:
    data = encode(200)
    size_at = HEADER_SIZE + 1 + 1 + 24  # the first frame's payload size
    got, error, decoder = read_all(flip(data, size_at + 1, 4))  # +1 MiB
    assert got == []
    assert not decoder.truncated  # an append must not cut this off as a crashed writer's tail
    assert error.offset == HEADER_SIZE
    assert "size field is damaged" in error.what
    assert f"intact message (k:0:2) starts at byte {HEADER_SIZE + FRAME}" in error.what


def test_damage_in_the_last_frame_is_found_through_the_eos_behind_it() -> None:
    data = encode(20, eos=True)
    last = HEADER_SIZE + 19 * FRAME
    got, error, decoder = read_all(flip(data, last + 26 + 2, 0))  # +256 bytes
    assert [m.seq for m in got] == list(range(1, 20))
    assert not decoder.truncated and error.offset == last
    assert "SEA_STREAMER_INTERNAL:0:0" in error.what


def test_a_beacon_inside_the_claimed_frame_that_disagrees_is_damage() -> None:
    data = encode(40, interval=1024)  # frames cross the beacon at 1024
    frame = (1024 - HEADER_SIZE) // FRAME  # the frame that reaches 1024
    start = HEADER_SIZE + frame * FRAME
    cut = flip(data, start + 26 + 2, 2)  # size + 1024: now it ends past the file
    got, error, decoder = read_all(cut[: start + 1500])
    assert len(got) == frame and not decoder.truncated
    assert error.offset == start and "beacon at byte 1024" in error.what


@pytest.mark.parametrize(
    ("tail", "what"),
    [(bytes(20), "empty stream key"), (b"\x03a b" + bytes(20), "invalid stream key")],
)
def test_an_impossible_head_is_not_a_torn_frame(tail: bytes, what: str) -> None:
    data = encode(3) + tail
    got, error, decoder = read_all(data)
    assert [m.seq for m in got] == [1, 2, 3]
    assert not decoder.truncated and what in error.what
    assert error.offset == HEADER_SIZE + 3 * FRAME


@pytest.mark.parametrize("cut", [1, 5, 20, 35, FRAME - 1])
def test_a_really_torn_last_frame_is_still_a_tail(cut: int) -> None:
    data = encode(10)
    got, error, decoder = read_all(data[: len(data) - FRAME + cut])
    assert [m.seq for m in got] == list(range(1, 10))
    assert decoder.truncated and "middle of a message" in error.what
    assert error.offset == len(data) - FRAME


def test_a_torn_frame_whose_payload_happens_to_hold_a_key_prefix_is_still_a_tail() -> None:
    encoder = SsEncoder(1 << 20)
    data = encoder.header("t.ss", 0) + encoder.encode([("k", 0, 1, 5, b"\x01k" + b"z" * 300)])
    got, error, decoder = read_all(data[:-100])
    assert got == [] and decoder.truncated and "middle of a message" in error.what
