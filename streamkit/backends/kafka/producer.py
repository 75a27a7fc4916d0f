"""Kafka producer: batched ``produce()`` with failures reported by delivery callbacks.

Only failed deliveries come back (``delivery.report.only.error``); ``flush()`` waits until
librdkafka holds nothing undelivered and raises if any delivery failed, so a lost message is an
error the caller sees, never a log line. While a broker is down librdkafka keeps the messages
and retries (up to ``message.timeout.ms``), which is what lets a relay ride out a restart.

The client is ``LibrdkafkaClient`` (librdkafka's C API, failures collected in C and read back by
``_raise_failures``) with the C codec, else confluent-kafka's ``Producer`` (failures through
``on_delivery``); see ``librdkafka``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import repeat as _repeat
from itertools import starmap as _starmap
from operator import attrgetter
from operator import length_hint as _length_hint
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from streamkit.backends.base import Payload, Producer, ProducerOptions
from streamkit.backends.kafka.config import describe_kafka_error
from streamkit.backends.kafka.librdkafka import LibrdkafkaClient
from streamkit.errors import BackendError, UsageError
from streamkit.formats import codec
from streamkit.formats.spans import Spans
from streamkit.message import Message, ReadTime

__all__ = ["KafkaProducer", "create_time", "json_field_key"]

_UNKNOWN_TOPIC = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
_headers_of = attrgetter("headers")
_stream_key_of = attrgetter("stream_key")
_payload_of = attrgetter("payload")
_key_of = attrgetter("key")
_timestamp_of = attrgetter("timestamp")
_EXACT_ITERATORS = (list, tuple)
"""Sequences whose iterators report exactly how many items are left."""

_ProduceLoop = Callable[
    [Callable[..., object], str, list[Any] | tuple[Any, ...], int, bool],
    tuple[int, BaseException | None],
]
_MessagesLoop = Callable[
    [str, list[Any] | tuple[Any, ...], int, bool], tuple[int, BaseException | None]
]
"""(topic, messages, start, same_topic) -> (index, error): ``kafka_produce`` bound to a
produce(), or ``LibrdkafkaClient.produce_messages``."""
_produce_loop: _ProduceLoop | None = None
"""``_speedups.kafka_produce`` with the C codec (see ``_produce_compiled``), None on the pure
path, where ``_produce_column_wise`` (the reference) runs instead."""
if codec.IMPLEMENTATION == "C":
    from streamkit.formats import _speedups

    _produce_loop = _speedups.kafka_produce


def json_field_key(payload: bytes, name: str) -> bytes | None:
    """The record key for ``--partition-by FIELD``: that top-level JSON field, or None.

    Strings are used as they are; other values as compact JSON, so ``7`` and ``"7"`` land
    together only if the producer wrote them alike. A payload that is not a JSON object has no
    key and goes wherever the partitioner puts keyless records (it is not dropped).
    """
    from streamkit.formats.jsonl import loads  # orjson: only for --partition-by FIELD

    try:
        document = loads(payload)
    except ValueError:
        return None
    if not isinstance(document, dict) or name not in document:
        return None
    value = document[name]
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def create_time(timestamp: int) -> int:
    """The record's CreateTime argument: 0 (the client stamps it as it takes the record, as
    ``kcat -P`` does) for a time streamkit filled in when reading (``ReadTime``), else the
    message's own time. The C loop also sends such records with the short
    ``produce(topic, value)`` when they have no key and no headers; 0 is what that defaults to.
    """
    return 0 if type(timestamp) is ReadTime else timestamp


def _drain(calls: Iterator[object]) -> None:
    """Run an iterator to its end in C, keeping nothing."""
    deque(calls, maxlen=0)


class KafkaProducer(Producer):
    def __init__(
        self,
        stream_key: str | None,
        client: Any,
        options: ProducerOptions,
        where: str,
        check_topic: Callable[[str], Any],
        known_topics: Iterable[str] = (),
    ) -> None:
        super().__init__(stream_key)
        self._client = client
        self._partition_by = options.partition_by
        self._where = where
        self._check_topic = check_topic
        # Topics known to exist (the streamer's connect-time listing, then each one checked):
        # producing to them asks the broker nothing first.
        self._known_topics: set[str] = set(known_topics)
        self._failures: list[str] = []
        self._failed = 0
        self._unknown_topic: str | None = None
        self._closed = False
        self._next_poll = 0.0
        # The batch loop in C: on librdkafka directly (LibrdkafkaClient), else over
        # confluent-kafka's produce() with the C codec; None: the pure column-wise path.
        self._produce_messages: _MessagesLoop | None = None
        self._collects_failures = isinstance(client, LibrdkafkaClient)
        if self._collects_failures:
            self._produce_messages = client.produce_messages
        elif _produce_loop is not None:
            self._produce_messages = partial(_produce_loop, client.produce)

    def on_delivery(self, error: Any, message: Any) -> None:
        """librdkafka's delivery report (failures only); runs inside poll()/flush()."""
        if error is None:
            return
        self._failed += 1
        topic = message.topic()
        if error.code() in _UNKNOWN_TOPIC:
            self._unknown_topic = topic
        if len(self._failures) < 3:
            self._failures.append(
                f"topic {topic!r} partition {message.partition()}: {describe_kafka_error(error)}"
            )

    def _raise_failures(self) -> None:
        if self._collects_failures:
            count, texts, unknown = self._client.failures()
            self._failed += count
            self._failures.extend(texts[: 3 - len(self._failures)])
            if unknown is not None:
                self._unknown_topic = unknown
        if self._unknown_topic is not None:
            topic, self._unknown_topic = self._unknown_topic, None
            raise BackendError(
                f"Kafka topic {topic!r} does not exist and the broker does not create topics "
                "automatically: create it first",
                self._where,
            )
        if self._failed:
            count, first = self._failed, self._failures[0]
            self._failed = 0
            self._failures.clear()
            raise BackendError(f"{count} message(s) could not be delivered ({first})", self._where)

    async def ensure_topic(self, topic: str) -> None:
        """Fail now, with a clear error, if ``topic`` does not exist (and cannot be created)."""
        if topic in self._known_topics:
            return
        await asyncio.to_thread(self._check_topic, topic)
        self._known_topics.add(topic)

    def _record(self, item: Payload) -> tuple[str, bytes, bytes | None, int, Any]:
        """(topic, value, key, timestamp or 0, headers or None) of one item."""
        if isinstance(item, Message):
            topic = self.stream_key or item.stream_key
            payload = item.payload
            key = item.key
            headers = list(item.headers) if item.headers else None
            timestamp = create_time(item.timestamp)
        else:
            if isinstance(item, str):
                payload = item.encode("utf-8")
            elif isinstance(item, bytes):
                payload = item
            elif isinstance(item, (bytearray, memoryview)):
                payload = bytes(item)
            else:
                raise TypeError(f"cannot send {type(item).__name__}: give bytes, str or Message")
            if self.stream_key is None:
                raise UsageError(
                    "this producer has no stream key: send Message items or name a topic",
                    self._where,
                )
            topic, key, headers, timestamp = self.stream_key, None, None, 0
        if self._partition_by is not None and self._partition_by != "key":
            key = json_field_key(payload, self._partition_by)
        return topic, payload, key, timestamp, headers

    async def send_many(self, items: Sequence[Payload]) -> None:
        if self._closed:
            raise UsageError("the producer is closed", self._where)
        by_field = self._partition_by is not None and self._partition_by != "key"
        if by_field:
            await self._produce_each(items, 0, by_field)
        elif self._produce_messages is not None:
            await self._produce_compiled(self._produce_messages, items)
        elif len(items) < 16 or not await self._produce_column_wise(items):
            await self._produce_each(items, 0, False)
        self._serve_reports()

    def takes_spans(self) -> bool:
        """Whether ``send_pieces`` can take a relay's spans: this client, one topic for all, and
        no key to compute from payloads."""
        return (
            self._collects_failures
            and self.stream_key is not None
            and self._partition_by in (None, "key")  # lines have no key: "key" changes nothing
            and not self._closed
        )

    async def send_pieces(self, pieces: Sequence[Spans | Message]) -> None:
        """A stdin → Kafka relay's batch (``LineDecoder.feed_spans``, when ``takes_spans()``):
        each ``Spans`` goes from its chunk to librdkafka with no Message made, each Message
        (a line the C loop left to the general parser) through ``send_many``, in order."""
        topic = self.stream_key
        assert topic is not None and self._collects_failures
        for piece in pieces:
            if type(piece) is Message:
                await self.send_many([piece])
                continue
            assert isinstance(piece, Spans)
            if topic not in self._known_topics:
                await self.ensure_topic(topic)
            start = 0
            while True:
                start, error = self._client.produce_spans(topic, piece.chunk, piece.spans, start)
                if error is None:
                    break
                if not isinstance(error, BufferError):
                    raise self._produce_error(topic, error)
                await asyncio.to_thread(self._client.poll, 0.05)  # wait for room
        self._serve_reports()

    def _serve_reports(self) -> None:
        now = time.monotonic()
        if now >= self._next_poll:
            # Serve delivery reports (failures only) every 20 ms, not every batch: a poll()
            # costs ~0.1 ms, a tenth of what producing a batch of 1,000 takes.
            self._next_poll = now + 0.02
            self._client.poll(0)
        self._raise_failures()

    async def _produce_column_wise(self, items: Sequence[Payload]) -> bool:
        """A batch of Messages for one topic without headers: ``produce()`` runs from ``starmap``.

        No Python frame per message (the loop's per-item work was a third of a relay's
        produce cost), and no argument tuple either: ``zip`` hands ``starmap`` one tuple that it
        refills for every call (``map`` built a tuple per call: 9 % more instructions per
        message). Returns False, having produced nothing, when the batch does not qualify;
        when librdkafka's queue fills or a record is refused midway, the position of the payload
        iterator says how many went out, and the rest goes through the per-item path.
        """
        try:
            # Messages have headers (maybe empty); bytes and str have none and go per item.
            if any(map(_headers_of, items)):
                return False
        except AttributeError:
            return False
        topic = self.stream_key
        if topic is None:
            topics = set(map(_stream_key_of, items))
            if len(topics) != 1:
                return False
            topic = topics.pop()
        if topic not in self._known_topics:
            await self.ensure_topic(topic)
        count = len(items)
        # zip() takes one call's arguments at a time, so after a refused call this iterator
        # has passed exactly the refused item: its length hint says where to resume.
        position = iter(items if type(items) in _EXACT_ITERATORS else list(items))
        try:
            _drain(
                _starmap(  # noqa: RUF058 (map would build an argument tuple per call)
                    self._client.produce,
                    zip(
                        _repeat(topic, count),
                        map(_payload_of, position),
                        map(_key_of, items),
                        _repeat(-1, count),
                        _repeat(None, count),
                        _repeat(None, count),
                        [0 if type(t) is ReadTime else t for t in map(_timestamp_of, items)],
                    ),
                )
            )
        except (BufferError, KafkaException):
            failed_at = count - _length_hint(position) - 1  # the record produce() refused
            await self._produce_each(items, failed_at, False)
        return True

    async def _produce_compiled(self, loop: _MessagesLoop, items: Sequence[Payload]) -> None:
        """The C loop produces the Messages, this recovers where it stops, as per item.

        ``loop`` stops at an item it leaves to Python (not a Message, or another topic than the
        first's when the producer has no stream key) and at a record ``produce()`` refused,
        returning that record's index and what ``produce()`` raised: the per-item path then
        sends just that record (waiting for room in librdkafka's queue, or failing with the
        topic named, as it would have), and the C loop goes on from the next one. Each record
        is therefore produced once, in order.
        """
        batch = items if isinstance(items, (list, tuple)) else list(items)
        count = len(batch)
        topic = self.stream_key
        same_topic = topic is None
        if topic is None:
            first = batch[0] if count else None
            if type(first) is not Message:
                await self._produce_each(batch, 0, False)
                return
            topic = first.stream_key
        if topic not in self._known_topics:
            await self.ensure_topic(topic)
        start = 0
        while start < count:
            start, error = loop(topic, batch, start, same_topic)
            if error is not None and not isinstance(error, (BufferError, KafkaException)):
                raise error
            if start < count:
                await self._produce_each(batch, start, False, start + 1)
                start += 1

    async def _produce_each(
        self, items: Sequence[Payload], start: int, by_field: bool, end: int | None = None
    ) -> None:
        produce = self._client.produce
        known = self._known_topics
        fixed = self.stream_key
        for index in range(start, len(items) if end is None else end):
            item = items[index]
            if type(item) is Message and not by_field:
                topic = fixed or item.stream_key
                if topic not in known:
                    await self.ensure_topic(topic)
                headers = list(item.headers) if item.headers else None
                timestamp = create_time(item.timestamp)
                try:
                    # Positional (topic, value, key, partition, on_delivery, callback,
                    # timestamp, headers): keyword arguments make produce() twice as slow.
                    produce(topic, item.payload, item.key, -1, None, None, timestamp, headers)
                    continue
                except BufferError:
                    args = (topic, item.payload, item.key, -1, None, None, timestamp, headers)
                except KafkaException as exc:
                    raise self._produce_error(topic, exc) from None
            else:
                topic, payload, key, timestamp, headers = self._record(item)
                if topic not in known:
                    await self.ensure_topic(topic)
                args = (topic, payload, key, -1, None, None, timestamp, headers)
                try:
                    produce(*args)
                    continue
                except BufferError:
                    pass
                except KafkaException as exc:
                    raise self._produce_error(topic, exc) from None
            await self._produce_when_room(args)

    async def _produce_when_room(self, args: tuple[Any, ...]) -> None:
        """librdkafka's queue is full: let it drain without blocking the loop, then retry."""
        while True:
            await asyncio.to_thread(self._client.poll, 0.05)
            try:
                self._client.produce(*args)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                raise self._produce_error(args[0], exc) from None

    def _produce_error(self, topic: str, exc: KafkaException) -> BackendError:
        return BackendError(
            f"cannot produce to topic {topic!r}: {describe_kafka_error(exc.args[0])}", self._where
        )

    async def flush(self) -> None:
        while await asyncio.to_thread(self._client.flush, 1.0) > 0:
            self._raise_failures()
        self._raise_failures()

    async def close(self) -> None:
        if self._closed:
            return
        await self.flush()
        self._closed = True
        if self._collects_failures:
            # Its threads end now, not whenever the object happens to be collected.
            await asyncio.to_thread(self._client.close)
