"""The .ss codec: the fixture's facts, byte-exact re-encoding, beacons, splicing, damage."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import FileFormatError, UsageError
from streamkit.formats.crc16 import CRC16_INIT, crc16, running_update
from streamkit.formats.ss import (
    HEADER_SIZE,
    MAX_TIMESTAMP,
    NEED_DATA,
    Beacon,
    FileHeader,
    Item,
    SsDecoder,
    SsEncoder,
    decode_header,
    encode_header,
    fit_file_name,
    is_eos,
    num_markers,
)
from streamkit.message import INTERNAL_KEY, Message
from streamkit.timeutil import format_ms

# A copy of shared/fixtures/sample-1.ss, a file written by SeaStreamer itself.
SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample-1.ss"

Frame = tuple[str, int, int, int, bytes]


# Every test here runs against the pure and the compiled decoder (tests/formats/conftest.py).
pytestmark = pytest.mark.usefixtures("ss_codec")


def decode_all(data: bytes, chunk: int | None = None) -> list[Item]:
    decoder = SsDecoder(source="t.ss")
    items: list[Item] = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        decoder.feed(data[i : i + step])
        items.extend(decoder.read(10**9))
    decoder.eof()
    items.extend(decoder.read(10**9))
    return items


def messages(items: list[Item]) -> list[Message]:
    return [m for m in items if isinstance(m, Message)]


def as_frames(items: list[Item]) -> list[Frame]:
    return [(m.stream_key, m.shard_id, m.seq, m.timestamp, m.payload) for m in messages(items)]


# ---- sample-1.ss, written by SeaStreamer -----------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> bytes:
    return SAMPLE.read_bytes()


def test_sample_header(sample: bytes) -> None:
    assert len(sample) == 3481
    header = decode_all(sample)[0]
    assert header == FileHeader("vec_map-1694767177436.firedbg.ss", 1694767177437, 1048576)
    assert format_ms(header.created_at) == "2023-09-15T08:39:37.437"


def test_sample_frames(sample: bytes) -> None:
    items = decode_all(sample)
    msgs = messages(items)
    assert len(msgs) == 28
    assert not [i for i in items if isinstance(i, Beacon)]
    counts: dict[str, int] = {}
    for m in msgs:
        counts[m.stream_key] = counts.get(m.stream_key, 0) + 1
    assert counts == {"file": 1, "breakpoint": 4, "event": 22, INTERNAL_KEY: 1}
    assert {m.shard_id for m in msgs} == {0}
    assert [m.seq for m in msgs if m.stream_key == "event"] == list(range(1, 23))
    assert [m.seq for m in msgs if m.stream_key == "breakpoint"] == [1, 2, 3, 4]
    order = [(m.stream_key, m.seq) for m in msgs]
    assert order[:6] == [
        ("file", 1),
        ("breakpoint", 1),
        ("breakpoint", 2),
        ("breakpoint", 3),
        ("event", 1),
        ("breakpoint", 4),
    ]
    assert order[6:27] == [("event", n) for n in range(2, 23)]
    first, last = msgs[0], msgs[-1]
    assert format_ms(first.timestamp) == "2023-09-15T08:39:37.912"
    assert first.payload.startswith(b'{"id":1,"path":"testcases/vec_map.rs"')
    assert crc16(first.payload) == 0xEFF5
    assert is_eos(last) and (last.stream_key, last.seq, last.timestamp) == (
        INTERNAL_KEY,
        0,
        1694767178569,
    )
    assert crc16(last.payload) == 0xED7C
    events = [m.timestamp for m in msgs if m.stream_key == "event"]
    assert format_ms(events[0]) == "2023-09-15T08:39:38.489"
    assert format_ms(events[-1]) == "2023-09-15T08:39:38.564"
    assert sum(len(m.payload) for m in msgs) == 2282
    texts = [m.payload.decode("utf-8") for m in msgs]  # none is binary
    valid_json = 0
    for text in texts:
        try:
            json.loads(text)
            valid_json += 1
        except ValueError:
            pass
    assert valid_json == 5


def test_sample_running_checksums_and_reencoding(sample: bytes) -> None:
    items = decode_all(sample)
    header = items[0]
    assert isinstance(header, FileHeader)
    encoder = SsEncoder(header.beacon_interval)
    out = encoder.header(header.file_name, header.created_at) + encoder.encode_messages(
        messages(items)
    )
    assert out == sample
    running = {key: state.running for (key, _), state in encoder.streams.items()}
    assert running == {"file": 0x0327, "breakpoint": 0x5DF3, "event": 0xD1D3, INTERNAL_KEY: 0x8ED6}


def test_decoder_stops_at_eos(sample: bytes) -> None:
    decoder = SsDecoder()
    decoder.feed(sample + b"garbage after the end")
    items = list(decoder)
    assert is_eos(messages(items)[-1])
    assert decoder.ended and decoder.tell() == len(sample)


# ---- tiny.ss (§4.13) --------------------------------------------------------------------------

TINY = bytes.fromhex(
    "537301" + "07" + b"tiny.ss".hex() + "0000018bcfe56800" + "00000400" + "00" * 104 + "0d"
    "05" + b"hello".hex() + "00" * 8 + "0000000000000001" + "0000018bcfe56801" + "00000002"
    "6869" + "d73b" + "0d"
    "15"
    + INTERNAL_KEY.encode().hex()
    + "00" * 16
    + "0000018bcfe56802"
    + "00000003"
    + b"EOS".hex()
    + "ed7c0d"
)


def test_tiny_encodes_byte_for_byte() -> None:
    assert len(TINY) == 223
    encoder = SsEncoder(1024)
    out = encoder.header("tiny.ss", 1_700_000_000_000)
    out += encoder.encode([("hello", 0, 1, 1_700_000_000_001, b"hi")])
    out += encoder.eos(1_700_000_000_002)
    assert out == TINY


def test_tiny_decodes() -> None:
    items = decode_all(TINY)
    assert items[0] == FileHeader("tiny.ss", 1_700_000_000_000, 1024)
    assert as_frames(items) == [
        ("hello", 0, 1, 1_700_000_000_001, b"hi"),
        (INTERNAL_KEY, 0, 0, 1_700_000_000_002, b"EOS"),
    ]


def test_next_item_needs_data_until_a_whole_item_arrived() -> None:
    decoder = SsDecoder()
    assert decoder.next_item() is NEED_DATA
    decoder.feed(TINY[:127])
    assert decoder.next_item() is NEED_DATA
    decoder.feed(TINY[127:140])
    assert isinstance(decoder.next_item(), FileHeader)
    assert decoder.next_item() is NEED_DATA
    assert decoder.tell() == HEADER_SIZE
    decoder.feed(TINY[140:])
    item = decoder.next_item()
    assert isinstance(item, Message) and item.payload == b"hi"
    assert decoder.tell() == 0xA7


# ---- header -----------------------------------------------------------------------------------


def test_header_round_trip_and_long_names() -> None:
    header = encode_header("x" * 200, 5, 12345)
    assert len(header) == 128 and header[-1] == 0x0D
    decoded = decode_header(header)
    assert decoded == FileHeader("x" * 111, 5, 12345)
    # A multi-byte character is never cut in half.
    name = fit_file_name("é" * 100)
    assert len(name.encode()) <= 111 and name == "é" * 55


def test_beacon_interval_below_128_is_refused() -> None:
    with pytest.raises(UsageError, match="beacon interval 100"):
        SsEncoder(100)


def test_num_markers_table() -> None:
    got = {i: num_markers(i) for i in (128, 640, 1024, 2048, 4096, 65536, 1 << 20)}
    assert got == {128: 0, 640: 1, 1024: 1, 2048: 3, 4096: 7, 65536: 116, 1 << 20: 127}


def test_interval_128_puts_an_empty_beacon_right_after_the_header() -> None:
    encoder = SsEncoder(128)
    data = encoder.header("a", 0)
    assert data[128:] == bytes.fromhex("0d00000000000d")
    items = decode_all(data + encoder.encode([("k", 0, 1, 1, b"p")]))
    assert isinstance(items[1], Beacon) and items[1].offset == 128 and items[1].markers == ()
    assert as_frames(items) == [("k", 0, 1, 1, b"p")]


# ---- round trips, beacons, splicing --------------------------------------------------------


def make_frames(rnd: random.Random, count: int, streams: int, sizes: list[int]) -> list[Frame]:
    seqs: dict[tuple[str, int], int] = {}
    frames = []
    for i in range(count):
        n = rnd.randrange(streams)
        key, shard = f"s{n // 3}", n % 3
        seq = seqs[(key, shard)] = seqs.get((key, shard), 0) + 1
        payload = rnd.randbytes(rnd.choice(sizes))
        frames.append((key, shard, seq, 1_000_000 + i, payload))
    return frames


def encode_file(frames: list[Frame], interval: int, batch: int = 97) -> bytes:
    encoder = SsEncoder(interval)
    parts = [encoder.header("rt.ss", 42)]
    for i in range(0, len(frames), batch):
        parts.append(encoder.encode(frames[i : i + batch]))
    return b"".join(parts)


@pytest.mark.parametrize("interval", [1024, 1 << 20])
def test_round_trip_with_payloads_up_to_several_intervals(interval: int) -> None:
    rnd = random.Random(interval)
    sizes = [0, 1, 100, 1000, interval - 30, interval, 3 * interval + 7]
    frames = make_frames(rnd, 60, 4, sizes)
    data = encode_file(frames, interval)
    items = decode_all(data)
    assert as_frames(items) == frames
    beacons = [b for b in items if isinstance(b, Beacon)]
    # Every multiple of the interval inside the file holds a beacon, and only those.
    assert [b.offset for b in beacons] == list(range(interval, len(data), interval))


def check_markers_are_true(frames: list[Frame], items: list[Item], interval: int) -> set[tuple]:
    """Replay the frames; each beacon's markers must equal the state when it was written."""
    state: dict[tuple[str, int], list[int]] = {}
    seen: set[tuple] = set()
    written = 0  # markers written so far: where the rotation starts
    for item in items:
        if isinstance(item, Message):
            crc = crc16(item.payload) if item.payload else CRC16_INIT
            s = state.setdefault((item.stream_key, item.shard_id), [0, 0, CRC16_INIT])
            s[0], s[1] = max(s[0], item.seq), max(s[1], item.timestamp)
            s[2] = running_update(s[2], crc)
        elif isinstance(item, Beacon):
            # A beacon that interrupts a frame comes after its message (already counted); a
            # boundary beacon comes before the next message: both see the state right here.
            count = min(len(state), num_markers(interval))
            assert len(item.markers) == count
            order = sorted(state, key=lambda ks: (ks[0].encode(), ks[1]))
            if order:
                expected = [order[(written + i) % len(order)] for i in range(count)]
                assert [(m.stream_key, m.shard_id) for m in item.markers] == expected
            written += count
            for m in item.markers:
                assert [m.seq, m.timestamp, m.running_checksum] == state[(m.stream_key, m.shard_id)]
                seen.add((m.stream_key, m.shard_id))
    return seen


@pytest.mark.parametrize("streams", [1, 5, 600])
def test_markers_hold_true_state_and_rotate(streams: int) -> None:
    rnd = random.Random(streams)
    frames = make_frames(rnd, 4000, streams, [10, 300, 600])
    data = encode_file(frames, 1024)
    items = decode_all(data, chunk=4096)
    assert as_frames(items) == frames
    seen = check_markers_are_true(frames, items, 1024)
    present = {(k, s) for k, s, *_ in frames}
    # 1 marker per 1 KiB beacon: rotation walks through (nearly) every stream over the file.
    assert seen <= present and len(seen) >= 0.95 * len(present)


def test_binary_payloads_round_trip() -> None:
    frames = [("bin", 0, i + 1, i, bytes(range(256)) * i) for i in range(6)]
    assert as_frames(decode_all(encode_file(frames, 1024), chunk=333)) == frames


@settings(max_examples=60, deadline=None)
@given(
    interval=st.sampled_from([128, 200, 1024]),
    payloads=st.lists(st.binary(max_size=700), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40),
)
def test_any_chunking_decodes_the_same(
    interval: int, payloads: list[bytes], cuts: list[int]
) -> None:
    frames = [(f"k{i % 3}", i % 2, i + 1, 10 * i, p) for i, p in enumerate(payloads)]
    data = encode_file(frames, interval, batch=5)
    decoder = SsDecoder()
    got: list[Item] = []
    pos = 0
    for cut in cuts * (len(data) // max(1, sum(cuts)) + 1):
        decoder.feed(data[pos : pos + cut])
        pos += cut
        got.extend(decoder)
        if pos >= len(data):
            break
    decoder.feed(data[pos:])
    decoder.eof()
    got.extend(decoder.read())
    assert got == decode_all(data)
    assert as_frames(got) == frames
    assert decoder.tell() == len(data)


def test_decoder_started_mid_file_names_true_offsets() -> None:
    frames = [("k", 0, i + 1, i, b"x" * 50) for i in range(40)]
    data = encode_file(frames, 1024)
    header = decode_all(data)[0]
    assert isinstance(header, FileHeader)
    # Find the frame boundary right after beacon 1 (1024 + beacon size + remaining).
    beacon = next(i for i in decode_all(data) if isinstance(i, Beacon))
    start = beacon.offset + beacon.size + beacon.remaining
    decoder = SsDecoder(start=start, header=header)
    decoder.feed(data[start:])
    decoder.eof()
    got = messages(decoder.read())
    everything = messages(decode_all(data))
    assert 0 < len(got) < len(everything)
    assert got == everything[-len(got) :]
    assert decoder.tell() == len(data)


# ---- damage -----------------------------------------------------------------------------------


def damaged(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


def read_until_error(data: bytes) -> tuple[list[Message], FileFormatError]:
    decoder = SsDecoder(source="d.ss")
    decoder.feed(data)
    decoder.eof()
    got: list[Message] = []
    with pytest.raises(FileFormatError) as info:
        while True:
            items = decoder.read(7)
            if not items:
                break
            got.extend(messages(items))
    return got, info.value


def test_flipped_payload_byte_names_the_frame_offset() -> None:
    frames = [("k", 0, i + 1, i, b"payload-%d" % i) for i in range(20)]
    data = encode_file(frames, 1024)
    start = HEADER_SIZE + 10 * (1 + 1 + 28 + 9 + 3)  # frame 10 (all frames are 42 bytes)
    got, error = read_until_error(damaged(data, start + 31))
    assert [m.seq for m in got] == list(range(1, 11))
    assert error.offset == start and "checksum mismatch" in error.what
    assert "k:0:11" in error.what and f"byte {start}" in str(error)


def test_cut_mid_message_delivers_everything_before() -> None:
    frames = [("k", 0, i + 1, i, b"p" * 30) for i in range(10)]
    data = encode_file(frames, 1024)
    got, error = read_until_error(data[:-20])
    assert [m.seq for m in got] == list(range(1, 10))
    assert "middle of a message" in error.what and error.offset == len(data) - 63


def test_cut_mid_beacon_is_reported_as_such() -> None:
    frames = [("k", 0, i + 1, i, b"p" * 30) for i in range(40)]
    data = encode_file(frames, 1024)
    got, error = read_until_error(data[:1026])
    assert "middle of a beacon" in error.what or "middle of a message" in error.what
    assert got and all(m.seq == i + 1 for i, m in enumerate(got))
    # A frame boundary right at 1024: cut inside the beacon that follows it.
    frames = [("k", 0, 1, 0, b"x" * (1024 - HEADER_SIZE - 33))]
    exact = encode_file(frames, 1024)
    assert len(exact) == 1024 + 7 + 27 + 1
    got, error = read_until_error(exact[:1027])
    assert [m.seq for m in got] == [1]
    assert "middle of a beacon" in error.what and error.offset == 1024


def test_garbage_header() -> None:
    _, error = read_until_error(b"PK\x03\x04" + bytes(200))
    assert error.offset == 0 and "not a .ss file" in error.what
    _, error = read_until_error(b"Ss\x02" + bytes(200))
    assert error.offset == 2 and "version" in error.what
    _, error = read_until_error(TINY[:50])
    assert "too short" in error.what


def test_a_lying_beacon_is_damage() -> None:
    frames = [("k", 0, 1, 0, b"x" * 2000)]
    data = bytearray(encode_file(frames, 1024))
    data[1024 + 4] ^= 1  # the low byte of "remaining"
    _, error = read_until_error(bytes(data))
    assert error.offset == 1024 and "bytes of the interrupted frame" in error.what


def test_error_is_sticky_and_position_stays_at_the_damage() -> None:
    data = damaged(TINY, 0x80 + 0x22)  # the payload "hi"
    decoder = SsDecoder()
    decoder.feed(data)
    assert isinstance(decoder.read()[0], FileHeader)
    for _ in range(2):
        with pytest.raises(FileFormatError):
            decoder.read()
    assert decoder.tell() == 0x80


def test_encoder_writes_the_good_frames_before_a_bad_one() -> None:
    encoder = SsEncoder(1024)
    head = encoder.header("e", 0)
    out = encoder.encode([("k", 0, 1, 0, b"a"), ("k", 0, -1, 0, b"b")])
    assert encoder.failed is not None
    assert as_frames(decode_all(head + out)) == [("k", 0, 1, 0, b"a")]
    assert encoder.next_seq("k") == 2


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=2, max_size=30),
    pick=st.integers(0, 10**6),
    bit=st.integers(0, 7),
)
def test_any_flipped_payload_or_crc_bit_names_its_frame(
    sizes: list[int], pick: int, bit: int
) -> None:
    """Checksums are checked per run of frames; damage must still name the exact frame."""
    frames = [("k", 0, i + 1, i, bytes([i % 251]) * n) for i, n in enumerate(sizes)]
    encoder = SsEncoder(1 << 20)
    data = bytearray(encoder.header("h", 0) + encoder.encode(frames))
    starts = [HEADER_SIZE]
    for _, _, _, _, payload in frames:
        starts.append(starts[-1] + 33 + len(payload))
    victim = pick % len(frames)
    span = len(frames[victim][4]) + 2  # payload and CRC bytes
    data[starts[victim] + 30 + pick % span] ^= 1 << bit
    got, error = read_until_error(bytes(data))
    assert [m.seq for m in got] == list(range(1, victim + 1))
    assert error.offset == starts[victim] and "checksum mismatch" in error.what


def test_earliest_damage_wins_when_a_later_frame_is_also_broken() -> None:
    frames = [("k", 0, i + 1, i, b"abcdef") for i in range(10)]
    encoder = SsEncoder(1 << 20)
    data = bytearray(encoder.header("h", 0) + encoder.encode(frames))
    frame = 39
    data[HEADER_SIZE + 3 * frame + 31] ^= 1  # payload of seq 4: a checksum error
    data[HEADER_SIZE + 7 * frame + frame - 1] = 0  # trailer of seq 8: a framing error
    got, error = read_until_error(bytes(data))
    assert [m.seq for m in got] == [1, 2, 3]
    assert error.offset == HEADER_SIZE + 3 * frame and "checksum" in error.what


def _state(encoder: SsEncoder) -> dict[tuple[str, int], tuple[int, int, int]]:
    return {k: (s.seq, s.timestamp, s.running) for k, s in encoder.streams.items()}


_FRAME = st.tuples(
    st.sampled_from(["a", "bb"]),
    st.sampled_from([0, 0, 0, 3]),
    st.integers(0, 2**64 - 1),
    st.integers(0, MAX_TIMESTAMP),
    st.binary(min_size=0, max_size=300),
)


@settings(max_examples=150, deadline=None)
@given(
    interval=st.sampled_from([128, 200, 256, 1000, 4096, 1 << 20]),
    batches=st.lists(st.tuples(st.booleans(), st.lists(_FRAME, max_size=80)), max_size=4),
    forced=st.sampled_from([None, "z"]),
)
def test_message_batches_encode_exactly_as_frame_tuples(
    interval: int, batches: list[tuple[bool, list[Frame]]], forced: str | None
) -> None:
    # encode_messages takes a column-wise C path for one-stream batches; encode() is the plain
    # per-frame loop. Bytes, beacons and per-stream state must come out identical.
    by_messages, by_frames = SsEncoder(interval), SsEncoder(interval)
    out_m = by_messages.header("p", 0)
    out_f = by_frames.header("p", 0)
    sent: list[Frame] = []
    for one_stream, batch in batches:
        if one_stream and batch:  # most relay batches: a single (key, shard)
            batch = [(batch[0][0], batch[0][1], q, t, p) for _, _, q, t, p in batch]
        frames = [(forced or k, shard, seq, ts, p) for k, shard, seq, ts, p in batch]
        out_m += by_messages.encode_messages([Message(*frame) for frame in batch], forced)
        out_f += by_frames.encode(frames)
        sent += frames
        assert _state(by_messages) == _state(by_frames)
        assert by_messages.position == by_frames.position == len(out_m)
    assert out_m == out_f
    assert as_frames(decode_all(out_m)) == sent


def test_a_long_one_stream_batch_crossing_many_beacons_matches_the_loop() -> None:
    batch = [Message("k", 0, n, 1_700_000_000_000 + n, b"x" * (n % 97 + 1)) for n in range(5000)]
    fast, slow = SsEncoder(128), SsEncoder(128)
    head = fast.header("f", 0)
    assert head == slow.header("f", 0)
    out = fast.encode_messages(batch)
    assert out == slow.encode([("k", 0, m.seq, m.timestamp, m.payload) for m in batch])
    assert _state(fast) == _state(slow)
    assert messages(decode_all(head + out)) == batch


def test_a_bad_field_in_a_one_stream_batch_still_writes_the_frames_before_it() -> None:
    encoder = SsEncoder(1024)
    head = encoder.header("e", 0)
    batch = [Message("k", 0, n, 5, b"ok") for n in range(1, 40)] + [Message("k", 0, 40, -1, b"x")]
    out = encoder.encode_messages(batch)
    assert encoder.failed is not None
    assert messages(decode_all(head + out)) == batch[:-1]
    assert encoder.next_seq("k") == 40


@pytest.mark.parametrize("count", [1, 40])
def test_a_timestamp_no_reader_accepts_is_refused_not_written(count: int) -> None:
    # After 9999-12-31 the decoder (like SeaStreamer's) calls a frame damaged: never write one.
    encoder = SsEncoder(1024)
    head = encoder.header("e", 0)
    batch = [Message("k", 0, n, 5, b"ok") for n in range(1, count)]
    out = encoder.encode_messages([*batch, Message("k", 0, count, MAX_TIMESTAMP + 1, b"x")])
    assert encoder.failed is not None
    assert "after 9999-12-31" in str(encoder.failed) and f"k:0:{count}" in str(encoder.failed)
    assert messages(decode_all(head + out)) == batch


FRAMES = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(0, 3),
        st.integers(0, 2**32),
        st.integers(0, 2**40),
        st.binary(max_size=40),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(FRAMES, st.sampled_from([128, 256, 1024]))
def test_the_frame_loop_steps_checksums_alike_with_and_without_its_table(
    frames: list[tuple[str, int, int, int, bytes]], interval: int
) -> None:
    """A fresh encoder steps the running checksums by a two-byte CRC; a busy one by its table."""
    fresh, busy = SsEncoder(interval), SsEncoder(interval)
    busy._loop_calls = 100
    assert fresh.encode(frames) == busy.encode(frames)
    assert {k: s.running for k, s in fresh.streams.items()} == {
        k: s.running for k, s in busy.streams.items()
    }
