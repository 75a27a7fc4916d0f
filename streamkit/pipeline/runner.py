"""Runs a pipeline: source consumer → stages → (batcher → batch stage) → sink producer.

Tasks, one loop: a source task reading ``next_batch``, ``workers`` tasks per stage, an optional
batcher task, and one sink task writing with ``send_many``. The end of input travels as queue
closes: the source closes stage 1 when the consumer ends, the last worker of a stage closes the
next, the last stage finishes the collector, the sink writes what is left and returns. Stopping
is therefore just ``consumer.stop()`` (what the CLI does on SIGTERM/SIGINT): the consumer
drains, every stage drains, the sink flushes and commits, and nothing read is lost.

Commits happen after the outputs of a batch were written (and flushed, when the consumer needs
commits), strictly in read order, so a resumed consumer never skips an unwritten message.

A handler failure under the ``fail`` policy (or ``retry:N`` once exhausted) does not abort the
tasks: it records the failing input position (``Collector.cut_at``) and stops reading. Everything
already read keeps flowing, so every message before the first failing one (in input order) is
handled and its outputs written and committed; batches wholly after the cut are passed on
unprocessed, and nothing from the cut on is written. The run then raises the error of the
earliest failing message, whichever worker saw it first. The workers' side of this (their
loop, the handler calls and the error policy) is ``_StageWork`` in ``workers.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from streamkit.backends.base import ConnectOptions, Consumer, Producer
from streamkit.connect import open_streamer
from streamkit.errors import EndOfStream
from streamkit.message import Message
from streamkit.pipeline.batcher import Batcher
from streamkit.pipeline.chunks import Chunk, Entry, SourceBatch
from streamkit.pipeline.dispatch import Dispatch, make_dispatch
from streamkit.pipeline.flow import Window
from streamkit.pipeline.metrics import Metrics, Snapshot
from streamkit.pipeline.queues import QueueClosed
from streamkit.pipeline.resequencer import Collector
from streamkit.pipeline.topology import Stage, validate_stages
from streamkit.pipeline.workers import _StageRun, _StageWork
from streamkit.uri import parse_stream_uri

__all__ = ["OpenProducer", "Pipeline", "open_uri_producer"]

OpenProducer = Callable[[str], Awaitable[Producer]]
"""Opens the producer of a dead-letter stream URI."""


def _warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def open_uri_producer(uri: str, options: ConnectOptions | None = None) -> Producer:
    """Default dead-letter opener: the backend of ``uri`` and a producer for its key.

    Closing the producer closes the streamer too, so the pipeline owns one object per URI.
    """
    parsed = parse_stream_uri(uri)
    streamer = await open_streamer(parsed, options or ConnectOptions())
    producer = await streamer.producer(parsed.key)
    close = producer.close

    async def close_both() -> None:
        try:
            await close()
        finally:
            await streamer.close()

    producer.close = close_both  # type: ignore[method-assign]
    return producer


class Pipeline(_StageWork):
    """A reusable description; ``await pipeline.run(consumer, producer)`` processes a stream."""

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        ordered: bool = True,
        read_batch: int = 1000,
        window: int | None = None,
        warn: Callable[[str], None] = _warn,
        open_producer: OpenProducer = open_uri_producer,
    ) -> None:
        self.stages = list(stages)
        validate_stages(self.stages)
        self.ordered = ordered
        self.read_batch = read_batch
        self.window_size = window or 4 + 2 * max(stage.workers for stage in self.stages)
        self.warn = warn
        self.open_producer = open_producer
        self.metrics = Metrics()
        self.stopped = asyncio.Event()
        self._consumer: Consumer | None = None
        self._dead_letters: list[Producer] = []
        self._source_error: BaseException | None = None
        self._collector: Collector | None = None
        self._failure: BaseException | None = None

    def snapshot(self) -> Snapshot:
        return self.metrics.snapshot()

    def stop(self) -> None:
        """Stop reading; everything already read is processed and written. Idempotent."""
        self.stopped.set()
        if self._consumer is not None:
            self._consumer.stop()

    async def run(
        self,
        consumer: Consumer,
        producer: Producer,
        *,
        count: int | None = None,
        stats_interval: float | None = None,
        on_stats: Callable[[Snapshot], None] | None = None,
    ) -> Snapshot:
        """Process until the consumer ends (or ``count`` messages); returns the final metrics.

        Raises the first error (a HandlerError under the ``fail`` policy, a backend error) after
        writing and committing every output that was complete before it.
        """
        self._consumer = consumer
        if self.stopped.is_set():
            consumer.stop()
        metrics = self.metrics = Metrics()
        window = Window(self.window_size)
        collector = self._collector = Collector(ordered=self.ordered)
        self._failure = None
        runs = [
            _StageRun(stage, make_dispatch(stage.dispatch, stage.workers, stage.key))
            for stage in self.stages
        ]
        last = self.stages[-1]
        batcher = None
        if last.batch is not None:
            batcher = Batcher(last.batch.size, last.batch.timeout, last.batch.key)
        metrics.watch(lambda: self._depths(runs, batcher))
        metrics.watch_flow(lambda: (window.in_flight, collector.depth))
        opened: list[Producer] = []
        self._dead_letters = opened
        self._source_error = None
        try:
            for stage_run in runs:
                uri = stage_run.stage.on_error.dead_letter
                if uri is not None:
                    stage_run.dead_letters = await self.open_producer(uri)
                    opened.append(stage_run.dead_letters)
            await self._supervise(
                consumer, producer, runs, batcher, window, collector, count,
                stats_interval, on_stats,
            )  # fmt: skip
            if self._failure is not None:  # before any source error: it came earlier in input
                raise self._failure
            if self._source_error is not None:
                raise self._source_error
        finally:
            for stage_run in runs:
                with contextlib.suppress(Exception):
                    await stage_run.runner.close()
            for dead in opened:
                await dead.close()
        return metrics.snapshot()

    @staticmethod
    def _depths(runs: list[_StageRun], batcher: Batcher | None) -> dict[str, int]:
        depths = {f"{index}:{run.label}": run.dispatch.depth() for index, run in enumerate(runs)}
        if batcher is not None:
            depths["batcher"] = len(batcher.input) + batcher.held
        return depths

    async def _supervise(
        self,
        consumer: Consumer,
        producer: Producer,
        runs: list[_StageRun],
        batcher: Batcher | None,
        window: Window,
        collector: Collector,
        count: int | None,
        stats_interval: float | None,
        on_stats: Callable[[Snapshot], None] | None,
    ) -> None:
        first: Dispatch | Batcher = (
            batcher if batcher is not None and len(runs) == 1 else runs[0].dispatch
        )
        workers: list[asyncio.Task[None]] = [
            asyncio.create_task(self._read(consumer, first, window, count), name="source")
        ]
        for index, stage_run in enumerate(runs):
            feeds_batcher = batcher is not None and index == len(runs) - 2
            downstream: Dispatch | Batcher | Collector
            if feeds_batcher:
                assert batcher is not None
                downstream = batcher
            elif index + 1 < len(runs):
                downstream = runs[index + 1].dispatch
            else:
                downstream = collector
            for number in range(stage_run.stage.workers):
                queue = stage_run.dispatch.queue_for(number)
                workers.append(
                    asyncio.create_task(
                        self._work(stage_run, queue, downstream, collector),
                        name=f"{stage_run.label}#{number}",
                    )
                )
        if batcher is not None:
            workers.append(
                asyncio.create_task(
                    batcher.run(runs[-1].dispatch, collector.release, window), name="batcher"
                )
            )
        sink = asyncio.create_task(self._write(consumer, producer, collector, window), name="sink")
        stats = None
        if stats_interval:
            report = on_stats or (lambda snapshot: self.warn(snapshot.line()))
            stats = asyncio.create_task(self._report(stats_interval, report), name="stats")
        pending: set[asyncio.Task[None]] = {*workers, sink}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                failed = [task for task in done if not task.cancelled() and task.exception()]
                if failed:
                    error = failed[0].exception()
                    assert error is not None
                    await self._abort(consumer, workers, sink, collector)
                    raise error
        finally:
            for task in (*workers, sink):
                task.cancel()
            if stats is not None:
                stats.cancel()
            await asyncio.gather(*workers, sink, *([stats] if stats else []),
                                 return_exceptions=True)  # fmt: skip

    async def _abort(
        self,
        consumer: Consumer,
        workers: list[asyncio.Task[None]],
        sink: asyncio.Task[None],
        collector: Collector,
    ) -> None:
        """After a failure: stop everything, but write (and commit) what was already complete."""
        consumer.stop()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if not sink.done():
            collector.finish()
            with contextlib.suppress(Exception):
                await sink

    async def _report(self, interval: float, report: Callable[[Snapshot], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            report(self.metrics.snapshot())

    async def _read(
        self, consumer: Consumer, first: Dispatch | Batcher, window: Window, count: int | None
    ) -> None:
        metrics = self.metrics
        put = first.input.put if isinstance(first, Batcher) else first.put
        number = 0
        remaining = count
        try:
            while remaining is None or remaining > 0:
                await window.acquire()
                if self._failure is not None:
                    window.release()
                    break
                try:
                    messages = await consumer.next_batch(self.read_batch)
                except EndOfStream:
                    window.release()
                    break
                if remaining is not None:
                    if len(messages) > remaining:
                        messages = messages[:remaining]
                    remaining -= len(messages)
                if not messages:
                    window.release()
                    continue
                metrics.messages_in += len(messages)
                batch = SourceBatch(number, messages, time.monotonic())
                number += 1
                await put(Chunk(batch, cast(list[Entry], messages)))
        except Exception as error:  # e.g. a malformed line: finish what was read, then raise
            self._source_error = error
        finally:
            if isinstance(first, Batcher):
                first.input.close()
            else:
                first.close()

    async def _write(
        self, consumer: Consumer, producer: Producer, collector: Collector, window: Window
    ) -> None:
        metrics = self.metrics
        needs_commit = consumer.options.needs_commit
        written: dict[int, SourceBatch] = {}
        next_commit = 0
        while True:
            try:
                outputs, done = await collector.take()
            except QueueClosed:
                break
            if outputs:
                await producer.send_many(outputs)
                metrics.messages_out += len(outputs)
            if not done:
                continue
            now = time.monotonic()
            for batch in done:
                metrics.add_latency(now - batch.read_at)
            if needs_commit:
                await producer.flush()
                for dead in self._dead_letters:
                    await dead.flush()
                for batch in done:
                    written[batch.number] = batch
                sources: list[Message] = []
                cut = collector.cut
                while next_commit in written:
                    # every failure up to this batch is known: commit up to the first only
                    if cut is not None and next_commit >= cut[0]:
                        if next_commit == cut[0]:
                            sources.extend(written[next_commit].sources[: cut[1]])
                            next_commit = -1  # commit nothing more
                        break
                    sources.extend(written.pop(next_commit).sources)
                    next_commit += 1
                if sources:
                    await consumer.commit(sources)
            window.release(len(done))
        await producer.flush()
