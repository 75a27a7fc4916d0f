"""The file backend through the library API: append, resume, seek, follow, damage."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streamkit.backends.base import ProducerOptions
from streamkit.backends.file.streamer import FileConsumer
from streamkit.connect import connect
from streamkit.errors import EndOfStream, FileFormatError, UsageError
from streamkit.formats.ss import Beacon, FileHeader, SsDecoder, SsEncoder, is_eos
from streamkit.message import INTERNAL_KEY, Message

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def decode(path: Path) -> list[Any]:
    decoder = SsDecoder(source=str(path))
    decoder.feed(path.read_bytes())
    decoder.eof()
    return decoder.read(10**9)


async def write(path: Path, key: str | None, items: list[Any], **options: Any) -> None:
    async with connect(f"file://{path}") as streamer:
        producer = await streamer.producer(key, ProducerOptions(**options))
        await producer.send_many(items)
        await producer.close()


async def read(path: Path, keys: tuple[str, ...] = (), **options: Any) -> list[Message]:
    async with connect(f"file://{path}") as streamer:
        consumer = await streamer.consumer(keys, **options)
        return [m async for m in consumer]


def ids(messages: list[Message]) -> list[tuple[str, int]]:
    return [(m.stream_key, m.seq) for m in messages]


def test_write_then_read_with_seqs_from_one(tmp_path: Path) -> None:
    path = tmp_path / "a.ss"
    run(write(path, "tick", [b"t%d" % i for i in range(5)]))
    got = run(read(path, ("tick",)))
    assert [(m.seq, m.payload) for m in got] == [(i + 1, b"t%d" % i) for i in range(5)]
    items = decode(path)
    assert isinstance(items[0], FileHeader) and items[0].file_name == "a.ss"
    assert is_eos(items[-1])  # clean close writes EOS; readers never see it as data
    assert all(m.stream_key == "tick" for m in got)


def test_append_overwrites_eos_and_continues_seqs(tmp_path: Path) -> None:
    path = tmp_path / "a.ss"
    run(write(path, "a", [b"1", b"2"], beacon_interval=1024))
    run(write(path, "b", [b"x"]))
    run(write(path, "a", [b"3"]))
    got = run(read(path))
    assert ids(got) == [("a", 1), ("a", 2), ("b", 1), ("a", 3)]
    eos = [m for m in decode(path) if isinstance(m, Message) and is_eos(m)]
    assert len(eos) == 1  # every earlier EOS was overwritten
    assert decode(path)[0].beacon_interval == 1024  # the file's interval stays


def test_appending_keeps_beacons_true(tmp_path: Path) -> None:
    """Markers written after a resume carry the running checksum of the whole file."""
    path = tmp_path / "b.ss"
    for round_ in range(4):
        run(write(path, "k", [os.urandom(150) for _ in range(30)], beacon_interval=1024))
        run(write(path, "j", [b"j%d" % round_] * 3))
    items = decode(path)
    messages = [m for m in items if isinstance(m, Message) and not is_eos(m)]
    beacons = [b for b in items if isinstance(b, Beacon)]
    assert len(beacons) >= 10
    last = beacons[-1]
    # The state at a beacon is that of every message before it in the decoder's item order.
    before = SsEncoder(1024)
    before.header("x", 0)
    before.encode_messages([m for m in items[: items.index(last)] if isinstance(m, Message)])
    for marker in last.markers:
        state = before.streams[(marker.stream_key, marker.shard_id)]
        assert (marker.seq, marker.timestamp, marker.running_checksum) == (
            state.seq,
            state.timestamp,
            state.running,
        )
    assert [m.seq for m in messages if m.stream_key == "k"] == list(range(1, 121))


def test_producer_without_key_keeps_message_identity(tmp_path: Path) -> None:
    path = tmp_path / "m.ss"
    sent = [
        Message("x", 3, 17, 1_700_000_000_123, b"a"),
        Message("y", 0, 5, 1_700_000_000_000, b""),
    ]
    run(write(path, None, sent))
    got = run(read(path))
    assert [(m.stream_key, m.shard_id, m.seq, m.timestamp, m.payload) for m in got] == [
        ("x", 3, 17, 1_700_000_000_123, b"a"),
        ("y", 0, 5, 1_700_000_000_000, b""),
    ]


def test_key_filter_and_offset_since_until(tmp_path: Path) -> None:
    path = tmp_path / "f.ss"
    sent = [Message("ab"[i % 2], 0, i // 2 + 1, 1000 * i, b"%d" % i) for i in range(40)]
    run(write(path, None, sent, beacon_interval=128))
    assert ids(run(read(path, ("a",)))) == [("a", n) for n in range(1, 21)]
    got = run(read(path, ("a",), offset=7))
    assert [m.seq for m in got] == list(range(7, 21))  # offset N starts AT seq N
    got = run(read(path, (), since=10_000))
    assert got[0].timestamp == 10_000 and len(got) == 30  # since is inclusive
    got = run(read(path, ("b",), since=10_000, until=20_000))
    assert [m.timestamp for m in got] == [11_000, 13_000, 15_000, 17_000, 19_000]
    assert run(read(path, (), offset="end")) == []


def test_seek_matches_a_full_scan_with_many_streams(tmp_path: Path) -> None:
    """Markers rotate (1 per 1 KiB beacon); a seek may land early, never late."""
    rnd = random.Random(7)
    path = tmp_path / "many.ss"
    sent = []
    seqs: dict[str, int] = {}
    for i in range(3000):
        key = f"s{rnd.randrange(30)}"
        seqs[key] = seqs.get(key, 0) + 1
        sent.append(Message(key, 0, seqs[key], 10 * i, rnd.randbytes(rnd.randrange(80))))
    run(write(path, None, sent, beacon_interval=1024))
    for _ in range(12):
        key = f"s{rnd.randrange(30)}"
        since = rnd.randrange(30_000)
        expected = [m.seq for m in sent if m.stream_key == key and m.timestamp >= since]
        assert [m.seq for m in run(read(path, (key,), since=since))] == expected
        low = rnd.randrange(1, 120)
        expected = [m.seq for m in sent if m.stream_key == key and m.seq >= low]
        assert [m.seq for m in run(read(path, (key,), offset=low))] == expected
    since = 15_000
    assert ids(run(read(path, since=since))) == ids([m for m in sent if m.timestamp >= since])


def test_seek_reads_little_of_a_file_with_one_stream(tmp_path: Path) -> None:
    path = tmp_path / "one.ss"
    sent = [Message("k", 0, i + 1, 1000 + i, bytes(200)) for i in range(20_000)]
    run(write(path, None, sent, beacon_interval=4096))
    size = path.stat().st_size

    async def go() -> tuple[list[Message], int]:
        async with connect(f"file://{path}") as streamer:
            consumer = await streamer.consumer(("k",), since=15_000)
            assert isinstance(consumer, FileConsumer)
            first = await consumer.next_batch(1)
            return first, consumer.bytes_read

    first, bytes_read = run(go())
    assert first[0].timestamp == 15_000 and first[0].seq == 14_001
    assert bytes_read < size / 4


def test_follow_sees_appends_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "live.ss"
    run(write(path, "n", [b"0"]))

    async def go() -> list[bytes]:
        async with connect(f"file://{path}") as reader_side:
            consumer = await reader_side.consumer(("n",), follow=True)
            got: list[bytes] = []

            async def produce() -> None:
                async with connect(f"file://{path}") as writer_side:
                    producer = await writer_side.producer("n", ProducerOptions(beacon_interval=128))
                    for i in range(1, 200, 7):
                        await producer.send_many([b"%d" % j for j in range(i, i + 7)])
                        await asyncio.sleep(0.002)
                    await producer.close()

            task = asyncio.create_task(produce())
            while len(got) < 204:
                batch = await asyncio.wait_for(consumer.next_batch(50), 5)
                got.extend(m.payload for m in batch)
            await task
            # The writer's clean close (EOS) is only a pause for a follower: it waits on.
            waiting = asyncio.create_task(consumer.next_batch())
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await write(path, "n", [b"after"])
            got.extend(m.payload for m in await asyncio.wait_for(waiting, 5))
            consumer.stop()
            with pytest.raises(EndOfStream):
                await asyncio.wait_for(consumer.next_batch(), 5)
            return got

    got = run(go())
    assert got == [b"%d" % i for i in range(204)] + [b"after"]


def test_live_consumer_from_end_gets_only_new(tmp_path: Path) -> None:
    path = tmp_path / "end.ss"
    run(write(path, "n", [b"old"] * 3))

    async def go() -> list[Message]:
        async with connect(f"file://{path}") as streamer:
            consumer = await streamer.consumer(("n",), offset="end", follow=True)
            await write(path, "n", [b"new1", b"new2"])
            return await asyncio.wait_for(consumer.next_batch(), 5)

    got = run(go())
    assert [(m.seq, m.payload) for m in got] == [(4, b"new1"), (5, b"new2")]


def read_until_error(path: Path) -> tuple[list[Message], FileFormatError]:
    async def go() -> tuple[list[Message], FileFormatError]:
        got: list[Message] = []
        async with connect(f"file://{path}") as streamer:
            try:
                consumer = await streamer.consumer(())  # a bad header fails right here
                async for batch in consumer.batches(10):
                    got.extend(batch)
            except FileFormatError as exc:
                return got, exc
        raise AssertionError("no error")

    return run(go())


@pytest.fixture
def damaged_file(tmp_path: Path) -> Callable[[int | None, int | None], Path]:
    data_path = tmp_path / "d.ss"
    run(write(data_path, "k", [b"payload-%03d" % i for i in range(100)], beacon_interval=1024))
    data = data_path.read_bytes()

    def make(flip: int | None, cut: int | None) -> Path:
        out = bytearray(data)
        if flip is not None:
            out[flip] ^= 0x01
        path = tmp_path / f"x{flip}-{cut}.ss"
        path.write_bytes(bytes(out[:cut]))
        return path

    return make


FRAME = 1 + 1 + 28 + 11 + 3  # key "k", 11-byte payload


def test_flipped_byte_delivers_all_before_then_names_offset(
    damaged_file: Callable[[int | None, int | None], Path],
) -> None:
    start = 128 + 10 * FRAME
    got, error = read_until_error(damaged_file(start + 35, None))
    assert [m.seq for m in got] == list(range(1, 11))
    assert error.offset == start and "checksum mismatch" in error.what


def test_cut_mid_message_and_mid_beacon(
    damaged_file: Callable[[int | None, int | None], Path],
) -> None:
    got, error = read_until_error(damaged_file(None, 128 + 15 * FRAME + 10))
    assert [m.seq for m in got] == list(range(1, 16))
    assert "middle of a message" in error.what and error.offset == 128 + 15 * FRAME
    got, error = read_until_error(damaged_file(None, 1024 + 3))  # frame 21 spans the beacon
    assert [m.seq for m in got] == list(range(1, 21))
    assert "middle of a message" in error.what and error.offset == 128 + 20 * FRAME


def test_garbage_header_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "g.ss"
    path.write_bytes(b"\x00" * 300)
    _, error = read_until_error(path)
    assert error.offset == 0 and "not a .ss file" in error.what
    with pytest.raises(UsageError, match="no such file"):
        run(read(tmp_path / "missing.ss"))


def test_append_to_half_written_file_truncates_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "h.ss"
    run(write(path, "k", [b"a", b"b", b"c"], end_with_eos=False))
    with open(path, "ab") as f:
        f.write(b"\x01k" + bytes(20))  # a crashed writer's half frame
    run(write(path, "k", [b"d"]))
    assert [(m.seq, m.payload) for m in run(read(path))] == [
        (1, b"a"),
        (2, b"b"),
        (3, b"c"),
        (4, b"d"),
    ]


def test_append_to_damaged_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.ss"
    run(write(path, "k", [b"aaaa", b"bbbb"]))
    data = bytearray(path.read_bytes())
    data[128 + 31] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="verify --repair"):
        run(write(path, "k", [b"c"]))
    assert path.read_bytes() == bytes(data)  # untouched


def test_unsupported_options_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.ss"
    run(write(path, "k", [b"a"]))
    with pytest.raises(UsageError, match="maxlen"):
        run(write(path, "k", [b"a"], maxlen=5))
    with pytest.raises(UsageError, match="consumer groups"):
        run(read(path, ("k",), mode="load-balanced", group="g"))
    with pytest.raises(UsageError, match="beacon interval"):
        run(write(tmp_path / "v.ss", "k", [b"a"], beacon_interval=64))
    with pytest.raises(UsageError, match="reserved"):
        run(write(path, INTERNAL_KEY, [b"EOS"]))


def test_a_message_out_of_range_fails_after_the_good_ones_are_written(tmp_path: Path) -> None:
    path = tmp_path / "o.ss"
    good = [Message("k", 0, 1, 5, b"a"), Message("k", 0, 2, 6, b"b")]
    with pytest.raises(UsageError, match="before it were written"):
        run(write(path, None, [*good, Message("k", 0, 3, -1, b"c")]))
    got = run(read(path))
    assert [(m.seq, m.payload) for m in got] == [(1, b"a"), (2, b"b")]
    with pytest.raises(UsageError, match="invalid character"):
        run(write(path, None, [Message("bad key", 0, 1, 1, b"x")]))


def test_live_consumer_waits_on_a_cleanly_closed_file(tmp_path: Path) -> None:
    """--follow --offset end on a file that ended with EOS waits for the next writer."""
    path = tmp_path / "closed.ss"
    run(write(path, "n", [b"old"]))

    async def go() -> list[Message]:
        async with connect(f"file://{path}") as streamer:
            consumer = await streamer.consumer(("n",), offset="end", follow=True)
            waiting = asyncio.create_task(consumer.next_batch())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the old EOS does not end a live consumer
            await write(path, "n", [b"new"])
            return await asyncio.wait_for(waiting, 5)

    got = run(go())
    assert [(m.seq, m.payload) for m in got] == [(2, b"new")]


def test_no_follow_stops_where_the_file_ended_at_open_even_if_its_eos_is_overwritten(
    tmp_path: Path,
) -> None:
    path = tmp_path / "snap.ss"
    run(write(path, "k", [b"a", b"b"]))

    async def go() -> list[bytes]:
        async with connect(f"file://{path}") as streamer:
            consumer = await streamer.consumer(("k",))
            await write(path, "k", [b"c"])  # resumes on top of the EOS seen at open
            return [m.payload async for m in consumer]

    assert run(go()) == [b"a", b"b"]
    assert [m.payload for m in run(read(path))] == [b"a", b"b", b"c"]


def test_messages_whose_seqs_start_again_continue_their_stream(tmp_path: Path) -> None:
    path = tmp_path / "c.ss"
    first = [Message("a", 0, s, 5, b"a%d" % s) for s in range(3)]
    run(write(path, None, first))
    mixed = [
        Message("a", 0, 0, 6, b"again"),  # starts again: continues at 3
        Message("b", 1, 7, 6, b"new stream keeps its seq"),
        Message("a", 0, 9, 6, b"above: kept"),
        Message("a", 0, 9, 6, b"repeat: 10"),
        Message("b", 1, 7, 6, b"repeat: 8"),
    ]
    run(write(path, None, mixed))
    run(write(path, "a", [b"plain payload"]))  # a payload gets the next number of its stream
    assert [(m.stream_key, m.seq) for m in run(read(path))] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 7),
        ("a", 9),
        ("a", 10),
        ("b", 8),
        ("a", 11),
    ]
    # One-stream batches (the relay's fast path) continue too.
    run(write(path, "a", [Message("x", 0, s, 7, b"fast") for s in range(20)]))
    assert [m.seq for m in run(read(path, ("a",)))][-20:] == list(range(12, 32))
