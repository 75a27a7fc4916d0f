"""``memory://NAME/key``: an in-process broker for library users, tests and pipelines.

The same NAME within one process is the same broker (``memory://`` alone is ``default``), so
stages of a pipeline find each other by URI without a server. The log, retention and
backpressure live in ``broker``; this module adapts them to the Streamer / Producer /
Consumer protocol.

Memory consumers are live: they follow by default, and with ``follow=False`` they end at the
end of the stream as it was when they were opened. With no ``offset`` they start at the oldest
message still held, so a consumer opened just after a producer ran loses nothing.

Library extras beyond the common protocol::

    streamer.create_topic("orders", max_messages=10_000, ttl="10m")   # retention
    streamer.create_topic("jobs", capacity=1_000)                      # backpressure
    streamer.stats("orders")            # TopicStats: depth, subscribers, groups' lag, evicted
    streamer.stat()                     # StatReport of every topic: the model `stat` shares
    consumer.missed, consumer.lag       # what this consumer lost to retention, and is behind
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Mapping, Sequence

from streamkit.backends.base import (
    ConnectOptions,
    Consumer,
    ConsumerOptions,
    Payload,
    Producer,
    ProducerOptions,
    Streamer,
    reject_unsupported,
)
from streamkit.backends.memory.broker import (
    Broker,
    Cursor,
    Group,
    Topic,
    TopicConfig,
    TopicStats,
    drop_broker,
    get_broker,
)
from streamkit.errors import EndOfStream, UsageError
from streamkit.message import Message, now_ms, validate_stream_key
from streamkit.stats import StatReport, missing
from streamkit.timeutil import parse_duration
from streamkit.uri import StreamUri

__all__ = [
    "MemoryConsumer",
    "MemoryProducer",
    "MemoryStreamer",
    "TopicStats",
    "drop_broker",
    "open_streamer",
]

_CONSUMER_OPTIONS = {"offset", "since", "until", "mode", "group", "follow", "consumer_name"}
_SETTINGS = ("max_messages", "ttl", "capacity")


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> MemoryStreamer:
    return MemoryStreamer(uri, options)


class MemoryStreamer(Streamer):
    """A handle on the broker named by the URI; closing it closes what it opened, not the broker.

    ``-X max_messages=N``, ``-X ttl=10s`` or ``-X capacity=N`` (``ConnectOptions.settings``) set
    the options of the topics this streamer creates on first use.
    """

    def __init__(self, uri: StreamUri, options: ConnectOptions) -> None:
        super().__init__(uri, options)
        self.broker: Broker = get_broker(uri.location)
        self._where = f"memory://{uri.location}"
        self._default = _config_from_settings(options.settings)
        self._opened: weakref.WeakSet[MemoryProducer | MemoryConsumer] = weakref.WeakSet()

    def create_topic(
        self,
        name: str,
        *,
        max_messages: int | None = None,
        ttl: float | str | None = None,
        capacity: int | None = None,
    ) -> TopicStats:
        """Create a topic with its memory bound (idempotent for the same options).

        ``max_messages``/``ttl`` make a retention topic (oldest evicted, slow readers skip and
        count ``missed``); otherwise it is a backpressure topic of ``capacity`` messages
        (producers wait for the slowest active reader). UsageError if the topic exists with
        other options.
        """
        seconds = parse_duration(ttl, what="ttl") if isinstance(ttl, str) else ttl
        config = TopicConfig(max_messages=max_messages, ttl=seconds, capacity=capacity)
        return self.broker.create_topic(name, config).stats()

    def stats(self, name: str) -> TopicStats:
        """Depth, subscribers, per-group lag and evicted count of one topic."""
        return self.broker.stats(name)

    def topics(self) -> list[str]:
        return sorted(self.broker.topics)

    def stat(self, keys: Sequence[str] = ()) -> StatReport:
        """``stats()`` of the named topics (default: all) as ``streamkit.stats.StatReport``."""
        names = list(keys) or self.topics()
        missing(names, self.topics(), "no memory topic by that name", self._where)
        streams = tuple(self.broker.stats(name).to_stream() for name in names)
        return StatReport(self._where, "memory", now_ms(), streams)

    def _topic(self, name: str) -> Topic:
        return self.broker.topic(validate_stream_key(name, where=self._where), self._default)

    async def producer(
        self, stream_key: str | None = None, options: ProducerOptions | None = None
    ) -> MemoryProducer:
        if options is not None:
            reject_unsupported(options, "memory", set())
        topic = self._topic(stream_key) if stream_key is not None else None
        producer = MemoryProducer(self, stream_key, topic)
        self._opened.add(producer)
        return producer

    async def _open_consumer(
        self, stream_keys: tuple[str, ...], options: ConsumerOptions
    ) -> MemoryConsumer:
        reject_unsupported(options, "memory", _CONSUMER_OPTIONS)
        keys = stream_keys or tuple(sorted(self.broker.topics))
        if not keys:
            raise UsageError(
                "no stream keys given and the broker has no streams yet; name the streams "
                f"to read, e.g. {self._where}/KEY",
                self._where,
            )
        consumer = MemoryConsumer(options, [self._topic(k) for k in keys])
        self._opened.add(consumer)
        return consumer

    async def close(self) -> None:
        for item in list(self._opened):
            await item.close()


class MemoryProducer(Producer):
    """Appends batches to a topic; ``send_many`` waits only on a full backpressure topic."""

    def __init__(self, streamer: MemoryStreamer, stream_key: str | None, topic: Topic | None):
        super().__init__(stream_key)
        self._streamer = streamer
        self._topic = topic
        self._closed = False

    async def send_many(self, items: Sequence[Payload]) -> None:
        if self._closed:
            raise UsageError("send on a closed producer", self._streamer._where)
        if self._topic is not None:
            await self._topic.append(items)
            return
        by_key: dict[str, list[Payload]] = {}
        for item in items:
            if not isinstance(item, Message):
                raise UsageError(
                    "this producer has no stream key, so it can only send Messages (which "
                    "carry theirs); open it with a key to send bytes or str",
                    self._streamer._where,
                )
            by_key.setdefault(item.stream_key, []).append(item)
        for key, batch in by_key.items():
            await self._streamer._topic(key).append(batch)

    async def flush(self) -> None:
        """Appends are visible to consumers as soon as ``send_many`` returns: nothing to await."""

    async def close(self) -> None:
        self._closed = True


class _Source:
    """One topic as one consumer sees it: an own cursor, or a membership of a group."""

    __slots__ = ("attached", "cursor", "done", "group", "limit", "ranges", "topic", "until")

    def __init__(
        self, topic: Topic, options: ConsumerOptions, group: Group | None, start: int
    ) -> None:
        self.topic = topic
        self.until = options.until
        self.limit = topic.end if options.follow is False else None
        self.group = group
        self.ranges: deque[tuple[int, int]] = deque()
        self.done = False
        self.attached = True
        self.cursor: Cursor
        if group is None:
            self.cursor = Cursor(start)
            self.cursor.evicted_to(topic.head)
            topic.cursors.add(self.cursor)
        else:
            self.cursor = group
            group.members += 1
            group.active = True

    def take(self, n: int) -> list[Message]:
        """Up to ``n`` ready messages; marks ``done`` at the limit or past ``until``."""
        topic = self.topic
        topic.expire()
        group = self.group
        redelivering = group is not None and bool(group.redeliver)
        if redelivering:
            assert group is not None
            pos, stop = group.redeliver[0]
        else:
            pos, stop = self.cursor.pos, topic.end
        if self.limit is not None:
            stop = min(stop, self.limit)
            if pos >= stop and not redelivering:
                self.done = True
                return []
        batch = topic.read(pos, min(n, stop - pos)) if stop > pos else []
        if batch and self.until is not None:
            keep = topic.cut_until(batch, self.until)
            if keep < len(batch):
                self.done = True
                batch = batch[:keep]
        if not batch:
            return batch
        after = pos + len(batch)
        if redelivering:
            assert group is not None
            if after >= group.redeliver[0][1]:
                group.redeliver.popleft()
            else:
                group.redeliver[0] = (after, group.redeliver[0][1])
        else:
            self.cursor.pos = after
            if after > topic.delivered:
                topic.delivered = after
        if group is not None and group.commits:
            self.ranges.append((pos, after))
        else:
            topic.moved()
        return batch

    def lag(self) -> int:
        """Messages held that this reader (or its group) still has to deliver."""
        ahead = max(0, self.topic.end - self.cursor.pos)
        if self.group is not None:
            ahead += sum(end - start for start, end in self.group.redeliver)
        return ahead

    def commit(self, seqs: Sequence[int]) -> None:
        group = self.group
        if group is None or not group.commits:
            return
        group.ack(seqs)
        ranges = self.ranges
        while ranges and ranges[0][1] <= group.committed:
            ranges.popleft()
        self.topic.moved()

    def detach(self) -> None:
        """Stop holding the topic back; a group member hands back what it did not ack."""
        if not self.attached:
            return
        self.attached = False
        group = self.group
        if group is None:
            self.cursor.active = False
        else:
            group.members -= 1
            if group.commits:
                group.give_back(self.ranges)
                self.ranges.clear()
            group.active = group.members > 0
        self.topic.changed()


class MemoryConsumer(Consumer):
    """Reads one or more topics; independent unless in a group, where members share messages."""

    def __init__(self, options: ConsumerOptions, topics: list[Topic]) -> None:
        super().__init__(options)
        self._sources: list[_Source] = []
        for topic in topics:
            start = topic.start_position(options.offset, options.since)
            group = None
            if options.group is not None:
                group = topic.group(options.group, options.mode, start)
            self._sources.append(_Source(topic, options, group, start))
        self._turn = 0
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def missed(self) -> int:
        """Messages evicted (retention) before this consumer, or its group, read them."""
        return sum(s.cursor.missed for s in self._sources)

    @property
    def lag(self) -> int:
        """Messages in the topics that this consumer (or its group) has yet to deliver."""
        return sum(s.lag() for s in self._sources)

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        sources = self._sources
        while True:
            if self._stopping or self._closed:
                raise EndOfStream
            if len(sources) == 1:
                batch = sources[0].take(max_messages)
            else:
                batch = self._take_round(max_messages)
            if batch:
                return batch
            if all(s.done for s in sources):
                for source in sources:
                    if source.group is None:
                        source.detach()
                raise EndOfStream
            await self._wait()

    def _take_round(self, n: int) -> list[Message]:
        """Fill a batch from several topics, starting with a different one each time (fair)."""
        sources = self._sources
        self._turn = (self._turn + 1) % len(sources)
        batch: list[Message] = []
        for i in range(len(sources)):
            source = sources[(self._turn + i) % len(sources)]
            if not source.done:
                batch.extend(source.take(n - len(batch)))
                if len(batch) >= n:
                    break
        return batch

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        live = [s.topic for s in self._sources if not s.done]
        for topic in live:
            topic.wait_for_data(waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            for topic in live:
                topic.forget(waiter)

    async def commit(self, messages: Sequence[Message]) -> None:
        if not messages or self.options.group is None:
            return
        if len(self._sources) == 1:
            self._sources[0].commit([m.seq for m in messages])
            return
        by_key: dict[str, list[int]] = {}
        for message in messages:
            by_key.setdefault(message.stream_key, []).append(message.seq)
        for source in self._sources:
            seqs = by_key.get(source.topic.name)
            if seqs:
                source.commit(seqs)

    def stop(self) -> None:
        super().stop()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for source in self._sources:
            source.detach()
        self._wake()


class _MemoryStatSource:
    """``open_stat_source`` for library callers; the CLI refuses memory:// (in-process only)."""

    def __init__(self, streamer: MemoryStreamer, keys: tuple[str, ...]) -> None:
        self.streamer = streamer
        self.keys = keys

    async def collect(self) -> StatReport:
        return self.streamer.stat(self.keys)

    async def close(self) -> None:
        await self.streamer.close()


async def open_stat_source(uri: StreamUri, options: ConnectOptions) -> _MemoryStatSource:
    return _MemoryStatSource(MemoryStreamer(uri, options), uri.keys)


def _config_from_settings(settings: Mapping[str, str]) -> TopicConfig:
    """Topic options from ``-X key=value`` settings; unknown keys are refused, not ignored."""
    values = dict(settings)
    unknown = sorted(set(values) - set(_SETTINGS))
    if unknown:
        raise UsageError(
            f"the memory backend has no setting {unknown[0]!r} (known: {', '.join(_SETTINGS)})",
            "-X",
        )
    try:
        max_messages = int(values["max_messages"]) if "max_messages" in values else None
        capacity = int(values["capacity"]) if "capacity" in values else None
    except ValueError as exc:
        raise UsageError(f"not a whole number: {exc}", "-X") from None
    ttl = parse_duration(values["ttl"], what="ttl") if "ttl" in values else None
    return TopicConfig(max_messages=max_messages, ttl=ttl, capacity=capacity)
