"""Where a Redis consumer starts: its shards (SCAN), their start ids, and its group.

The state every part of the consumer shares is set up here (``ConsumerPositions.__init__``),
with the steps before the first read: finding the shards, checking they are streams, placing
each at ``--offset``/``--since``/``-e``, creating or moving the group. ``consumer.py`` adds the
reading, claiming and acking on top.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import time
from dataclasses import dataclass, field

from streamkit.backends.base import Consumer, ConsumerOptions
from streamkit.backends.redis.ids import (
    MAX_SUB,
    id_before,
    parse_entry_id,
    split_redis_key,
)
from streamkit.backends.redis.topology import Backoff, Topology, warn
from streamkit.backends.redis.wire import (
    RedisConnection,
    ServerError,
)
from streamkit.errors import BackendError
from streamkit.message import Message
from streamkit.uri import Node

__all__ = ["ConsumerPositions", "ConsumerSettings", "default_consumer_name", "shard_node"]

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


class ConsumerPositions(Consumer):
    """The shared state and the start-up half of ``RedisConsumer`` (see the module docstring)."""

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

    def _explain(self, error: ServerError, rkey: str | None) -> BackendError:
        if error.code == "WRONGTYPE":
            named = f"Redis key {rkey!r}" if rkey else "a Redis key of this stream"
            return BackendError(
                f"{named} holds another type, not a stream (WRONGTYPE)", self._where
            )
        return BackendError(f"Redis refused the read: {error.what}", self._where)


def shard_node(topology: Topology, shard: _Shard) -> Node:
    return topology.node_for(shard.rkey)


def _id_tuple(entry_id: bytes) -> tuple[int, int]:
    ms, _, sub = entry_id.partition(b"-")
    return int(ms), int(sub or b"0")


def _id_key(entry_id: bytes) -> tuple[int, int]:
    return _id_tuple(entry_id)
