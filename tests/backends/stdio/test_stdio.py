"""The stdio backend in process: routing by key, broadcast, groups (reference §1.4), stop, and the
producer, each over an ``os.pipe()`` instead of the process's own stdin/stdout."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from streamkit.backends.base import ConsumerOptions, ProducerOptions
from streamkit.backends.stdio import StdioConsumer, StdioProducer, _StdinHub, _StdoutWriter
from streamkit.errors import DataError, EndOfStream, LineFormatError, UsageError
from streamkit.formats.line import LineDecoder
from streamkit.message import Message


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


def hub_over(read_fd: int, options: ConsumerOptions | None = None) -> _StdinHub:
    hub = _StdinHub(read_fd)
    hub.configure(options or ConsumerOptions())
    return hub


def join(hub: _StdinHub, keys: tuple[str, ...] = (), **options: object) -> StdioConsumer:
    consumer = StdioConsumer(hub, keys, ConsumerOptions(**options))  # type: ignore[arg-type]
    hub.consumers.append(consumer)
    return consumer


async def drain(consumer: StdioConsumer) -> list[str]:
    """Every payload until the end of input, as text."""
    out: list[str] = []
    async for batch in consumer.batches(3):
        out += [m.payload.decode() for m in batch]
    return out


async def take(consumer: StdioConsumer, count: int) -> list[Message]:
    out: list[Message] = []
    while len(out) < count:
        out += await consumer.next_batch(count - len(out))
    return out


async def drain_all(*consumers: StdioConsumer) -> list[list[str]]:
    return list(await asyncio.gather(*(drain(c) for c in consumers)))


MIXED = (
    b"[a] for a\n"
    b"[b] for b\n"
    b"[c] for c\n"
    b"plain\n"
    b"[2022-01-01T00:00:00] timestamp only\n"
    b"[broadcast] literal broadcast key\n"
)


def test_keys_subscribe_and_broadcast_lines_reach_everyone(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    hub = hub_over(read_fd)
    only_a = join(hub, ("a",))
    only_b = join(hub, ("b",))
    a_and_c = join(hub, ("a", "c"))
    literal = join(hub, ("broadcast",))
    everything = join(hub)
    os.write(write_fd, MIXED)
    os.close(write_fd)
    got = asyncio.run(drain_all(only_a, only_b, a_and_c, literal, everything))
    assert got == [
        ["for a", "plain", "timestamp only"],
        ["for b", "plain", "timestamp only"],
        ["for a", "for c", "plain", "timestamp only"],
        ["plain", "timestamp only", "literal broadcast key"],
        ["for a", "for b", "for c", "plain", "timestamp only", "literal broadcast key"],
    ]


def keyed(seqs: range, key: str = "k") -> bytes:
    return b"".join(b"[%s | %d] m%d\n" % (key.encode(), n, n) for n in seqs)


def test_a_group_shares_round_robin_by_seq_and_other_consumers_get_all(
    pipe: tuple[int, int],
) -> None:
    read_fd, write_fd = pipe
    hub = hub_over(read_fd)
    first = join(hub, group="g")
    second = join(hub, group="g")
    alone = join(hub, group="h")
    free = join(hub)
    os.write(write_fd, keyed(range(10)))
    os.close(write_fd)
    got = asyncio.run(drain_all(first, second, alone, free))
    assert got == [
        [f"m{n}" for n in range(0, 10, 2)],
        [f"m{n}" for n in range(1, 10, 2)],
        [f"m{n}" for n in range(10)],
        [f"m{n}" for n in range(10)],
    ]


def test_members_may_join_a_group_at_any_time(pipe: tuple[int, int]) -> None:
    """The reference's ``group`` test: one member gets 0..3; after a second joins, the first
    gets the even and the second the odd of the next ten."""
    read_fd, write_fd = pipe
    hub = hub_over(read_fd)
    first = join(hub, group="g")

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        os.write(write_fd, keyed(range(4)))
        before = [m.seq for m in await take(first, 4)]
        second = join(hub, group="g")
        os.write(write_fd, keyed(range(10)))
        os.close(write_fd)
        a, b = await asyncio.gather(drain(first), drain(second))
        return before, [int(p[1:]) for p in a], [int(p[1:]) for p in b]

    before, a, b = asyncio.run(scenario())
    assert before == [0, 1, 2, 3]
    assert (a, b) == ([0, 2, 4, 6, 8], [1, 3, 5, 7, 9])


def test_group_members_share_only_among_those_that_accept_the_key(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    hub = hub_over(read_fd)
    x_only = join(hub, ("x",), group="g")
    x_and_y = join(hub, ("x", "y"), group="g")
    os.write(write_fd, keyed(range(4), "x") + keyed(range(3), "y"))
    os.close(write_fd)
    got = asyncio.run(drain_all(x_only, x_and_y))
    assert got == [["m0", "m2"], ["m1", "m3", "m0", "m1", "m2"]]


def test_since_until_and_a_last_line_without_newline(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    hub = hub_over(read_fd)
    base = 1_640_995_200_000  # 2022-01-01T00:00:00
    window = join(hub, since=base + 1000, until=base + 3000)
    everything = join(hub)
    os.write(
        write_fd,
        b"".join(b"[2022-01-01T00:00:0%d | k] s%d\n" % (s, s) for s in range(5)) + b"no newline",
    )
    os.close(write_fd)
    got = asyncio.run(drain_all(window, everything))
    assert got == [["s1", "s2", "s3"], ["s0", "s1", "s2", "s3", "s4", "no newline"]]


def test_stop_ends_a_consumer_whose_input_stays_open(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    hub = hub_over(read_fd)
    consumer = join(hub)

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        os.write(write_fd, b"one\ntwo\n")
        first = [m.payload for m in await take(consumer, 2)]
        waiting = asyncio.ensure_future(consumer.next_batch())
        await asyncio.sleep(0)  # the consumer now waits for more input
        os.write(write_fd, b"three\n")
        rest = [m.payload for m in await asyncio.wait_for(waiting, 10)]
        blocked = asyncio.ensure_future(consumer.next_batch())
        for _ in range(3):
            await asyncio.sleep(0)  # blocked on a pipe that has nothing to read
        assert not blocked.done()
        consumer.stop()
        with pytest.raises(EndOfStream):
            await asyncio.wait_for(blocked, 10)
        with pytest.raises(EndOfStream):
            await asyncio.wait_for(consumer.next_batch(), 10)
        return first, rest

    first, rest = asyncio.run(scenario())
    assert first == [b"one", b"two"]
    assert rest == [b"three"]


def test_an_invalid_line_ends_the_stream_with_its_error_after_earlier_messages(
    pipe: tuple[int, int],
) -> None:
    read_fd, write_fd = pipe
    hub = hub_over(read_fd)
    consumer = join(hub)
    os.write(write_fd, b"one\n[a | b] bad\nthree\n")
    os.close(write_fd)

    async def scenario() -> list[bytes]:
        got = [m.payload for m in await consumer.next_batch()]
        with pytest.raises(LineFormatError) as caught:
            await consumer.next_batch()
        assert caught.value.where == "<stdin>:2"
        return got

    assert asyncio.run(scenario()) == [b"one"]


def test_consumers_of_one_process_must_agree_on_the_input_format(pipe: tuple[int, int]) -> None:
    hub = hub_over(pipe[0])
    with pytest.raises(UsageError):
        hub.configure(ConsumerOptions(no_meta=True))
    hub.configure(ConsumerOptions())


def read_all(read_fd: int, write_fd: int) -> bytes:
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def decode(data: bytes) -> list[Message]:
    decoder = LineDecoder()
    out = decoder.feed(data)
    assert decoder.error is None
    return out


def test_producers_share_per_key_sequence_counters(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    writer = _StdoutWriter(write_fd)
    a = StdioProducer(writer, "a", ProducerOptions())
    also_a = StdioProducer(writer, "a", ProducerOptions())
    b = StdioProducer(writer, "b", ProducerOptions())
    keyless = StdioProducer(writer, None, ProducerOptions())

    async def scenario() -> None:
        await a.send_many([b"a0", "a1"])
        await also_a.send(b"a2")
        await b.send(b"b0")
        await keyless.send(b"x")
        kept = Message("own", 4, 99, 1_640_995_200_007, b"kept")
        await keyless.send(kept)
        await b.send(kept)

    asyncio.run(scenario())
    got = decode(read_all(read_fd, write_fd))
    assert [(m.stream_key, m.shard_id, m.seq, m.payload) for m in got] == [
        ("a", 0, 0, b"a0"),
        ("a", 0, 1, b"a1"),
        ("a", 0, 2, b"a2"),
        ("b", 0, 0, b"b0"),
        ("broadcast", 0, 0, b"x"),
        ("own", 4, 99, b"kept"),
        ("b", 4, 99, b"kept"),
    ]
    assert got[-1].timestamp == 1_640_995_200_007


def test_a_payload_that_cannot_travel_fails_after_writing_the_ones_before(
    pipe: tuple[int, int],
) -> None:
    read_fd, write_fd = pipe
    producer = StdioProducer(_StdoutWriter(write_fd), "k", ProducerOptions())
    with pytest.raises(DataError) as caught:
        asyncio.run(producer.send_many([b"one", b"two", b"bad\nline", b"four"]))
    assert "newline" in caught.value.what and caught.value.where == "message k:0:2"
    assert [m.payload for m in decode(read_all(read_fd, write_fd))] == [b"one", b"two"]


def test_json_output_and_closed_producer(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    producer = StdioProducer(_StdoutWriter(write_fd), "k", ProducerOptions(output_format="json"))

    async def scenario() -> None:
        await producer.send(b"\xffbinary")
        await producer.close()
        with pytest.raises(UsageError):
            await producer.send(b"late")

    asyncio.run(scenario())
    assert read_all(read_fd, write_fd).startswith(b'{"topic":"k","partition":0,"offset":0,')
