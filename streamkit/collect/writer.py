"""The one task that talks to ``collect``'s output: requests in, batches out, answers back.

HTTP handlers never call the producer. Each queues its rows with a future and waits; the writer
takes everything queued since its last round as ONE ``send_many`` (so a thousand concurrent
single-message POSTs become one pipelined write), answers the ``accepted`` requests, and, if any
request asked for ``?ack=written`` (or a health probe waits), flushes once and answers those.
While it sends or flushes, the next round queues up: batching grows with load by itself.

Nothing is answered before the output took it, and ``close()`` sends whatever is still queued
before the producer is closed (flushed), so every answered and every queued request is written.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from streamkit.backends.base import Producer
from streamkit.collect.metrics import Metrics
from streamkit.errors import BackendError, StreamkitError
from streamkit.message import Message

__all__ = ["Row", "Writer"]

Row = tuple[str, int, int, bytes, bytes | None, tuple[tuple[str, bytes], ...]]
"""(stream key, shard, timestamp ms, payload, record key, headers): a message without its seq."""


@dataclass(eq=False)
class _Job:
    rows: list[Row]
    future: asyncio.Future[None]
    durable: bool
    """Answer only after a flush covered these rows (``?ack=written``, health probes)."""


@dataclass
class Writer:
    producer: Producer
    metrics: Metrics
    _queue: list[_Job] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _seq: dict[tuple[str, int], int] = field(default_factory=dict)
    _closing: bool = False
    _task: asyncio.Task[None] | None = None
    last_error: StreamkitError | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, rows: list[Row], durable: bool) -> asyncio.Future[None]:
        """Queue ``rows``; the future completes when the output took them (or failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(rows, future, durable))
        self._wake.set()
        return future

    async def close(self) -> None:
        """Write everything queued, then stop (the caller closes the producer after)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                if self._closing:
                    return
                continue
            jobs, self._queue = self._queue, []
            await self._round(jobs)
            if self._queue:
                self._wake.set()

    def _messages(self, jobs: list[_Job]) -> list[Message]:
        seqs = self._seq
        out: list[Message] = []
        append = out.append
        for job in jobs:
            for key, shard, ts, payload, record_key, headers in job.rows:
                seq = seqs.get((key, shard), 0)
                seqs[(key, shard)] = seq + 1
                append(Message(key, shard, seq, ts, payload, record_key, headers))
        return out

    async def _round(self, jobs: list[_Job]) -> None:
        messages = self._messages(jobs)
        try:
            if messages:
                await self.producer.send_many(messages)
        except Exception as exc:  # any failure must reach the waiting requests, not kill us
            error = _as_error(exc)
            self.last_error = error
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        self.metrics.written += len(messages)
        durable = []
        for job in jobs:
            if job.durable:
                durable.append(job)
            elif not job.future.done():
                job.future.set_result(None)
        if not durable:
            self.last_error = None
            return
        try:
            await self.producer.flush()
        except Exception as exc:
            error = _as_error(exc)
            self.last_error = error
            for job in durable:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        self.last_error = None
        self.metrics.flushed = self.metrics.written
        for job in durable:
            if not job.future.done():
                job.future.set_result(None)


def _as_error(exc: Exception) -> StreamkitError:
    if isinstance(exc, StreamkitError):
        return exc
    return BackendError(f"the output failed: {exc.__class__.__name__}: {exc}")
