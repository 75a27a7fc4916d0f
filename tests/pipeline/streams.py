"""In-test source and sink: Consumer/Producer subclasses of the backend protocol (no servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from streamkit.backends.base import Consumer, ConsumerOptions, Payload, Producer
from streamkit.errors import EndOfStream
from streamkit.message import Message


def make_messages(count: int, *, key: str = "in", payload: str = "m{}") -> list[Message]:
    return [
        Message(key, 0, n, 1_700_000_000_000 + n, payload.format(n).encode()) for n in range(count)
    ]


class ListConsumer(Consumer):
    """Serves messages from an iterator in batches of ``batch`` (lazily: memory stays flat)."""

    def __init__(
        self,
        messages: Iterator[Message] | Sequence[Message],
        *,
        batch: int = 100,
        options: ConsumerOptions | None = None,
        delay: float = 0.0,
    ) -> None:
        super().__init__(options or ConsumerOptions())
        self._messages = iter(messages)
        self._batch = batch
        self._delay = delay
        self.read = 0
        self.committed: list[Message] = []

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        if self._stopping:
            raise EndOfStream
        if self._delay:
            await asyncio.sleep(self._delay)
        out: list[Message] = []
        for message in self._messages:
            out.append(message)
            if len(out) >= min(max_messages, self._batch):
                break
        if not out:
            raise EndOfStream
        self.read += len(out)
        return out

    async def commit(self, messages: Sequence[Message]) -> None:
        self.committed.extend(messages)


class ListProducer(Producer):
    """Records what it is sent; ``delay`` s per batch and ``per_message`` s per message slow it."""

    def __init__(self, *, delay: float = 0.0, per_message: float = 0.0, keep: bool = True) -> None:
        super().__init__(None)
        self.sent: list[Message] = []
        self.count = 0
        self.batches = 0
        self.flushes = 0
        self._delay = delay
        self._per_message = per_message
        self._keep = keep

    async def send_many(self, items: Sequence[Payload]) -> None:
        if self._delay or self._per_message:
            await asyncio.sleep(self._delay + self._per_message * len(items))
        self.count += len(items)
        self.batches += 1
        if self._keep:
            for item in items:
                assert isinstance(item, Message)
                self.sent.append(item)

    async def flush(self) -> None:
        self.flushes += 1

    def payloads(self) -> list[bytes]:
        return [m.payload for m in self.sent]
