"""The compiled ``.ss`` decoder against the pure one on random files, damaged and cut anywhere.

Same items (messages, beacons, header), same error text and offset, same ``tell()``,
``truncated`` and last-message offsets, in any chunking, with and without verification.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import FileFormatError
from streamkit.formats import ss as pure
from streamkit.formats import ss_compiled as compiled
from streamkit.message import INTERNAL_KEY, Message

KEYS = st.sampled_from(["tick", "a", "k.1", "x" * 200])
FRAMES = st.lists(
    st.tuples(
        KEYS,
        st.integers(0, 3),
        st.integers(0, 2**64 - 1),
        st.integers(0, pure.MAX_TIMESTAMP),
        st.binary(max_size=300),
    ),
    max_size=40,
)


def make_file(frames: list[Any], interval: int, eos: bool) -> bytes:
    encoder = pure.SsEncoder(interval)
    data = encoder.header("d.ss", 1_795_417_200_000)
    for start in range(0, len(frames), 7):
        data += encoder.encode(frames[start : start + 7])
    if eos:
        data += encoder.eos(1_795_417_200_999)
        data += encoder.encode([("after", 0, 1, 0, b"never read")])
    return data


def run(cls: type[pure.SsDecoder], data: bytes, chunk: int, verify: bool) -> Any:
    decoder = cls(source="d.ss", verify=verify)
    items: list[Any] = []
    error = None
    try:
        for start in range(0, len(data), chunk):
            decoder.feed(data[start : start + chunk])
            while got := decoder.read(5):
                items += got
        decoder.eof()
        while got := decoder.read(5):
            items += got
    except FileFormatError as exc:
        error = (str(exc), exc.offset)
        try:
            decoder.read()
        except FileFormatError as again:  # sticky
            assert (str(again), again.offset) == error
    return (
        items,
        error,
        decoder.tell(),
        decoder.truncated,
        decoder.ended,
        decoder.last_message_start,
        decoder.last_message_end,
    )


@settings(max_examples=400, deadline=None)
@given(
    FRAMES,
    st.sampled_from([128, 300, 1024, 1 << 20]),
    st.booleans(),
    st.integers(1, 5000),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.booleans(),
)
def test_decoders_agree_on_damaged_and_cut_files(
    frames: list[Any],
    interval: int,
    eos: bool,
    chunk: int,
    flips: list[tuple[int, int]],
    cut: int | None,
    verify: bool,
) -> None:
    data = bytearray(make_file(frames, interval, eos))
    for at, value in flips:
        if len(data) > pure.HEADER_SIZE:
            data[pure.HEADER_SIZE + at % (len(data) - pure.HEADER_SIZE)] = value
    if cut is not None:
        del data[cut % (len(data) + 1) :]
    expected = run(pure.SsDecoder, bytes(data), chunk, verify)
    assert run(compiled.SsDecoder, bytes(data), chunk, verify) == expected


def test_random_bytes_after_a_header_never_crash() -> None:
    import random

    rnd = random.Random(7)
    header = pure.encode_header("r.ss", 0, 256)
    for _ in range(300):
        data = header + rnd.randbytes(rnd.randrange(0, 3000))
        assert run(compiled.SsDecoder, data, 97, True) == run(pure.SsDecoder, data, 97, True)


def test_eos_ends_decoding_in_both() -> None:
    data = make_file([("tick", 0, 1, 5, b"x")], 1 << 20, eos=True)
    result = run(compiled.SsDecoder, data, 1 << 16, True)
    assert result == run(pure.SsDecoder, data, 1 << 16, True)
    found = [m for m in result[0] if isinstance(m, Message)]
    assert [m.stream_key for m in found] == ["tick", INTERNAL_KEY]
    assert result[4] is True


MESSAGES = st.lists(
    st.builds(
        Message,
        st.sampled_from(["tick", "a", "k.1", "bad key", ""]),
        st.sampled_from([0, 1, 2, 2**64 - 1, 2**64, -1]),
        st.sampled_from([0, 5, 2**64 - 1, 2**64, -1]),
        st.sampled_from([0, 1_795_417_200_123, pure.MAX_TIMESTAMP, pure.MAX_TIMESTAMP + 1, -1]),
        st.binary(max_size=300),
    ),
    max_size=60,
)


def encoded(
    cls: type[pure.SsEncoder], batches: list[list[Message]], key: Any, interval: int
) -> Any:
    encoder = cls(interval)
    data = encoder.header("e.ss", 0)
    for batch in batches:
        data += encoder.encode_messages(batch, key)
        if encoder.failed is not None:
            break
    streams = {k: (v.seq, v.timestamp, v.running) for k, v in encoder.streams.items()}
    return data, str(encoder.failed), streams, encoder.position, encoder.markers_written


@settings(max_examples=400, deadline=None)
@given(
    MESSAGES,
    st.sampled_from([None, "renamed", "bad key"]),
    st.sampled_from([128, 300, 1024, 1 << 20]),
    st.integers(1, 30),
)
def test_encoders_write_the_same_bytes_state_and_failure(
    messages: list[Message], key: str | None, interval: int, batch: int
) -> None:
    batches = [messages[i : i + batch] for i in range(0, len(messages), batch)]
    expected = encoded(pure.SsEncoder, batches, key, interval)
    assert encoded(compiled.SsEncoder, batches, key, interval) == expected
