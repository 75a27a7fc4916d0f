"""One topic of the in-process memory broker: its log, bounds (backpressure or retention), wake-ups.

Each topic is one append-only log held as a Python list plus the sequence number of its first
element, so a batch read is one list slice and an append is one ``list.extend``. Messages leave
the log only at the head, so "where does this reader stand" is a single integer (a cursor).

A topic bounds its memory in one of two ways, chosen when it is created:

``backpressure`` (no retention options given): the log keeps at most ``capacity`` messages. When
it is full, messages that were delivered to some reader and that every active reader has passed
are dropped from the head; otherwise the producer waits until readers move on. So no message is
dropped before anyone read it, an attached reader loses nothing, and a late reader still finds
the last ``capacity`` messages. With no reader at all, a producer waits once the topic is full.

``retention`` (``max_messages`` and/or ``ttl`` given): producers never wait. The oldest messages
are evicted once there are more than ``max_messages`` or once they are older than ``ttl``
seconds (by arrival time). A reader standing on an evicted message jumps to the head and the
jump is added to its ``missed`` count.

Wake-ups are one future per waiting reader (or writer) per batch, resolved by the other side
after it changed the log; nothing here runs per message except building the Message objects.
The broker belongs to one event loop at a time and is not thread-safe, like asyncio itself.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from streamkit.backends.base import Payload, payload_bytes
from streamkit.backends.memory.groups import Cursor, Group, GroupStats
from streamkit.errors import UsageError
from streamkit.message import Message, now_ms
from streamkit.stats import GroupShardStat, GroupStat, ShardStat, StreamStat

__all__ = ["DEFAULT_CAPACITY", "Policy", "Topic", "TopicConfig", "TopicStats"]

DEFAULT_CAPACITY = 100_000
"""Messages a backpressure topic holds before producers wait on its slowest active reader."""

_COMPACT_AT = 4096
"""Dead head slots tolerated before the log list is compacted (amortises ``del log[:k]``)."""

_YIELD_EVERY = 256
"""Messages appended between two forced yields to the event loop (see ``Topic.append``)."""

Policy = Literal["backpressure", "retention"]


@dataclass(frozen=True)
class TopicConfig:
    """How a topic bounds its memory; see the module docstring for the two policies."""

    max_messages: int | None = None
    ttl: float | None = None
    """Seconds a message stays after it arrived (retention policy)."""
    capacity: int | None = None
    """Messages held before producers wait (backpressure policy)."""

    def __post_init__(self) -> None:
        if self.max_messages is not None and self.max_messages < 1:
            raise UsageError(f"max_messages must be at least 1 (got {self.max_messages})")
        if self.ttl is not None and not self.ttl > 0:
            raise UsageError(f"ttl must be a positive number of seconds (got {self.ttl})")
        if self.capacity is not None:
            if self.capacity < 1:
                raise UsageError(f"capacity must be at least 1 (got {self.capacity})")
            if self.retains:
                raise UsageError(
                    "capacity is for backpressure topics; a topic with max_messages or ttl "
                    "evicts instead of making producers wait: give one or the other"
                )

    @property
    def retains(self) -> bool:
        return self.max_messages is not None or self.ttl is not None

    @property
    def policy(self) -> Policy:
        return "retention" if self.retains else "backpressure"

    @property
    def bound(self) -> int | None:
        """The message count the log is held to (None: only the ttl bounds it)."""
        if self.retains:
            return self.max_messages
        return self.capacity if self.capacity is not None else DEFAULT_CAPACITY


@dataclass(frozen=True)
class TopicStats:
    name: str
    policy: Policy
    capacity: int | None
    max_messages: int | None
    ttl: float | None
    first_seq: int
    """Sequence number of the oldest message still held."""
    next_seq: int
    """Sequence number the next message will get (= messages ever appended)."""
    depth: int
    """Messages held now."""
    subscribers: int
    """Active consumers: independent ones plus the members of every group."""
    groups: Mapping[str, GroupStats]
    evicted: int
    """Messages dropped from the head so far (by retention or to make room)."""
    producers_waiting: int
    first_ts: int | None = None
    """Timestamps of the oldest and newest message held (None when empty)."""
    last_ts: int | None = None

    def to_stream(self) -> StreamStat:
        """The same figures in the model every backend's ``stat`` shares (``streamkit.stats``)."""
        held = self.depth > 0
        shard = ShardStat(
            shard=0,
            messages=self.depth,
            first_seq=self.first_seq if held else None,
            last_seq=self.next_seq - 1 if held else None,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            next_seq=self.next_seq,
        )
        groups = tuple(
            GroupStat(
                name=g.name,
                consumers=g.members,
                pending=g.position - g.committed if g.mode != "realtime" else None,
                lag=g.lag,
                state=g.mode,
                shards=(GroupShardStat(0, committed=g.committed, lag=g.lag),),
            )
            for g in sorted(self.groups.values(), key=lambda g: g.name)
        )
        return StreamStat(self.name, (shard,), groups)


class Topic:
    """One stream of a broker: the log, its readers, and the futures of whoever waits."""

    def __init__(self, name: str, config: TopicConfig) -> None:
        self.name = name
        self.config = config
        self._bound = config.bound
        self._log: list[Message] = []
        self._base = 0
        self._start = 0
        self.evicted = 0
        self._unyielded = 0
        self.delivered = 0
        """The highest position any reader has reached: below it, messages were read."""
        self._sorted = True
        self._last_ts = -1
        self._arrivals: deque[tuple[int, float]] = deque()
        self._readers: set[asyncio.Future[None]] = set()
        self._writers: list[asyncio.Future[None]] = []
        """Futures of producers waiting for room (or for their turn)."""
        self._queue: deque[int] = deque()
        """Tickets of the ``send_many`` calls blocked on a full topic, oldest first."""
        self._tickets = 0
        self.cursors: weakref.WeakSet[Cursor] = weakref.WeakSet()
        self.groups: dict[str, Group] = {}

    # ----- positions ---------------------------------------------------------------------------

    @property
    def head(self) -> int:
        """Sequence number of the oldest message held."""
        return self._base + self._start

    @property
    def end(self) -> int:
        """Sequence number of the next message to be appended."""
        return self._base + len(self._log)

    def seq_since(self, since: int) -> int:
        """The first held message with timestamp >= since (binary search while ts are sorted)."""
        self.expire()
        log, lo = self._log, self._start
        if self._sorted:
            i = bisect.bisect_left(log, since, lo, len(log), key=_timestamp)
        else:
            i = next((j for j in range(lo, len(log)) if log[j].timestamp >= since), len(log))
        return self._base + i

    def start_position(self, offset: str | int | None, since: int | None) -> int:
        """Where a new reader starts; the memory default is the oldest held message."""
        if since is not None:
            return self.seq_since(since)
        self.expire()
        if offset == "end":
            return self.end
        if isinstance(offset, int) and offset < 0:
            return max(self.head, self.end + offset)  # the last -offset messages
        if isinstance(offset, int):
            return offset
        return self.head

    # ----- reading -----------------------------------------------------------------------------

    def read(self, pos: int, n: int) -> list[Message]:
        """Up to ``n`` messages from ``pos``, which must not be below the head.

        Eviction moves every registered cursor to the head eagerly, so callers reading at a
        cursor's position never see an evicted slot.
        """
        i = pos - self._base
        return self._log[i : i + n]

    def cut_until(self, batch: list[Message], until: int) -> int:
        """How many leading messages of ``batch`` have timestamp <= until."""
        if batch[-1].timestamp <= until and self._sorted:
            return len(batch)
        if self._sorted:
            return bisect.bisect_right(batch, until, key=_timestamp)
        for i, message in enumerate(batch):
            if message.timestamp > until:
                return i
        return len(batch)

    def moved(self) -> None:
        """A reader advanced or detached: producers waiting for room may try again."""
        if self._writers:
            _wake(self._writers)

    def changed(self) -> None:
        """Readers or groups changed (a member left): wake everyone to look again."""
        self.moved()
        if self._readers:
            _wake(self._readers)

    # ----- writing -----------------------------------------------------------------------------

    async def append(self, items: Sequence[Payload]) -> None:
        """Append a batch; on a full backpressure topic, append what fits and wait for room.

        Appends yield to the event loop every ``_YIELD_EVERY`` messages even when nothing has to
        wait: a producer in a loop would otherwise starve its readers (and, on a retention
        topic, make them miss everything but the last ``max_messages``). Counting messages
        rather than calls keeps one-message ``send`` loops from paying a loop turn each.
        """
        bound = self._bound
        if bound is None or self.config.retains:
            self._extend(items)
            self._evict_retention()
            await self._maybe_yield(len(items))
            return
        done = 0 if self._queue else self._append_fitting(items, 0)
        if done < len(items):
            await self._append_in_turn(items, done)
        await self._maybe_yield(len(items))

    def _append_fitting(self, items: Sequence[Payload], done: int) -> int:
        """Append as many of ``items[done:]`` as the bound allows; return the new ``done``."""
        assert self._bound is not None
        wanted = len(items) - done
        room = self._bound - (self.end - self.head)
        if room < wanted:
            self._make_room(wanted)
            room = self._bound - (self.end - self.head)
        if room <= 0:
            return done
        chunk = items if (done == 0 and room >= wanted) else items[done : done + room]
        self._extend(chunk)
        return done + len(chunk)

    async def _append_in_turn(self, items: Sequence[Payload], done: int) -> None:
        """Wait for room in a FIFO of blocked calls: only the oldest call appends, so calls
        land in the order they were made and each call's items stay contiguous."""
        ticket = self._tickets
        self._tickets += 1
        self._queue.append(ticket)
        try:
            while True:
                if self._queue[0] == ticket:
                    done = self._append_fitting(items, done)
                    if done == len(items):
                        return
                waiter = asyncio.get_running_loop().create_future()
                self._writers.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._writers:  # cancelled before a wake-up
                        self._writers.remove(waiter)
        finally:
            self._queue.remove(ticket)
            if self._writers:
                _wake(self._writers)  # the next call in line may go now

    async def _maybe_yield(self, appended: int) -> None:
        self._unyielded += appended
        limit = _YIELD_EVERY if self._bound is None else min(_YIELD_EVERY, self._bound)
        if self._unyielded >= limit:
            self._unyielded = 0
            await asyncio.sleep(0)

    def _extend(self, items: Sequence[Payload]) -> None:
        """Build the Messages and append them, all in one synchronous step (no seq races)."""
        key = self.name
        seq = self.end
        ts = now_ms()
        new = [
            Message(key, 0, s, ts, p)
            if type(p) is bytes
            else _convert(p, key, s, ts)  # str, Message, bytearray: the slow path
            for s, p in enumerate(items, seq)
        ]
        if not new:
            return
        first, last = new[0].timestamp, new[-1].timestamp
        if self._sorted and (
            first < self._last_ts
            or (
                (first != ts or last != ts)
                and any(a.timestamp > b.timestamp for a, b in pairwise(new))
            )
        ):
            self._sorted = False
        self._last_ts = max(self._last_ts, last)
        self._log.extend(new)
        if self.config.ttl is not None:
            self._arrivals.append((self.end, time.monotonic()))
        if self._readers:
            _wake(self._readers)

    def _make_room(self, wanted: int) -> None:
        """Drop read head messages no active reader needs, up to ``wanted`` slots of room."""
        assert self._bound is not None
        target = min(self.end + wanted - self._bound, self.delivered)
        for cursor in self.cursors:
            if cursor.active:
                target = min(target, cursor.needed())
        if target > self.head:
            self._drop_to(target)

    def _evict_retention(self) -> None:
        bound = self._bound
        if bound is not None and self.end - self.head > bound:
            self._drop_to(self.end - bound)
        if self._arrivals:
            self.expire()

    def expire(self) -> None:
        """Evict messages older than the ttl (by arrival); cheap when nothing is due."""
        ttl = self.config.ttl
        if ttl is None or not self._arrivals:
            return
        cutoff = time.monotonic() - ttl
        arrivals = self._arrivals
        target = self.head
        while arrivals and arrivals[0][1] <= cutoff:
            target = arrivals.popleft()[0]
        if target > self.head:
            self._drop_to(target)

    def _drop_to(self, seq: int) -> None:
        seq = min(seq, self.end)
        dropped = seq - self.head
        if dropped <= 0:
            return
        self.evicted += dropped
        self._start += dropped
        if self._start >= _COMPACT_AT and self._start * 2 >= len(self._log):
            del self._log[: self._start]
            self._base += self._start
            self._start = 0
        while self._arrivals and self._arrivals[0][0] <= seq:
            self._arrivals.popleft()
        for cursor in self.cursors:
            cursor.evicted_to(seq)
        if self._readers:
            _wake(self._readers)  # readers with a limit may now be done

    # ----- groups and stats --------------------------------------------------------------------

    def group(self, name: str, mode: str, start: int) -> Group:
        """The named group, created at ``start`` on first use; its mode is fixed then."""
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, mode, max(start, self.head))
            self.cursors.add(group)
        elif group.mode != mode:
            raise UsageError(
                f"consumer group {name!r} on stream {self.name!r} is in {group.mode} mode; "
                f"a member cannot join it in {mode} mode",
                "--mode",
            )
        return group

    def stats(self) -> TopicStats:
        self.expire()
        end = self.end
        members = sum(g.members for g in self.groups.values())
        independent = sum(1 for c in self.cursors if c.active and not isinstance(c, Group))
        return TopicStats(
            name=self.name,
            policy=self.config.policy,
            capacity=None if self.config.retains else self._bound,
            max_messages=self.config.max_messages,
            ttl=self.config.ttl,
            first_seq=self.head,
            next_seq=end,
            depth=end - self.head,
            subscribers=independent + members,
            groups={name: g.stats(end) for name, g in self.groups.items()},
            evicted=self.evicted,
            producers_waiting=len(self._queue),
            first_ts=self._log[self._start].timestamp if end > self.head else None,
            last_ts=self._log[-1].timestamp if end > self.head else None,
        )

    def wait_for_data(self, waiter: asyncio.Future[None]) -> None:
        self._readers.add(waiter)

    def forget(self, waiter: asyncio.Future[None]) -> None:
        self._readers.discard(waiter)


def _timestamp(message: Message) -> int:
    return message.timestamp


def _convert(item: Payload, key: str, seq: int, ts: int) -> Message:
    if isinstance(item, Message):
        return Message(key, 0, seq, item.timestamp, item.payload, item.key, item.headers)
    return Message(key, 0, seq, ts, payload_bytes(item))


def _wake(waiters: set[asyncio.Future[None]] | list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


def _describe(config: TopicConfig) -> str:
    if config.retains:
        return f"retention (max_messages={config.max_messages}, ttl={config.ttl})"
    return f"backpressure (capacity={config.bound})"
