"""``streamkit.join`` over real in-process ``memory://`` streams: order, silence, lateness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

import streamkit
from streamkit.backends.base import Consumer, ConsumerOptions
from streamkit.errors import DataError, UsageError
from streamkit.message import Message

T0 = 1_795_000_000_000


def at(key: str, ts: int, tag: str) -> Message:
    return Message(key, 0, 0, T0 + ts, tag.encode())


async def fill(streamer: streamkit.Streamer, key: str, messages: Sequence[Message]) -> None:
    producer = await streamer.producer(key)
    await producer.send_many(messages)
    await producer.flush()


def test_three_interleaved_streams_come_out_sorted_and_complete() -> None:
    async def main() -> list[Message]:
        async with streamkit.connect("memory://join-three") as streamer:
            for index, key in enumerate(("c", "a", "b")):
                # Every third millisecond each, plus a shared tie at 10_000.
                messages = [at(key, t, f"{key}{t}") for t in range(index, 9000, 3)]
                await fill(streamer, key, [*messages, at(key, 10_000, f"{key}-tie")])
            consumers = [
                await streamer.consumer(key, offset="start", follow=False) for key in "cab"
            ]
            joined = streamkit.join(consumers, max_lateness=5.0)
            out = [m for batch in [b async for b in joined.batches(700)] for m in batch]
            await joined.close()
            assert joined.late == 0
            return out

    out = asyncio.run(main())
    assert len(out) == 9003
    assert [m.timestamp for m in out] == sorted(m.timestamp for m in out)
    assert [m.timestamp - T0 for m in out[:9000]] == list(range(9000))
    assert [m.payload for m in out[-3:]] == [b"a-tie", b"b-tie", b"c-tie"]  # key order


def test_equal_keys_and_timestamps_keep_input_order() -> None:
    async def main() -> list[bytes]:
        # One stream key "s" in two brokers: the tie is broken by the order of the inputs.
        async with (
            streamkit.connect("memory://join-ties-x") as x,
            streamkit.connect("memory://join-ties-y") as y,
        ):
            await fill(x, "s", [at("s", 5, "x1"), at("s", 5, "x2")])
            await fill(y, "s", [at("s", 5, "y1")])
            consumers = [await b.consumer("s", offset="start", follow=False) for b in (y, x)]
            async with streamkit.join(consumers) as joined:
                return [m.payload async for m in joined]

    assert asyncio.run(main()) == [b"y1", b"x1", b"x2"]


def test_a_silent_input_delays_output_by_at_most_max_lateness() -> None:
    async def main() -> tuple[float, list[bytes], int, list[bytes]]:
        async with streamkit.connect("memory://join-silent") as streamer:
            await fill(streamer, "busy", [at("busy", t, f"b{t}") for t in (10, 20, 30)])
            busy = await streamer.consumer("busy", offset="start", follow=False)
            quiet = await streamer.consumer("quiet", offset="start")  # follows: never ends
            joined = streamkit.join([busy, quiet], max_lateness=0.4)
            start = time.monotonic()
            first = await joined.next_batch(100)
            waited = time.monotonic() - start
            # The quiet input speaks: one message older than the output so far (late, still
            # delivered and counted), one newer.
            await fill(streamer, "quiet", [at("quiet", 15, "q15"), at("quiet", 40, "q40")])
            later = await asyncio.wait_for(joined.next_batch(100), 5)
            late = joined.late
            joined.stop()
            rest = [m.payload async for m in joined]
            await joined.close()
            return waited, [m.payload for m in first], late, [m.payload for m in later] + rest

    waited, first, late, later = asyncio.run(main())
    assert 0.4 <= waited < 3.0
    assert first == [b"b10", b"b20", b"b30"]
    assert later == [b"q15", b"q40"]
    assert late == 1


def test_late_drop_leaves_late_messages_out() -> None:
    async def main() -> tuple[list[bytes], int]:
        async with streamkit.connect("memory://join-drop") as streamer:
            await fill(streamer, "busy", [at("busy", t, f"b{t}") for t in (10, 20)])
            busy = await streamer.consumer("busy", offset="start", follow=False)
            quiet = await streamer.consumer("quiet", offset="start")
            joined = streamkit.join([busy, quiet], max_lateness=0.1, late="drop")
            out = list(await joined.next_batch(100))
            await fill(streamer, "quiet", [at("quiet", 5, "q5"), at("quiet", 25, "q25")])
            out += await asyncio.wait_for(joined.next_batch(100), 5)
            joined.stop()
            out += [m async for m in joined]
            await joined.close()
            return [m.payload for m in out], joined.dropped

    payloads, dropped = asyncio.run(main())
    assert payloads == [b"b10", b"b20", b"q25"]
    assert dropped == 1


def test_the_buffer_of_a_fast_input_stays_bounded_while_another_is_quiet() -> None:
    async def main() -> tuple[list[bytes], int]:
        async with streamkit.connect("memory://join-bounded") as streamer:
            await fill(streamer, "fast", [at("fast", t, "") for t in range(50_000)])
            fast = await streamer.consumer("fast", offset="start", follow=False)
            quiet = await streamer.consumer("quiet", offset="start")
            await fill(streamer, "quiet", [at("quiet", 0, "q0")])
            joined = streamkit.Join(
                [fast, quiet], max_lateness=30.0, buffer=1000, read_size=100, keys=["fast", "quiet"]
            )
            first = await joined.next_batch(10)  # fast 0 and q0 go; fast 1.. wait for quiet
            await asyncio.sleep(0.3)
            held = joined._merger.pending(0)
            await joined.close()
            return [m.payload for m in first], held

    first, held = asyncio.run(main())
    assert first == [b"", b"q0"]
    assert 0 < held <= 1000 + 100


class Failing(Consumer):
    """A consumer whose source breaks after one batch."""

    def __init__(self) -> None:
        super().__init__(ConsumerOptions())
        self.calls = 0

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        self.calls += 1
        if self.calls == 1:
            return [at("f", 1, "f1")]
        raise DataError("broken frame", "file.ss at byte 12")


def test_an_input_error_reaches_the_reader_of_the_join() -> None:
    async def main() -> None:
        joined = streamkit.join([Failing()])
        with pytest.raises(DataError, match="broken frame"):
            async for _ in joined.batches(10):
                pass
        await joined.close()

    asyncio.run(main())


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="at least one"):
        streamkit.join([])
    with pytest.raises(UsageError, match="--late"):
        streamkit.join([Failing()], late="keep")
    with pytest.raises(UsageError, match="--max-lateness"):
        streamkit.join([Failing()], max_lateness=-1)
