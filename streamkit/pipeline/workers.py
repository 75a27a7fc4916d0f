"""What a stage's worker tasks do: take a unit, run the handler, apply the error policy.

``_StageRun`` is a stage at run time. ``_StageWork`` holds the worker loop and the handler-failure
bookkeeping, as methods of ``Pipeline`` (its base class): a failure under the ``fail`` policy
(or ``retry:N`` once exhausted) records the failing input position (``Collector.cut_at``) and
stops reading, while ``skip`` and ``dead-letter`` replace the failure and carry on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import cast

from streamkit.backends.base import Consumer, Producer
from streamkit.message import Message
from streamkit.pipeline.batcher import Batcher
from streamkit.pipeline.chunks import Chunk, Entry, Group
from streamkit.pipeline.dispatch import Dispatch
from streamkit.pipeline.handlers import Call, Failure, Outcome, Runner
from streamkit.pipeline.metrics import Metrics
from streamkit.pipeline.policy import dead_letter_payload, describe, handler_error
from streamkit.pipeline.queues import BoundedQueue, QueueClosed
from streamkit.pipeline.resequencer import Collector
from streamkit.pipeline.topology import Stage


class _StageRun:
    """A stage at run time: its dispatch, runner, and where its results go."""

    def __init__(self, stage: Stage, dispatch: Dispatch) -> None:
        self.stage = stage
        self.dispatch = dispatch
        self.runner: Runner = stage.runner()
        self.label = stage.label
        self.live_workers = stage.workers
        self.dead_letters: Producer | None = None


class _StageWork:
    """The worker side of ``Pipeline``: the attributes below are set by ``Pipeline.__init__``
    and ``Pipeline.run``."""

    metrics: Metrics
    warn: Callable[[str], None]
    _consumer: Consumer | None
    _collector: Collector | None
    _failure: BaseException | None

    async def _work(
        self,
        stage_run: _StageRun,
        queue: BoundedQueue[Chunk | Group],
        downstream: Dispatch | Batcher | Collector,
        collector: Collector,
    ) -> None:
        try:
            while True:
                try:
                    unit = await queue.get()
                except QueueClosed:
                    return
                if isinstance(unit, Group):
                    assert unit.first is not None
                    start, position = unit.first
                    if collector.after_cut(start.number):
                        collector.put_group(unit, None)
                        continue
                    results = await stage_run.runner.run([unit.messages])
                    if await self._settle(stage_run, [unit.messages], results):
                        self._fail(stage_run, unit.messages, results, start.number, position)
                        results[0] = None
                    collector.put_group(unit, cast(Entry, results[0]))
                    continue
                if collector.after_cut(unit.batch.number):
                    entries: list[Entry] = [None] * len(unit.items)
                    simple = False
                else:
                    entries, simple = await self._process(stage_run, unit)
                if isinstance(downstream, Collector):
                    downstream.put_chunk(unit, entries, simple)
                else:
                    out = Chunk(unit.batch, entries, start=unit.start, index=unit.index,
                                simple=simple)  # fmt: skip
                    if isinstance(downstream, Batcher):
                        await downstream.input.put(out)
                    else:
                        await downstream.put(out)
        finally:
            stage_run.live_workers -= 1
            if stage_run.live_workers == 0:
                if isinstance(downstream, Collector):
                    downstream.finish()
                elif isinstance(downstream, Batcher):
                    downstream.input.close()
                else:
                    downstream.close()

    async def _process(self, stage_run: _StageRun, chunk: Chunk) -> tuple[list[Entry], bool]:
        """Run the stage's handler over a chunk: entries aligned with the chunk's items."""
        items = chunk.items
        owners: list[int] | None = None
        calls: list[Call]
        if chunk.simple:
            calls = cast(list[Call], items)
        else:
            calls, owners = [], []
            for number, entry in enumerate(items):
                if entry is None:
                    continue
                if isinstance(entry, Message):
                    calls.append(entry)
                    owners.append(number)
                else:
                    calls.extend(entry)
                    owners.extend([number] * len(entry))
        results = await stage_run.runner.run(calls)
        kinds = set(map(type, results))
        if Failure in kinds:
            failed = await self._settle(stage_run, calls, results)
            if failed:
                positions = chunk.positions()
                first = failed[0]
                self._fail(
                    stage_run,
                    calls[first],
                    results[first:first + 1],
                    chunk.batch.number,
                    positions[first if owners is None else owners[first]],
                )  # fmt: skip
                for number in failed:
                    results[number] = None
            kinds = set(map(type, results))
        simple = kinds <= {Message}
        if not simple:
            self.metrics.dropped += results.count(None)
        if owners is None:
            return cast(list[Entry], results), simple
        entries: list[Entry] = [None] * len(items)
        for owner, result in zip(owners, results):
            entries[owner] = _merge(entries[owner], cast(Entry, result))
        return entries, False

    def _fail(
        self,
        stage_run: _StageRun,
        call: Call | list[Message],
        result: list[Outcome],
        number: int,
        position: int,
    ) -> None:
        """A call failed for good at input position (``number``, ``position``): stop reading,
        and if it is the earliest failure so far, it is the one the run raises."""
        failure = result[0]
        assert isinstance(failure, Failure)
        collector = self._collector
        assert collector is not None
        if collector.cut_at(number, position):
            self._failure = handler_error(stage_run.label, call, failure.error)
        if self._consumer is not None:
            self._consumer.stop()

    async def _settle(
        self, stage_run: _StageRun, calls: Sequence[Call], results: list[Outcome]
    ) -> list[int]:
        """Apply the stage's error policy: every Failure in ``results`` is replaced, except
        under ``fail``: those stay, and their indexes are returned (first in call order)."""
        policy = stage_run.stage.on_error
        metrics = self.metrics
        failed = [number for number, result in enumerate(results) if type(result) is Failure]
        if policy.retries:

            async def retry(number: int) -> None:
                for attempt in range(policy.retries):
                    await asyncio.sleep(policy.delay(attempt))
                    metrics.retried += 1
                    again = await stage_run.runner.run([calls[number]])
                    results[number] = again[0]
                    if type(again[0]) is not Failure:
                        return

            await asyncio.gather(*(retry(number) for number in failed))
            failed = [number for number in failed if type(results[number]) is Failure]
        if policy.action == "fail":
            metrics.failed += len(failed)
            return failed
        letters: list[Message] = []
        for number in failed:
            failure = results[number]
            assert isinstance(failure, Failure)
            call = calls[number]
            results[number] = None
            inputs = [call] if isinstance(call, Message) else call
            if policy.action == "skip":
                metrics.skipped += len(inputs)
                self.warn(
                    f"{stage_run.label}: skipped {describe(inputs[0])}"
                    + (f" and {len(inputs) - 1} more" if len(inputs) > 1 else "")
                    + f": {type(failure.error).__name__}: {failure.error}"
                )
                continue
            for message in inputs:
                letters.append(
                    Message(
                        message.stream_key,
                        message.shard_id,
                        message.seq,
                        message.timestamp,
                        dead_letter_payload(message, failure.error, stage_run.label),
                        message.key,
                        message.headers,
                    )
                )
        if letters:
            assert stage_run.dead_letters is not None
            await stage_run.dead_letters.send_many(letters)
            metrics.dead_lettered += len(letters)
        return []


def _merge(current: Entry, new: Entry) -> Entry:
    if current is None:
        return new
    if new is None:
        return current
    merged = [current] if isinstance(current, Message) else list(current)
    if isinstance(new, Message):
        merged.append(new)
    else:
        merged.extend(new)
    return merged
