"""Kafka consumer: ``consume()`` in batches off the event loop, positions, ends, commits.

Realtime mode assigns partitions itself (no group join, no commits). Resumable and
load-balanced modes subscribe in a consumer group and commit only what ``commit()`` is given,
i.e. what was written downstream, storing offset seq+1 (the next message to read).

``--no-follow`` stops each partition at the end fixed when the run starts (``fetch_ends``), also
while producers keep writing and also in a group, where a member stops once every partition it
was given is done. ``--until`` finishes a partition at its first message after the bound, or at
its end once the bound lies in the past.

Start-up (ends, start positions, assign or subscribe, the group callbacks) and the state shared
by both halves are in ``positions.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import (
    KafkaError,
    KafkaException,
    TopicPartition,
)

from streamkit.backends.kafka.config import describe_kafka_error
from streamkit.backends.kafka.identity import topic_ids
from streamkit.backends.kafka.positions import (
    _OUTAGE,
    TP,
    ConsumerPositions,
    _name,
    fetch_ends,
    list_partitions,
    take,
    watermarks,
)
from streamkit.errors import BackendError, DataError, EndOfStream
from streamkit.formats import codec
from streamkit.formats.kafka_lines import kafka_lines
from streamkit.message import Message, now_ms

_lines: Callable[
    [list[Any], int, str | None, dict[Any, int] | None, str | None, bytearray], int
] = kafka_lines
"""``_speedups.kafka_lines`` with the C codec, else its pure twin (see ``_lines_plain``)."""
_records: Callable[[list[Any], int, str | None, dict[Any, int] | None, list[Message]], int] | None
_records = None
"""``_speedups.kafka_records`` with the C codec (see ``_convert_plain``), None on the pure path."""
if codec.IMPLEMENTATION == "C":
    from streamkit.formats import _speedups

    _records = _speedups.kafka_records
    _lines = _speedups.kafka_lines

__all__ = ["KafkaConsumer"]

_WAIT = 0.25
"""Seconds one blocking consume waits, so that ``stop()`` is noticed promptly."""

_TRANSIENT = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
    KafkaError.OFFSET_OUT_OF_RANGE,
    KafkaError._AUTO_OFFSET_RESET,
}


def _encode_into(sink: bytearray, messages: list[Message], out_key: str | None) -> int:
    """``sink += encode_lines(messages, out_key)``; for a message the format cannot carry,
    the lines of the messages before it, then its DataError (as the stdio producer writes)."""
    if not messages:
        return 0
    try:
        sink += codec.encode_lines(messages, out_key)
    except DataError:
        for index in range(len(messages)):
            try:
                codec.encode_lines(messages[index : index + 1], out_key)
            except DataError:
                if index:
                    sink += codec.encode_lines(messages[:index], out_key)
                raise
        raise
    return len(messages)


def _headers(headers: list[tuple[str, bytes | None]]) -> tuple[tuple[str, bytes], ...]:
    """Record headers as Message carries them; a null header value becomes empty bytes."""
    return tuple((name, b"" if value is None else value) for name, value in headers)


class KafkaConsumer(ConsumerPositions):
    # -- reading --------------------------------------------------------------------------

    def _all_done(self) -> bool:
        if self._ends is None and self._until is None:
            return False
        if self._assigned is None:
            return False
        return self._assigned <= self._done

    def _event(self, message: Any) -> None:
        """A non-message from consume(): end of a partition, or a broker condition."""
        error = message.error()
        code = error.code()
        tp = (message.topic(), message.partition())
        if code == KafkaError._PARTITION_EOF:
            position = message.offset()
            if self._ends is not None and position >= self._ends.get(tp, 0):
                self._finish(tp)
            if self._until is not None and self._until < now_ms():
                self._finish(tp)
            return
        if code in _OUTAGE:
            self._suspect = True
        if error.fatal() or code not in _TRANSIENT:
            raise BackendError(f"Kafka consumer failed: {describe_kafka_error(error)}", self._where)
        if code not in self._reported:
            # librdkafka reconnects and re-fetches by itself; say so once per kind.
            self._reported.add(code)
            self._log(f"{describe_kafka_error(error)} (retrying)")

    def _convert(self, raw: list[Any]) -> list[Message]:
        if self._since is None and self._until is None:
            return self._convert_plain(raw)
        return self._convert_window(raw)

    def _convert_plain(self, raw: list[Any]) -> list[Message]:
        """The hot path: every message, or (``-e``) every message before the fixed ends.

        With the C codec, ``kafka_records`` converts runs of plain records (no error, headers
        or null value, before the partition's last offset); each record it stops at goes
        through ``_plain_python``, the reference, and C resumes after it."""
        single = self._topics[0] if len(self._topics) == 1 else None
        last = self._last_offsets(single)
        if _records is None or single is None:
            return self._plain_python(raw, single, last, [])
        out: list[Message] = []
        index, size = 0, len(raw)
        while True:
            index = _records(raw, index, single, last, out)
            if index >= size:
                return out
            self._plain_python(raw[index : index + 1], single, last, out)
            index += 1

    def _last_offsets(self, single: str | None) -> dict[Any, int] | None:
        """With ``-e``: the last offset to deliver per partition, keyed by the partition number
        alone for one topic (no tuple per message); None while following."""
        ends = self._ends
        if ends is None:
            return None
        last = self._last
        if last is None:
            last = {(p if single else (t, p)): end - 1 for (t, p), end in ends.items()}
            self._last = last
        return last

    def _plain_python(
        self, raw: list[Any], single: str | None, last: dict[Any, int] | None, out: list[Message]
    ) -> list[Message]:
        append = out.append
        ends = self._ends
        if ends is None or last is None:
            for m in raw:
                if m.error() is not None:
                    self._event(m)
                    continue
                headers = m.headers()
                append(
                    Message(
                        single or m.topic(),
                        m.partition(),
                        m.offset(),
                        m.timestamp()[1],
                        m.value() or b"",
                        m.key(),
                        _headers(headers) if headers else (),
                    )
                )
            return out
        for m in raw:
            if m.error() is not None:
                self._event(m)
                continue
            topic = single or m.topic()
            partition = m.partition()
            offset = m.offset()
            if offset >= last.get(partition if single else (topic, partition), -1):
                # The last message before the end (deliver, then done) or one after it.
                tp = (topic, partition)
                if tp in self._done:
                    continue
                self._finish(tp)
                if offset >= ends.get(tp, 0):
                    continue
            headers = m.headers()
            append(
                Message(
                    topic,
                    partition,
                    offset,
                    m.timestamp()[1],
                    m.value() or b"",
                    m.key(),
                    _headers(headers) if headers else (),
                )
            )
        return out

    def _convert_window(self, raw: list[Any]) -> list[Message]:
        """With --since/--until: filter by timestamp, finish partitions past ``until``."""
        out: list[Message] = []
        append = out.append
        ends, since, until, done = self._ends, self._since, self._until, self._done
        for m in raw:
            if m.error() is not None:
                self._event(m)
                continue
            tp = (m.topic(), m.partition())
            if tp in done:
                continue
            offset = m.offset()
            if ends is not None and offset >= ends.get(tp, 0):
                self._finish(tp)
                continue
            timestamp = m.timestamp()[1]
            if until is not None and timestamp > until:
                self._finish(tp)
                continue
            if ends is not None and offset + 1 >= ends.get(tp, 0):
                self._finish(tp)
            if since is not None and timestamp < since:
                continue
            headers = m.headers()
            append(
                Message(
                    tp[0],
                    tp[1],
                    offset,
                    timestamp,
                    m.value() or b"",
                    m.key(),
                    _headers(headers) if headers else (),
                )
            )
        return out

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        while True:
            batch = self._convert(await self._take(max_messages))
            if batch:
                return batch

    async def next_lines(self, max_messages: int, out_key: str | None, sink: bytearray) -> int:
        """Like ``next_batch``, but the line format of the batch (what ``encode_lines(batch,
        out_key)`` gives) is appended to ``sink``; returns how many messages it holds.

        The relay's direct path (``relay.py``): no Message per record where no user code sees
        them. Raises DataError, as the stdio producer does, for a message the line format
        cannot carry, after appending the lines of the messages before it; an error raised
        while taking the batch apart (``_event``) leaves ``sink`` as it was, as ``next_batch``
        then delivers nothing of the batch.
        """
        while True:
            raw = await self._take(max_messages)
            start = len(sink)
            try:
                if self._since is None and self._until is None:
                    count = self._lines_plain(raw, out_key, sink)
                else:
                    count = _encode_into(sink, self._convert_window(raw), out_key)
            except DataError:
                raise
            except BaseException:
                del sink[start:]
                raise
            if count:
                return count

    async def _take(self, max_messages: int) -> list[Any]:
        """The next records (or events) from librdkafka; EndOfStream once stopped or done."""
        client = self._client
        if self._pending is None:
            # librdkafka's local queue answers without ever suspending this task, so a
            # relay with a backlog would never let the loop run a signal's stop(): yield
            # once per batch (microseconds) so SIGTERM ends reading within one batch.
            await asyncio.sleep(0)
            if self._stopping or self._all_done():
                raise EndOfStream
            if self._suspect and time.monotonic() - self._last_check > 0.5:
                self._last_check = time.monotonic()
                await asyncio.to_thread(self._recheck_topics)
            raw: list[Any] = client.consume(max_messages, 0)
            if not raw:
                loop = asyncio.get_running_loop()
                self._pending = loop.run_in_executor(None, take, client, max_messages, _WAIT)
        if self._pending is not None:
            # Shielded: a cancelled caller must not strand messages already taken.
            raw = await asyncio.shield(self._pending)
            self._pending = None
        if self._fatal is not None:
            raise BackendError(self._fatal, self._where)
        return raw

    def _lines_plain(self, raw: list[Any], out_key: str | None, sink: bytearray) -> int:
        """``_convert_plain`` then ``encode_lines``, without the Messages: ``_lines`` (C, or
        its pure twin) writes runs of plain records; each record it stops at goes through
        ``_plain_python`` and ``encode_lines``, the reference, and ``_lines`` resumes after
        it. A message the format cannot carry stops the writing, not the taking apart: the
        rest of the batch still goes through ``_plain_python`` (ends, events), then the
        DataError is raised."""
        single = self._topics[0] if len(self._topics) == 1 else None
        last = self._last_offsets(single)
        if single is None and last is not None:  # ``last`` keyed by (topic, partition)
            return _encode_into(sink, self._plain_python(raw, None, last, []), out_key)
        count, index, size = 0, 0, len(raw)
        while True:
            end = _lines(raw, index, single, last, out_key, sink)
            count += end - index
            if end >= size:
                return count
            one = self._plain_python(raw[end : end + 1], single, last, [])
            try:
                count += _encode_into(sink, one, out_key)
            except DataError:
                self._plain_python(raw[end + 1 :], single, last, [])
                raise
            index = end + 1

    def lag(self) -> int | None:
        """Records between the positions and the ends of the assigned partitions, from the
        watermarks librdkafka cached from its fetches (no request): for ``relay --stats``.
        None while not known (nothing assigned or fetched yet)."""
        client = self._client
        if client is None or self._closed:
            return None
        try:
            assigned = client.assignment()
            if not assigned:
                return None
            total = 0
            for tp in client.position(assigned):
                low, high = client.get_watermark_offsets(tp, cached=True)
                if high is None or high < 0:
                    return None
                total += max(0, high - (tp.offset if tp.offset >= 0 else low))
            return total
        except KafkaException:
            return None

    def _recheck_topics(self) -> None:
        """After an outage: read any topic that came back with a new id from its first offset."""
        if self._topic_ids is None:
            self._suspect = False
            return
        ids = topic_ids(self._admin, self._topics, min(self._timeout, 1.0))
        if ids is None:
            return  # still down, or not re-created yet: look again later
        self._suspect = False
        changed = {t for t in self._topics if ids.get(t) != self._topic_ids.get(t)}
        self._topic_ids = ids
        if not changed:
            return
        client = self._client
        partitions = list_partitions(self._admin, sorted(changed), self._timeout, self._where)
        marks = watermarks(client, partitions, self._timeout)
        owned = self._assigned or set()
        known = set(self._partitions)
        for topic in sorted(changed):
            self._log(f"topic {topic} was re-created (new topic id): reading it from offset 0 on")
        if self._ends is not None:
            self._ends.update(fetch_ends(self._config, partitions, self._timeout))
            self._last = None
        for tp in partitions:
            self._done.discard(tp)
            position = TopicPartition(tp[0], tp[1], marks[tp][0])
            if tp in owned:
                try:
                    client.seek(position)
                except KafkaException as exc:
                    self._log(f"seek of {_name(tp)} failed: {describe_kafka_error(exc.args[0])}")
            elif not self._group_mode and tp not in known:
                client.incremental_assign([position])
                self._partitions.append(tp)
                owned.add(tp)

    async def commit(self, messages: Sequence[Message]) -> None:
        if not self._group_mode or not messages:
            return
        offsets: dict[TP, int] = {}
        for message in messages:
            tp = (message.stream_key, message.shard_id)
            if message.seq + 1 > offsets.get(tp, -1):
                offsets[tp] = message.seq + 1
        self._commits.update(offsets)
        try:
            self._client.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            # Typically a rebalance took the partition: another member re-reads (at-least-once).
            self._log(f"commit failed: {describe_kafka_error(exc.args[0])}")

    def _close_blocking(self) -> None:
        client = self._client
        if client is None:
            return
        if self._group_mode and self._commits:
            owned = self._assigned or set()
            final = [
                TopicPartition(t, p, o) for (t, p), o in self._commits.items() if (t, p) in owned
            ]
            if final:
                try:
                    client.commit(offsets=final, asynchronous=False)
                except KafkaException as exc:
                    self._log(f"final commit failed: {describe_kafka_error(exc.args[0])}")
        client.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pending is not None:
            try:
                await asyncio.shield(self._pending)
            finally:
                self._pending = None
        await asyncio.to_thread(self._close_blocking)
