"""The pipeline over the real in-process ``memory://`` backend: chaining and resumable commits."""

from __future__ import annotations

import asyncio

import pytest

import streamkit
from streamkit.errors import HandlerError
from streamkit.message import Message
from streamkit.pipeline import Pipeline, Stage


def test_two_processors_chained_through_memory_topics() -> None:
    async def main() -> list[bytes]:
        async with streamkit.connect("memory://chain") as streamer:
            source = await streamer.producer("raw")
            await source.send_many([b"%d" % n for n in range(500)])
            first = Pipeline([Stage(lambda m: m.payload + b"+a", workers=4)])
            second = Pipeline([Stage(lambda m: m.payload + b"+b", workers=2)], ordered=False)
            await first.run(
                await streamer.consumer("raw", offset="start", follow=False),
                await streamer.producer("mid"),
            )
            await second.run(
                await streamer.consumer("mid", offset="start", follow=False),
                await streamer.producer("out"),
            )
            reader = await streamer.consumer("out", offset="start", follow=False)
            return [m.payload async for m in reader]

    out = asyncio.run(main())
    assert sorted(out, key=lambda p: int(p.split(b"+")[0])) == [b"%d+a+b" % n for n in range(500)]


def test_resumable_group_restarts_after_the_last_written_message() -> None:
    broken = {"on": True}

    def handler(message: Message) -> bytes:
        if broken["on"] and message.payload == b"250":
            raise RuntimeError("poison")
        return message.payload

    async def run_once(streamer: streamkit.Streamer) -> None:
        consumer = await streamer.consumer(
            "jobs", offset="start", mode="resumable", group="workers", follow=False
        )
        try:
            pipeline = Pipeline([Stage(handler, workers=3)], read_batch=50)
            await pipeline.run(consumer, await streamer.producer("done"))
        finally:
            await consumer.close()

    async def main() -> list[bytes]:
        async with streamkit.connect("memory://resume") as streamer:
            await (await streamer.producer("jobs")).send_many([b"%d" % n for n in range(600)])
            with pytest.raises(HandlerError, match="poison"):
                await run_once(streamer)
            written_first = streamer.stats("done").next_seq  # type: ignore[attr-defined]
            assert 0 < written_first <= 250
            broken["on"] = False
            await run_once(streamer)
            reader = await streamer.consumer("done", offset="start", follow=False)
            return [m.payload async for m in reader]

    out = [int(p) for p in asyncio.run(main())]
    # the first run wrote and committed a prefix before the poison message; the second run
    # resumes exactly after it: nothing lost, nothing written twice
    assert out == list(range(600))
