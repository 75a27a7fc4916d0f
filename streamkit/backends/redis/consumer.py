"""Reading Redis streams: XREAD (realtime) or XREADGROUP (resumable, load-balanced), paged.

Shards: a consumer of ``k`` reads ``k`` and every ``k:N`` that SCAN finds (never KEYS), and
looks again every ``scan_interval`` while following. A *reader* is the set of shards one command
reads: all of them on a single server, one shard per reader in a cluster (a shard's keys hash to
different slots). Each reader runs one read at a time in its own task on its own connection,
so a blocking read never holds up acks or another node, and ``stop()`` can cut it short.

Positions: realtime keeps the last delivered id per shard in memory; group modes keep theirs
in the group (own pending entries first with id ``0``, then ``>``), with XACK in ``commit()``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis

from streamkit.backends.base import Consumer, ConsumerOptions
from streamkit.backends.redis.ids import (
    MAX_SUB,
    id_before,
    parse_entry_id,
    redis_key,
    seq_to_id,
    split_redis_key,
)
from streamkit.backends.redis.topology import Backoff, Topology, warn
from streamkit.backends.redis.wire import (
    RedisConnection,
    ServerError,
    encode_command,
    reply_error_code,
)
from streamkit.errors import BackendError, EndOfStream
from streamkit.message import Message, now_ms
from streamkit.uri import Node

__all__ = ["ConsumerSettings", "RedisConsumer"]

_NEW = b">"
_MAX_MS = 1 << 48
_NO_LIMIT = 1 << 70


@dataclass(frozen=True)
class ConsumerSettings:
    """Tuning that has no CLI option of its own (``-X name=value``)."""

    block_ms: int = 2000
    scan_interval: float = 5.0
    page: int = 1000
    message_field: bytes = b"msg"


@dataclass
class _Shard:
    stream_key: str
    shard: int
    rkey: str
    position: bytes = b"0-0"
    """Realtime: the last id read. Groups: the last own pending id read, or ``>``."""
    end: tuple[int, int] | None = None
    """``--no-follow``: the last id that existed at the start; entries after it are not read."""
    done: bool = False


@dataclass
class _Reader:
    node: Node
    shards: list[_Shard]
    connection: RedisConnection | None = None
    task: asyncio.Task[list[Message]] | None = None
    by_name: dict[bytes, _Shard] = field(default_factory=dict)

    def index(self) -> None:
        self.by_name = {s.rkey.encode(): s for s in self.shards}

    @property
    def active(self) -> list[_Shard]:
        return [s for s in self.shards if not s.done]


def default_consumer_name(options: ConsumerOptions) -> str:
    """Resumable: the group's name (a restarted relay owns its own pending entries again).
    Load-balanced: unique per process, so that members are told apart and can be claimed from."""
    if options.consumer_name:
        return options.consumer_name
    if options.mode == "resumable":
        assert options.group is not None
        return options.group
    return f"{socket.gethostname()}:{os.getpid()}"


class RedisConsumer(Consumer):
    def __init__(
        self,
        topology: Topology,
        stream_keys: tuple[str, ...],
        options: ConsumerOptions,
        settings: ConsumerSettings,
        where: str,
    ) -> None:
        super().__init__(options)
        self._topology = topology
        self._keys = stream_keys
        self._settings = settings
        self._where = where
        self._group = options.group
        self._grouped = options.mode != "realtime"
        self._name = default_consumer_name(options) if self._grouped else ""
        self._follow = options.follow is not False
        self._offset = options.start_offset("start" if options.since is not None else "end")
        """--offset, or where a run without one starts: the end (live); the start with -e
        (kcat's -e prints the whole stream) or --since (which then decides)."""
        self._last_n: dict[str, bytes] = {}
        """--offset -N: per Redis key, the exclusive start id N entries before its end."""
        self._ready: collections.deque[Message] = collections.deque()
        self._readers: list[_Reader] = []
        self._shards: dict[str, _Shard] = {}
        self._stop_event = asyncio.Event()
        self._next_scan = 0.0
        self._next_claim = 0.0
        self._claim_cursor: dict[str, bytes] = {}
        self._skip_acks: list[tuple[str, bytes]] = []
        self._error_backoff: Backoff | None = None
        self._closed = False
        self.claimed = 0
        """Entries taken over from other members (load-balanced failover)."""
        self.wide_ids = 0
        """Entries delivered whose id ``MS-N`` has N > 65535 (another client wrote more than
        65,536 entries in one millisecond): their seq is ``MS << 16 | 65535`` (ids)."""
        self._wide: dict[tuple[str, int, int], collections.deque[tuple[str, bytes]]] = {}
        """Groups: the real ids behind a clamped seq, in delivery order, for XACK."""

    # ----------------------------------------------------------------- start

    async def start(self) -> None:
        shards = await self._discover()
        await self._check_types(shards)
        ends = await self._last_ids(shards) if (not self._follow or self._anchors_end) else {}
        if self.options.last_n is not None:
            for shard in shards:
                self._last_n[shard.rkey] = await self._id_before_last(shard, self.options.last_n)
        for shard in shards:
            last = ends.get(shard.rkey)
            if not self._follow:
                shard.end = last
                shard.done = last is None
            if self._grouped:
                shard.position = b"0-0"
            else:
                shard.position = self._start_position(last, shard)
        if self._grouped:
            await self._create_groups(shards, initial=True)
        self._add(shards)
        if self._topology.verbose:
            self._report_start(shards)
        self._next_scan = time.monotonic() + self._settings.scan_interval
        if self.options.claim_idle is not None:
            self._next_claim = time.monotonic()

    def _report_start(self, shards: list[_Shard]) -> None:
        """-v: where each shard starts, so a user can see what a run will (not) read."""
        if self._grouped:
            how = f"group {self._group!r} as {self._name!r} ({self.options.mode})"
            places = ", ".join(s.rkey for s in shards)
        else:
            how = "realtime"
            places = ", ".join(f"{s.rkey} after {s.position.decode()}" for s in shards)
        stop = "" if self._follow else " until the end seen now"
        warn(f"{self._where}: reading {places} ({how}){stop}")

    @property
    def _anchors_end(self) -> bool:
        return not self._grouped and self._offset == "end"

    def _since_id(self) -> bytes:
        return id_before(self.options.since, 0) if self.options.since is not None else b"0-0"

    async def _id_before_last(self, shard: _Shard, n: int) -> bytes:
        """The exclusive start id of the last ``n`` entries of ``shard`` (``0-0``: all of it).

        XREVRANGE has no skip, so the n-th last id is found by paging back from the end;
        the length is looked at first so that a short stream costs one command."""
        rkey = shard.rkey
        length = await self._topology.call(rkey, "XLEN", rkey)
        if int(length) <= n:
            return b"0-0"
        upper, left, oldest = b"+", n, b""
        while left > 0:
            page = await self._topology.call(
                rkey, "XREVRANGE", rkey, upper, "-", "COUNT", min(left, self._settings.page)
            )
            if not page:
                return b"0-0"  # trimmed meanwhile: everything there is
            oldest = page[-1][0]
            left -= len(page)
            upper = b"(" + oldest
        ms, sub = parse_entry_id(oldest, self._where)
        return id_before(ms, sub)

    def _offset_id(self, last: tuple[int, int] | None, shard: _Shard | None) -> bytes:
        offset = self._offset
        if isinstance(offset, int) and offset < 0:
            return self._last_n.get(shard.rkey, b"0-0") if shard is not None else b"0-0"
        if isinstance(offset, int):
            return id_before(offset >> 16, offset & MAX_SUB)
        if offset == "start" or last is None:
            return b"0-0"
        return b"%d-%d" % last

    def _start_position(self, last: tuple[int, int] | None, shard: _Shard | None) -> bytes:
        """The exclusive start id honouring both --offset and --since (the later)."""
        return max(self._offset_id(last, shard), self._since_id(), key=_id_key)

    def _group_start(self, shard: _Shard) -> bytes:
        offset = self._offset
        if isinstance(offset, int) or offset == "start" or self.options.since is not None:
            return self._start_position(None, shard)
        return b"$"

    async def _discover(self) -> list[_Shard]:
        """The base key of every stream plus each ``key:N`` stream key SCAN finds."""
        found: dict[str, _Shard] = {}
        for key in self._keys:
            found.setdefault(key, _Shard(key, 0, key))
        patterns = [f"{k}:*" for k in self._keys] if self._keys else ["*"]
        for node in self._topology.nodes:
            for pattern in patterns:
                cursor = b"0"
                while True:
                    cursor, names = await self._topology.call_node(
                        node, "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, "TYPE", "stream"
                    )
                    for raw in names:
                        name = raw.decode()
                        parts = split_redis_key(name)
                        if parts is None:
                            continue
                        found.setdefault(name, _Shard(parts[0], parts[1], name))
                    if cursor == b"0":
                        break
        return sorted(found.values(), key=lambda s: (s.stream_key, s.shard, s.rkey))

    async def _check_types(self, shards: list[_Shard]) -> None:
        for shard in shards:
            kind = await self._topology.call(shard.rkey, "TYPE", shard.rkey)
            if kind not in (b"stream", b"none", "stream", "none"):
                name = kind.decode() if isinstance(kind, bytes) else str(kind)
                raise BackendError(
                    f"Redis key {shard.rkey!r} is a {name}, not a stream (WRONGTYPE)", self._where
                )

    async def _last_ids(self, shards: list[_Shard]) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for shard in shards:
            reply = await self._topology.call(
                shard.rkey, "XREVRANGE", shard.rkey, "+", "-", "COUNT", 1
            )
            if reply:
                out[shard.rkey] = parse_entry_id(reply[0][0], self._where)
        return out

    async def _create_groups(self, shards: list[_Shard], *, initial: bool) -> None:
        """XGROUP CREATE ... MKSTREAM (a consumer may start before its producer).

        ``--offset start|end`` only places a NEW group (a restarted relay with the same command
        line continues where its group stopped, as Kafka's offset reset does). A sequence number
        or ``--since`` moves an existing group (XGROUP SETID): a seek that keeps the group, so
        acks go on working.
        """
        assert self._group is not None
        seek = initial and (isinstance(self._offset, int) or self.options.since is not None)
        for shard in shards:
            start = self._group_start(shard) if initial else b"0"
            try:
                await self._topology.call(
                    shard.rkey, "XGROUP", "CREATE", shard.rkey, self._group, start, "MKSTREAM"
                )
            except ServerError as error:
                if error.code != "BUSYGROUP":
                    raise self._explain(error, shard.rkey) from None
                if seek:
                    await self._topology.call(
                        shard.rkey, "XGROUP", "SETID", shard.rkey, self._group, start
                    )
            shard.position = b"0-0"

    def _add(self, shards: list[_Shard]) -> None:
        new = [s for s in shards if s.rkey not in self._shards]
        for shard in new:
            self._shards[shard.rkey] = shard
        if not new:
            return
        if self._topology.cluster:
            for shard in new:
                reader = _Reader(self._topology.node_for(shard.rkey), [shard])
                reader.index()
                self._readers.append(reader)
        elif self._readers:
            self._readers[0].shards.extend(new)
            self._readers[0].index()
        else:
            reader = _Reader(self._topology.nodes[0], list(new))
            reader.index()
            self._readers.append(reader)

    async def _rescan(self) -> None:
        self._next_scan = time.monotonic() + self._settings.scan_interval
        shards = [s for s in await self._discover() if s.rkey not in self._shards]
        if not shards:
            return
        for shard in shards:
            shard.position = b"0-0" if self._grouped else max(b"0-0", self._since_id(), key=_id_key)
        if self._grouped:
            await self._create_groups(shards, initial=False)
        self._add(shards)

    # ----------------------------------------------------------------- reading

    def _command(self, reader: _Reader, count: int) -> tuple[bytes, bool, list[_Shard]]:
        """The read for ``reader``, whether it blocks, and the shards it reads."""
        active = reader.active
        if self._grouped:
            pending = [s for s in active if s.position != _NEW]
            chosen = pending or active
            blocking = not pending
        else:
            chosen = active
            blocking = True
        blocking = blocking and self._follow and not self._until_passed()
        head: list[bytes | str | int] = []
        if self._grouped:
            assert self._group is not None
            head = ["XREADGROUP", "GROUP", self._group, self._name]
        else:
            head = ["XREAD"]
        head += ["COUNT", count]
        if blocking:
            head += ["BLOCK", max(1, self._block_ms())]
        head.append("STREAMS")
        args = [*head, *(s.rkey for s in chosen), *(s.position for s in chosen)]
        return encode_command(*args), blocking, chosen

    def _until_passed(self) -> bool:
        until = self.options.until
        return until is not None and now_ms() > until

    def _block_ms(self) -> int:
        now = time.monotonic()
        limit = self._settings.block_ms / 1000
        if self._follow:
            limit = min(limit, self._next_scan - now)
        if self.options.claim_idle is not None:
            limit = min(limit, self._next_claim - now)
        return int(max(limit, 0.001) * 1000)

    async def _read(self, reader: _Reader, count: int) -> list[Message]:
        async def attempt() -> Any:
            if reader.connection is None or reader.connection.broken:
                if reader.connection is not None:
                    await self._topology.release(reader.connection)
                    if self._grouped:
                        # a reply lost with the connection left its entries pending on us:
                        # read our own pending entries again before the new ones
                        for shard in reader.shards:
                            shard.position = b"0-0"
                if self._topology.cluster:
                    reader.node = self._topology.node_for(reader.shards[0].rkey)
                reader.connection = await self._topology.dedicated(reader.node)
            command, blocking, chosen = self._command(reader, count)
            (reply,) = await reader.connection.execute_raw(command, 1)
            return reply, blocking, chosen

        while True:
            reply, blocking, chosen = await self._topology.with_reconnect(attempt)
            if isinstance(reply, hiredis.ReplyError):
                await self._on_error(reader, reply)
                continue
            self._error_backoff = None
            return self._parse(reader, reply, blocking, chosen)

    async def _on_error(self, reader: _Reader, reply: hiredis.ReplyError) -> None:
        code = reply_error_code(reply)
        if code == "NOGROUP":
            # The stream or its group vanished (restart without persistence, eviction, DEL):
            # recreate and go on, backing off so a persisting failure never spins.
            if self._error_backoff is None:
                self._error_backoff = Backoff(self._topology.reconnect_timeout)
                warn(f"{self._where}: consumer group {self._group!r} is gone; recreating it")
            if self._error_backoff.expired:
                raise BackendError(f"consumer group keeps vanishing: {reply}", self._where)
            await asyncio.sleep(
                self._error_backoff.next_delay() if self._error_backoff.attempt else 0
            )
            self._error_backoff.attempt += 1
            await self._create_groups(reader.shards, initial=False)
            return
        if code in ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING"):
            # slots moving or a node loading: refresh the map and retry, backing off
            if self._error_backoff is None:
                self._error_backoff = Backoff(self._topology.reconnect_timeout)
            if self._error_backoff.expired:
                raise BackendError(f"Redis keeps refusing reads: {reply}", self._where)
            await asyncio.sleep(self._error_backoff.next_delay())
            if self._topology.cluster:
                await self._topology.refresh()
            if reader.connection is not None:
                await self._topology.release(reader.connection)
                reader.connection = None
            return
        raise self._explain(ServerError(str(reply), self._where, code=code), None)

    def _explain(self, error: ServerError, rkey: str | None) -> BackendError:
        if error.code == "WRONGTYPE":
            named = f"Redis key {rkey!r}" if rkey else "a Redis key of this stream"
            return BackendError(
                f"{named} holds another type, not a stream (WRONGTYPE)", self._where
            )
        return BackendError(f"Redis refused the read: {error.what}", self._where)

    def _parse(
        self, reader: _Reader, reply: Any, blocking: bool, chosen: list[_Shard]
    ) -> list[Message]:
        out: list[Message] = []
        seen: set[bytes] = set()
        until = self.options.until
        field_name = self._settings.message_field
        where = self._where
        for name, entries in reply or ():
            shard = reader.by_name.get(name)
            if shard is None:
                continue
            seen.add(name)
            if self._grouped and shard.position != _NEW and not entries:
                shard.position = _NEW  # own pending entries all re-read: now the new ones
                continue
            stream_key, shard_id, end = shard.stream_key, shard.shard, shard.end
            end_seq = _NO_LIMIT if end is None else (end[0] << 16) | min(end[1], MAX_SUB)
            until_ms = _NO_LIMIT if until is None else until
            last_id = shard.position
            for entry_id, fields in entries:
                last_id = entry_id
                ms_text, _, sub_text = entry_id.partition(b"-")
                ms, sub = int(ms_text), int(sub_text)
                wide = sub >= MAX_SUB or ms >= _MAX_MS
                over = sub > MAX_SUB
                if wide:
                    parse_entry_id(entry_id, where)  # raises the DataError for ms >= 2^48
                    if end is not None and (ms, sub) > end:
                        shard.done = True
                        break
                    sub = MAX_SUB
                seq = (ms << 16) | sub
                if seq > end_seq or ms > until_ms:
                    shard.done = True
                    break
                if fields is None:  # pending entry deleted meanwhile (XTRIM): ack it away
                    self._skip_acks.append((shard.rkey, entry_id))
                    continue
                if fields[0] == field_name:
                    payload = fields[1]
                else:
                    values = dict(zip(fields[::2], fields[1::2]))
                    if field_name not in values:
                        if self._grouped:
                            self._skip_acks.append((shard.rkey, entry_id))
                        continue
                    payload = values[field_name]
                if wide:
                    self.wide_ids += over
                    if self._grouped:
                        # XACK needs the real id behind the shared seq: keep them in order
                        self._wide.setdefault(
                            (stream_key, shard_id, seq), collections.deque()
                        ).append((shard.rkey, entry_id))
                out.append(Message(stream_key, shard_id, seq, ms, payload))
            if not entries:
                continue
            if shard.position != _NEW:
                shard.position = last_id
            if end is not None and not shard.done and _id_tuple(last_id) >= end:
                shard.done = True
        if not blocking and (not self._follow or self._until_passed()):
            # a non-blocking read that did not return a shard: that shard is at its end
            for shard in chosen:
                if shard.rkey.encode() not in seen and not shard.done:
                    shard.done = not self._grouped or shard.position == _NEW
        return out

    async def _claim(self, count: int) -> list[Message]:
        """Load-balanced failover: take over other members' entries idle for --claim-idle."""
        assert self.options.claim_idle is not None and self._group is not None
        idle_ms = int(self.options.claim_idle * 1000)
        self._next_claim = time.monotonic() + min(max(self.options.claim_idle / 2, 0.2), 30.0)
        out: list[Message] = []
        for shard in list(self._shards.values()):
            cursor = self._claim_cursor.get(shard.rkey, b"0-0")
            try:
                reply = await self._topology.call(
                    shard.rkey, "XAUTOCLAIM", shard.rkey, self._group, self._name, idle_ms,
                    cursor, "COUNT", count,
                )  # fmt: skip
            except ServerError as error:
                if error.code == "NOGROUP":
                    continue
                raise self._explain(error, shard.rkey) from None
            next_cursor, entries = reply[0], reply[1]
            self._claim_cursor[shard.rkey] = next_cursor
            fake = _Reader(shard_node(self._topology, shard), [shard])
            fake.index()
            position, end, done = shard.position, shard.end, shard.done
            shard.position, shard.end = b"0-0", None
            out.extend(self._parse(fake, [[shard.rkey.encode(), entries]], True, []))
            shard.position, shard.end, shard.done = position, end, done
        self.claimed += len(out)
        return out

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        while not self._ready:
            if self._stopping:
                raise EndOfStream
            now = time.monotonic()
            if self.options.claim_idle is not None and now >= self._next_claim:
                self._ready.extend(await self._claim(self._settings.page))
                if self._ready:
                    break
            if self._follow and now >= self._next_scan:
                await self._rescan()
            readers = [r for r in self._readers if r.task is not None or r.active]
            if not readers:
                raise EndOfStream
            count = min(self._settings.page, max_messages)
            for reader in readers:
                if reader.task is None:
                    reader.task = asyncio.ensure_future(self._read(reader, count))
            stop = asyncio.ensure_future(self._stop_event.wait())
            tasks: set[asyncio.Future[Any]] = {r.task for r in readers if r.task is not None}
            try:
                await asyncio.wait(tasks | {stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
            for reader in readers:
                if reader.task is not None and reader.task.done():
                    task, reader.task = reader.task, None
                    result = task.result()
                    self._ready.extend(result)
                    if len(result) >= count and self._prefetch(reader):
                        # a backlog: read the next page while the caller handles this one
                        reader.task = asyncio.ensure_future(self._read(reader, count))
        n = min(max_messages, len(self._ready))
        popleft = self._ready.popleft
        return [popleft() for _ in range(n)]

    def _prefetch(self, reader: _Reader) -> bool:
        """Realtime only: in a group, a page read ahead would sit pending on this member."""
        return not self._grouped and bool(reader.active) and not self._stopping

    def stop(self) -> None:
        super().stop()
        self._stop_event.set()

    # ----------------------------------------------------------------- acks

    async def commit(self, messages: Sequence[Message]) -> None:
        """XACK what was written downstream, one command per Redis key."""
        if not self._grouped or (not messages and not self._skip_acks):
            return
        assert self._group is not None
        by_key: dict[str, list[bytes]] = {}
        for rkey, entry_id in self._skip_acks:
            by_key.setdefault(rkey, []).append(entry_id)
        self._skip_acks = []
        wide = self._wide
        for message in messages:
            if wide and message.seq & MAX_SUB == MAX_SUB:
                real = wide.get((message.stream_key, message.shard_id, message.seq))
                if real:
                    rkey, entry_id = real.popleft()
                    by_key.setdefault(rkey, []).append(entry_id)
                    continue
            rkey = redis_key(message.stream_key, message.shard_id)
            by_key.setdefault(rkey, []).append(seq_to_id(message.seq))
            if message.shard_id == 0:
                alias = f"{message.stream_key}:0"
                if alias in self._shards:
                    by_key.setdefault(alias, []).append(seq_to_id(message.seq))
        for rkey, ids in by_key.items():
            try:
                await self._topology.call(rkey, "XACK", rkey, self._group, *ids)
            except ServerError as error:
                if error.code != "NOGROUP":  # group gone: nothing left to ack
                    raise self._explain(error, rkey) from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_event.set()
        for reader in self._readers:
            if reader.task is not None:
                reader.task.cancel()
                with contextlib.suppress(BaseException):
                    await reader.task
                reader.task = None
            if reader.connection is not None:
                await self._topology.release(reader.connection)
                reader.connection = None
        if self._skip_acks:
            with contextlib.suppress(Exception):
                await self.commit(())
        if self.wide_ids:
            warn(
                f"{self._where}: {self.wide_ids} entries had an id MS-N with N > 65535 (more "
                "than 65,536 in one millisecond, written by another client); they were read "
                "with sequence number MS<<16|65535, the last of their millisecond"
            )


def shard_node(topology: Topology, shard: _Shard) -> Node:
    return topology.node_for(shard.rkey)


def _id_tuple(entry_id: bytes) -> tuple[int, int]:
    ms, _, sub = entry_id.partition(b"-")
    return int(ms), int(sub or b"0")


def _id_key(entry_id: bytes) -> tuple[int, int]:
    return _id_tuple(entry_id)
