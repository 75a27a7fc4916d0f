"""Pipelined XADD: a whole batch packed into one RESP buffer, one batch in flight per node.

While Redis appends batch k, Python packs batch k+1; replies are read (and checked) one batch
behind. A Message keeps its timestamp through the id ``<ms>-*`` as long as that does not go
back in time on its stream; an older timestamp gets the millisecond of the stream's last id,
because Redis ids only grow. A millisecond holds at most 65,536 entries in SeaStreamer's layout
(``N`` is 16 bits of the sequence number), so the producer counts the entries it gives each
millisecond and moves on to the next millisecond once one is full: it never writes an id that
a reader must refuse or reinterpret. On a lost connection every batch not yet acknowledged is
sent again after the reconnect (at-least-once: a batch the server applied just before the loss
is stored twice).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field

import hiredis

from streamkit.backends.base import Payload, Producer
from streamkit.backends.redis import codec
from streamkit.backends.redis.ids import MAX_SUB, redis_key
from streamkit.backends.redis.resp import AUTO, Entry
from streamkit.backends.redis.topology import Topology, warn
from streamkit.backends.redis.wire import (
    ConnectionLost,
    RedisConnection,
    ServerError,
    reply_error_code,
)
from streamkit.errors import BackendError, UsageError
from streamkit.message import Message, now_ms
from streamkit.uri import Node

__all__ = ["RedisProducer"]

_CHUNK = 2000


@dataclass
class _Pipe:
    connection: RedisConnection
    inflight: collections.deque[list[Entry]] = field(default_factory=collections.deque)


class RedisProducer(Producer):
    def __init__(
        self, topology: Topology, stream_key: str | None, maxlen: int | None, where: str
    ) -> None:
        super().__init__(stream_key)
        self._topology = topology
        self._maxlen = maxlen
        self._where = where
        self._pipes: dict[Node, _Pipe] = {}
        self._prefixes: dict[str, bytes] = {}
        self._last_id: dict[str, tuple[int, int]] = {}
        """Per Redis key: the last id written, as (ms, N) — N an upper bound when ``*`` chose."""
        self._orphans: list[Entry] = []
        self._stale_slots = False
        self._closed = False
        self.acknowledged = 0
        """Entries the server confirmed (the receipts), duplicates after a reconnect included."""
        self.resent = 0
        """Entries sent again after a lost connection (possible duplicates)."""
        self.later = 0
        """Messages stored with a later millisecond than their timestamp: older than the
        stream's last id, or their millisecond already held 65,536 entries."""
        self._full_reported = False

    @property
    def confirmed(self) -> int:
        return self.acknowledged

    async def send_many(self, items: Sequence[Payload]) -> None:
        if self._closed:
            raise BackendError("producer is closed", self._where)
        for start in range(0, len(items), _CHUNK):
            entries = await self._entries(items[start : start + _CHUNK])
            try:
                await self._submit(entries)
            except ConnectionLost as error:
                await self._topology.with_reconnect(self._recover, first_error=error)

    async def _entries(self, items: Sequence[Payload]) -> list[Entry]:
        """Each item as an Entry: (Redis key, payload, XADD prefix, the id's ms or AUTO)."""
        out: list[Entry] = []
        append = out.append
        default_key = self.stream_key
        last_id = self._last_id
        cached: tuple[str, int] | None = None
        key, prefix, last, sub, later, full = "", b"", 0, 0, 0, False
        for item in items:
            if isinstance(item, Message):
                where_to = (default_key or item.stream_key, item.shard_id)
                if where_to != cached:
                    if cached is not None:
                        last_id[key] = (last, sub)
                    cached = where_to
                    key = redis_key(*where_to)
                    prefix = self._prefix(key)
                    known = last_id.get(key)
                    last, sub = await self._stream_last_id(key) if known is None else known
                ts = item.timestamp
                # The id is <ms>-* with ms = max(ts, the last id's ms): Redis ids only grow.
                # Redis then picks N = the last N + 1 within that ms; past MAX_SUB, next ms.
                if ts > last:
                    last, sub = ts, 0
                elif sub < MAX_SUB:
                    sub += 1
                    later += ts < last
                else:
                    last, sub = last + 1, 0
                    later += 1
                    full = True
                append((key, item.payload, prefix, last))
                continue
            if cached is not None:
                last_id[key] = (last, sub)
                cached = None
            if default_key is None:
                raise UsageError(
                    "this producer has no stream key: send Message items, or name the stream",
                    self._where,
                )
            if isinstance(item, bytes):
                payload = item
            elif isinstance(item, str):
                payload = item.encode()
            else:
                raise TypeError(f"cannot send {type(item).__name__}: give bytes, str or Message")
            if default_key in last_id:
                self._after_auto_id(default_key)
            append((default_key, payload, self._prefix(default_key), AUTO))
        if cached is not None:
            last_id[key] = (last, sub)
        if later:
            self._report_later(later, full)
        return out

    def _after_auto_id(self, key: str) -> None:
        """Advance the known last id past an entry for which the server picks the id (``*``):
        the server's clock, or the last id's millisecond when that is ahead."""
        ms, sub = self._last_id[key]
        now = now_ms()
        self._last_id[key] = (now, 0) if now > ms else (ms, min(sub + 1, MAX_SUB))

    def _report_later(self, later: int, full: bool) -> None:
        if full and not self._full_reported and self._topology.verbose:
            self._full_reported = True
            warn(
                f"{self._where}: more than 65,536 messages share a millisecond; the rest "
                "get the next millisecond (a Redis id holds at most 65,536 per millisecond)"
            )
        self.later += later

    async def _stream_last_id(self, key: str) -> tuple[int, int]:
        """The stream's last id as (ms, N) ((0, 0) for a new stream); checks the type."""
        try:
            info = await self._topology.call(key, "XINFO", "STREAM", key)
        except ServerError as error:
            if error.code == "WRONGTYPE":
                raise BackendError(
                    f"Redis key {key!r} holds another type, not a stream (WRONGTYPE)", self._where
                ) from None
            if "no such key" in error.what:
                return 0, 0
            raise
        values = dict(zip(info[::2], info[1::2]))
        ms, _, sub = values.get(b"last-generated-id", b"0-0").partition(b"-")
        return int(ms), int(sub)

    def _prefix(self, key: str) -> bytes:
        prefix = self._prefixes.get(key)
        if prefix is None:
            raw = key.encode()
            if self._maxlen is None:
                prefix = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n" % (len(raw), raw)
            else:
                n = b"%d" % self._maxlen
                head = b"*8\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n" % (len(raw), raw)
                prefix = head + b"$6\r\nMAXLEN\r\n$1\r\n~\r\n$%d\r\n%s\r\n" % (len(n), n)
            self._prefixes[key] = prefix
        return prefix

    async def _pipe(self, node: Node) -> _Pipe:
        pipe = self._pipes.get(node)
        if pipe is None or pipe.connection.broken:
            pipe = _Pipe(await self._topology.dedicated(node))
            self._pipes[node] = pipe
        return pipe

    def _by_node(self, entries: list[Entry]) -> dict[Node, list[Entry]]:
        if not self._topology.cluster:
            return {self._topology.nodes[0]: entries}
        by_node: dict[Node, list[Entry]] = {}
        for entry in entries:
            by_node.setdefault(self._topology.node_for(entry[0]), []).append(entry)
        return by_node

    async def _submit(self, entries: list[Entry]) -> None:
        """Write ``entries`` and collect the replies of all but the newest batch per node.

        A batch joins ``inflight`` before it is written, so a lost connection finds it there.
        """
        if self._orphans or any(p.connection.broken for p in self._pipes.values()):
            await self._recover()
        by_node = self._by_node(entries)
        pipes = {node: await self._pipe(node) for node in by_node}
        for node, batch in by_node.items():
            pipe = pipes[node]
            pipe.inflight.append(batch)
            pipe.connection.write(codec.pack_xadd(batch))
            await pipe.connection.drain()
            while len(pipe.inflight) > 1:
                await self._collect(pipe)
        if self._orphans:
            await self._recover()

    async def _collect(self, pipe: _Pipe) -> None:
        batch = pipe.inflight[0]
        failed = await pipe.connection.read_acks(len(batch))
        pipe.inflight.popleft()
        self.acknowledged += len(batch) - len(failed)
        for index, reply in failed:
            self._handle_failure(batch[index], reply)

    def _handle_failure(self, entry: Entry, reply: hiredis.ReplyError) -> None:
        key = entry[0]
        code = reply_error_code(reply)
        text = str(reply)
        if "equal or smaller" in text:
            # Another writer got ahead: the server places it (``*``).
            self._last_id.setdefault(key, (0, 0))
            self._after_auto_id(key)
            self._orphans.append((key, entry[1], entry[2], AUTO))
        elif code in ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"):
            self._orphans.append(entry)
            self._stale_slots = True
        elif code == "WRONGTYPE":
            raise BackendError(
                f"Redis key {key!r} holds another type, not a stream (WRONGTYPE)", self._where
            )
        else:
            raise BackendError(f"XADD to {key!r} failed: {text}", self._where)

    async def _recover(self) -> None:
        """Send again every entry without a good reply: those on a lost connection, in order,
        and those the server refused for a reason that a retry fixes (an id in the past, MOVED).
        Entries stay in ``_orphans`` until they are written, so no failure here loses them."""
        for node, pipe in list(self._pipes.items()):
            if pipe.connection.broken:
                for batch in pipe.inflight:
                    self.resent += len(batch)
                    self._orphans.extend(batch)
                pipe.inflight.clear()
                await self._topology.release(pipe.connection)
                del self._pipes[node]
        while self._orphans:
            if self._stale_slots and self._topology.cluster:
                await self._topology.refresh()
                self._stale_slots = False
            by_node = self._by_node(self._orphans)
            pipes = {node: await self._pipe(node) for node in by_node}
            self._orphans = []
            for node, batch in by_node.items():
                pipes[node].inflight.append(batch)
                pipes[node].connection.write(codec.pack_xadd(batch))
            for pipe in pipes.values():
                await pipe.connection.drain()
                while pipe.inflight:
                    await self._collect(pipe)

    async def flush(self) -> None:
        async def drain_all() -> None:
            await self._recover()
            for pipe in list(self._pipes.values()):
                while pipe.inflight:
                    await self._collect(pipe)
            await self._recover()

        try:
            await drain_all()
        except ConnectionLost as error:
            await self._topology.with_reconnect(drain_all, first_error=error)

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            if self.later and self._topology.verbose:
                warn(
                    f"{self._where}: {self.later} messages were stored with a later millisecond "
                    "than their timestamp"
                )
            for pipe in self._pipes.values():
                await self._topology.release(pipe.connection)
            self._pipes.clear()
