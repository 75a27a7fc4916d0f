"""``--offset -N`` on a ``.ss`` file: the last N of each stream and shard."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streamkit.connect import connect
from streamkit.message import Message


async def _write(path: Path, messages: list[Message]) -> None:
    async with connect(f"file://{path}") as streamer:
        producer = await streamer.producer(None)
        await producer.send_many(messages)
        await producer.close()


async def _read(path: Path, keys: tuple[str, ...], **options: object) -> list[Message]:
    async with connect(f"file://{path}") as streamer:
        consumer = await streamer.consumer(keys, **options)
        return [m async for m in consumer]


def test_last_n_of_each_stream_and_shard(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ss"
    messages = [
        Message(("a", "b")[i % 2], i % 3, 0, 1_700_000_000_000 + i, b"%d" % i) for i in range(3000)
    ] + [Message("c", 0, 0, 1_700_000_009_000, b"lonely")]
    asyncio.run(_write(path, messages))

    got = asyncio.run(_read(path, (), offset=-2))
    expected: list[bytes] = []
    for where in sorted({(m.stream_key, m.shard_id) for m in messages}):
        mine = [m.payload for m in messages if (m.stream_key, m.shard_id) == where]
        expected += mine[-2:]
    assert sorted(m.payload for m in got) == sorted(expected)
    assert len(got) == 13  # 6 (stream, shard) pairs x 2, and c's only message
    only_a = asyncio.run(_read(path, ("a",), offset=-1))
    assert sorted(m.payload for m in only_a) == [b"2994", b"2996", b"2998"]
