"""Small helpers shared by the Kafka backend tests (no pytest-asyncio here)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from streamkit.backends.base import ConnectOptions, Consumer, Streamer
from streamkit.connect import connect
from streamkit.message import Message

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def streamer(address: str, **options: Any) -> Any:
    return connect(f"kafka://{address}", ConnectOptions(**options))


async def drain(consumer: Consumer, batch: int = 1000) -> list[Message]:
    """Everything a finite consumer delivers, then close it."""
    out: list[Message] = []
    try:
        async for messages in consumer.batches(batch):
            out.extend(messages)
    finally:
        await consumer.close()
    return out


async def collect(consumer: Consumer, count: int, timeout: float = 20) -> list[Message]:
    """The first ``count`` messages of a following consumer (TimeoutError if they never come)."""
    out: list[Message] = []

    async def loop() -> None:
        while len(out) < count:
            out.extend(await consumer.next_batch(count - len(out)))

    await asyncio.wait_for(loop(), timeout)
    return out


async def produce(
    s: Streamer, topic: str, items: Sequence[bytes | str | Message], **options: Any
) -> None:
    from streamkit.backends.base import ProducerOptions

    producer = await s.producer(topic, ProducerOptions(**options))
    await producer.send_many(items)
    await producer.close()


def messages(topic: str, count: int, *, start_ts: int = 1_700_000_000_000) -> list[Message]:
    return [
        Message(topic, 0, 0, start_ts + i, f"payload-{i}".encode(), None, ()) for i in range(count)
    ]
