"""Small helpers shared by the Redis backend tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

import pytest

from streamkit.backends.base import Consumer
from streamkit.connect import connect
from streamkit.errors import ConnectError
from streamkit.message import Message

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run one test coroutine with a hard time limit (a hang fails instead of stalling)."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


async def take(consumer: Consumer, n: int, timeout: float = 10.0) -> list[Message]:
    """Exactly ``n`` messages (more ready ones stay in the consumer's buffer)."""
    out: list[Message] = []
    while len(out) < n:
        batch: Awaitable[list[Message]] = consumer.next_batch(n - len(out))
        out.extend(await asyncio.wait_for(batch, timeout))
    return out


async def drain(consumer: Consumer, timeout: float = 10.0) -> list[Message]:
    """Everything until the consumer ends (``--no-follow``, ``--until``)."""
    out: list[Message] = []

    async def loop() -> None:
        async for batch in consumer.batches(1000):
            out.extend(batch)

    await asyncio.wait_for(loop(), timeout)
    return out


def payloads(messages: list[Message]) -> list[bytes]:
    return [m.payload for m in messages]


def one_line_connect_error(url: str, **settings: str) -> ConnectError:
    """The ConnectError that connecting to ``url`` raises; it must be one line."""

    async def main() -> None:
        async with connect(url, connect_timeout=1, settings=settings):
            pass

    with pytest.raises(ConnectError) as caught:
        run(main())
    assert "\n" not in str(caught.value)
    return caught.value
