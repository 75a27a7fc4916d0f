"""The backend contract: the same semantics asked of every backend, through ``streamkit.connect``.

Each test runs once per live harness (see ``harnesses.py``) that claims the feature it needs.
Positions are taken from the messages a backend returns (Redis sequence numbers are not 0..n),
and options that have backend defaults are passed explicitly except in the defaults test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from streamkit.backends.base import Consumer, Streamer
from streamkit.connect import connect
from streamkit.errors import EndOfStream, StreamkitError
from streamkit.message import Message
from tests.backends.harnesses import Bound, Harness, live_harnesses

TIMEOUT = 30.0
"""Ceiling on one test body, so a hang fails instead of stalling the suite (not a speed test)."""

QUIET = 0.3
"""How long a consumer must stay silent to show that nothing more is delivered."""

PAYLOADS = [b"plain", b"", b"\x00\x01\xfe\xff", b"line\nbreak\r\n", "ünï".encode(), b"x" * 5000]


def harness_params(feature: str | None = None) -> list[Any]:
    return [pytest.param(h, id=h.name) for h in live_harnesses(feature)]


@pytest.fixture
def bound(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bound]:
    harness: Harness = request.param
    b = harness.bind(request, tmp_path)
    yield b
    b.close()


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), TIMEOUT)

    asyncio.run(main())


async def send(b: Bound, key: str, items: Sequence[bytes]) -> None:
    """Send through a producer of a streamer of its own, flushed and closed."""
    async with connect(b.streamer_uri) as s:
        producer = await s.producer(key)
        await producer.send_many(items)
        await producer.flush()
        await producer.close()


async def read_all(b: Bound, key: str, **options: Any) -> list[Message]:
    """Everything from ``offset`` to the end of the stream as it is now (no follow)."""
    async with connect(b.streamer_uri) as s:
        consumer = await s.consumer([key], follow=False, **options)
        out = [m async for batch in consumer.batches(100) for m in batch]
        await consumer.close()
        return out


async def collect(consumer: Consumer, n: int) -> list[Message]:
    """Exactly ``n`` messages (fails by the suite timeout if they never come)."""
    out: list[Message] = []
    while len(out) < n:
        out.extend(await consumer.next_batch(n - len(out)))
    assert len(out) == n, f"asked for {n}, got {len(out)}"
    return out


async def assert_quiet(consumer: Consumer) -> None:
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        got = await consumer.recv(timeout=QUIET)
        pytest.fail(f"unexpected message {got!r}")


def payloads(messages: Sequence[Message]) -> list[bytes]:
    return [m.payload for m in messages]


def numbered(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


async def timed_batches(b: Bound, key: str) -> tuple[list[Message], list[Message]]:
    """Two batches whose timestamps do not overlap (sent some milliseconds apart)."""
    await send(b, key, numbered("a", 3))
    await asyncio.sleep(0.05)
    await send(b, key, numbered("b", 3))
    everything = await read_all(b, key, offset="start")
    assert payloads(everything) == numbered("a", 3) + numbered("b", 3)
    first, second = everything[:3], everything[3:]
    assert max(m.timestamp for m in first) < second[0].timestamp
    return first, second


# ----- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_send_many_and_batches_keep_payload_bytes(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, PAYLOADS)
        got = await read_all(bound, key, offset="start")
        assert payloads(got) == PAYLOADS
        assert {m.stream_key for m in got} == {key}
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], offset="start", follow=False)
            sizes = [len(batch) async for batch in consumer.batches(4)]
        assert sum(sizes) == len(PAYLOADS)
        assert max(sizes) <= 4, f"batches(4) returned batches of {sizes}"
        seqs = [m.seq for m in got]
        assert seqs == sorted(set(seqs)), "sequence numbers must increase"
        stamps = [m.timestamp for m in got]
        assert all(isinstance(t, int) and t > 1_600_000_000_000 for t in stamps)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_per_message_iteration_and_send(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        async with connect(bound.streamer_uri) as s:
            producer = await s.producer(key)
            for item in numbered("m", 4):
                await producer.send(item)
            await producer.send("text")
            await producer.flush()
            consumer = await s.consumer([key], offset="start", follow=False)
            got = [m async for m in consumer]
        assert payloads(got) == [*numbered("m", 4), b"text"]

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_offset_number_starts_at_that_message(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("n", 8))
        everything = await read_all(bound, key, offset="start")
        from_third = await read_all(bound, key, offset=everything[3].seq)
        assert payloads(from_third) == numbered("n", 8)[3:]
        from_last = await read_all(bound, key, offset=everything[-1].seq)
        assert payloads(from_last) == [b"n7"]

    run(body)


@pytest.mark.parametrize("bound", harness_params("offset_end"), indirect=True)
def test_offset_end_sees_only_new_messages(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("old", 3))
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], offset="end", follow=True)
            await send(bound, key, numbered("new", 2))
            assert payloads(await collect(consumer, 2)) == numbered("new", 2)
            await assert_quiet(consumer)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_no_follow_ends_at_the_end_seen_when_opened(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("x", 3))
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], offset="start", follow=False)
            await send(bound, key, numbered("later", 2))
            got = [m async for batch in consumer.batches(10) for m in batch]
            assert payloads(got) == numbered("x", 3)
            with pytest.raises(EndOfStream):
                await consumer.recv(timeout=5)

    run(body)


@pytest.mark.parametrize("bound", harness_params("follow"), indirect=True)
def test_follow_delivers_messages_sent_later_and_recv_times_out(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("x", 2))
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], offset="start", follow=True)
            assert payloads(await collect(consumer, 2)) == numbered("x", 2)
            await assert_quiet(consumer)  # a timed-out recv must not lose what comes next
            await send(bound, key, numbered("y", 3))
            got = [await consumer.recv(timeout=10) for _ in range(3)]
            assert payloads(got) == numbered("y", 3)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_since_delivers_from_that_time(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        _, second = await timed_batches(bound, key)
        got = await read_all(bound, key, since=second[0].timestamp)
        assert payloads(got) == numbered("b", 3)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_until_stops_after_the_last_message_at_or_before(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        first, _ = await timed_batches(bound, key)
        async with connect(bound.streamer_uri) as s:
            # Even a following consumer ends once it is past ``until``.
            consumer = await s.consumer([key], offset="start", until=first[-1].timestamp)
            got = [m async for m in consumer]
        assert payloads(got) == numbered("a", 3)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_defaults_for_offset_and_follow(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("old", 2))
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key])
            await send(bound, key, numbered("new", 2))
            expected: list[bytes] = []
            if bound.harness.default_offset == "start":
                expected += numbered("old", 2)
            if bound.harness.default_follow or bound.harness.default_offset == "end":
                expected += numbered("new", 2)
            if bound.harness.default_follow:
                assert payloads(await collect(consumer, len(expected))) == expected
                await assert_quiet(consumer)
            else:
                assert payloads([m async for m in consumer]) == expected

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_independent_consumers_each_see_everything(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("i", 5))
        async with connect(bound.streamer_uri) as s:
            one = await s.consumer([key], offset="start", follow=False)
            two = await s.consumer([key], offset="start", follow=False)
            first = [m async for m in one]
            second = [m async for m in two]
        assert payloads(first) == payloads(second) == numbered("i", 5)

    run(body)


@pytest.mark.parametrize("bound", harness_params("groups"), indirect=True)
def test_group_members_share_the_messages(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        group = "g" + uuid.uuid4().hex[:12]
        await send(bound, key, numbered("s", 20))
        async with connect(bound.streamer_uri) as s:
            options = {"offset": "start", "mode": "load-balanced", "group": group, "follow": True}
            members = [await s.consumer([key], **options) for _ in range(2)]
            got: list[list[Message]] = [[], []]
            done = asyncio.Event()

            async def read(i: int) -> None:
                while not done.is_set():
                    try:
                        message = await members[i].recv(timeout=0.2)
                    except (TimeoutError, asyncio.TimeoutError):
                        continue
                    got[i].append(message)
                    await members[i].commit([message])
                    if len(got[0]) + len(got[1]) >= 20:
                        done.set()

            await asyncio.gather(read(0), read(1))
            for member in members:
                await member.close()
        union = payloads(got[0]) + payloads(got[1])
        assert sorted(union) == sorted(numbered("s", 20))
        assert len(set(union)) == 20, "no message may go to both members"

    run(body)


async def resume_after_commit(bound: Bound, again: dict[str, Any]) -> None:
    """A member reads and commits 4, leaves; a new member opened with ``again`` gets the rest."""
    key = bound.new_key()
    group = "g" + uuid.uuid4().hex[:12]
    await send(bound, key, numbered("r", 4))
    common = {"mode": "resumable", "group": group, "follow": True}
    async with connect(bound.streamer_uri) as s:
        first = await s.consumer([key], offset="start", **common)
        handled = await collect(first, 4)
        assert payloads(handled) == numbered("r", 4)
        await first.commit(handled)
        await first.close()
    await send(bound, key, numbered("q", 3))
    async with connect(bound.streamer_uri) as s:
        second = await s.consumer([key], **again, **common)
        assert payloads(await collect(second, 3)) == numbered("q", 3)
        await assert_quiet(second)
        await second.close()


@pytest.mark.parametrize("bound", harness_params("resumable"), indirect=True)
def test_resumable_group_continues_after_commit(bound: Bound) -> None:
    run(lambda: resume_after_commit(bound, {}))


@pytest.mark.parametrize("bound", harness_params("resumable"), indirect=True)
def test_resumable_restart_with_the_same_options_continues(bound: Bound) -> None:
    """Re-running the same command (``--offset start --mode resumable --group G``) resumes:
    an offset only places a group that has no position yet (Kafka's auto.offset.reset)."""
    run(lambda: resume_after_commit(bound, {"offset": "start"}))


@pytest.mark.parametrize("bound", harness_params("resumable"), indirect=True)
def test_resumable_groups_are_independent(bound: Bound) -> None:
    """Two groups on one stream: each keeps its own position."""

    async def member(key: str, group: str, n: int) -> list[bytes]:
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer(
                [key], mode="resumable", group=group, offset="start", follow=True
            )
            handled = await collect(consumer, n)
            await consumer.commit(handled)
            if n == 0:
                await assert_quiet(consumer)
            await consumer.close()
            return payloads(handled)

    async def body() -> None:
        key = bound.new_key()
        one, two = "g" + uuid.uuid4().hex[:12], "h" + uuid.uuid4().hex[:12]
        await send(bound, key, numbered("r", 4))
        assert await member(key, one, 2) == numbered("r", 2)
        assert await member(key, two, 4) == numbered("r", 4)
        assert await member(key, one, 2) == numbered("r", 4)[2:]
        await member(key, one, 0)
        await member(key, two, 0)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_flush_makes_messages_visible_and_close_refuses_sends(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        async with connect(bound.streamer_uri) as s:
            producer = await s.producer(key)
            await producer.send_many(numbered("f", 3))
            await producer.flush()
            assert payloads(await read_all(bound, key, offset="start")) == numbered("f", 3)
            await producer.close()
            with pytest.raises(StreamkitError):
                await producer.send(b"after close")

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_streamer_close_flushes_its_producers(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        streamer: Streamer
        async with connect(bound.streamer_uri) as streamer:
            producer = await streamer.producer(key)
            await producer.send_many(numbered("c", 50))
        assert payloads(await read_all(bound, key, offset="start")) == numbered("c", 50)

    run(body)


@pytest.mark.parametrize("bound", harness_params("follow"), indirect=True)
def test_stop_ends_a_waiting_consumer(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("w", 1))
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], offset="start", follow=True)
            assert payloads(await collect(consumer, 1)) == [b"w0"]
            waiting = asyncio.ensure_future(consumer.next_batch())
            await asyncio.sleep(0.1)
            consumer.stop()
            with pytest.raises(EndOfStream):
                await asyncio.wait_for(waiting, 10)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_stop_ends_a_consumer_with_a_backlog_within_a_batch(bound: Bound) -> None:
    """A signal's stop() runs as a loop callback: a consumer whose data is all local (a file,
    librdkafka's queue) must still let it run, or SIGTERM waits for the whole backlog. What a
    consumer already holds in memory may still come (a file reader's 1 MiB chunk)."""

    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, [b"%04d" % i + b"." * 996 for i in range(3000)])
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], offset="start", follow=False)
            first = await consumer.next_batch(100)
            asyncio.get_running_loop().call_soon(consumer.stop)
            delivered = len(first)
            async for batch in consumer.batches(100):
                delivered += len(batch)  # a busy writer: never awaits
            assert delivered <= 1500, f"{delivered} of 3000 messages delivered after stop()"

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_no_follow_without_an_offset_starts_at_the_start(bound: Bound) -> None:
    """kcat -C -e prints the whole topic: a stopping reader with no --offset starts at the start,
    whatever the backend's following default (which would print nothing on Redis and Kafka)."""

    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("w", 4))
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], follow=False)
            assert payloads([m async for m in consumer]) == numbered("w", 4)

    run(body)


@pytest.mark.parametrize("bound", harness_params(), indirect=True)
def test_offset_minus_n_is_the_last_n(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("l", 10))
        assert payloads(await read_all(bound, key, offset=-3)) == numbered("l", 10)[-3:]
        assert payloads(await read_all(bound, key, offset=-1)) == [b"l9"]
        assert payloads(await read_all(bound, key, offset=-50)) == numbered("l", 10)

    run(body)


@pytest.mark.parametrize("bound", harness_params("follow"), indirect=True)
def test_offset_minus_n_then_follows(bound: Bound) -> None:
    async def body() -> None:
        key = bound.new_key()
        await send(bound, key, numbered("o", 5))
        async with connect(bound.streamer_uri) as s:
            consumer = await s.consumer([key], offset=-2, follow=True)
            assert payloads(await collect(consumer, 2)) == [b"o3", b"o4"]
            await send(bound, key, numbered("n", 2))
            assert payloads(await collect(consumer, 2)) == numbered("n", 2)

    run(body)
