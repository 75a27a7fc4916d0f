"""``stat`` for Redis Streams: per key and shard, and every consumer group on them.

Read-only commands only (SCAN, TYPE, XINFO STREAM/GROUPS/CONSUMERS, XRANGE), so a ``stat`` never
creates a key or a group. Shards are found as the consumer finds them: the base key plus every
``key:N`` stream SCAN reports (never KEYS), on every master of a cluster.

Lag is the server's own figure where it has one (``XINFO GROUPS`` ``lag``, Redis 7+): entries
added after the group's last-delivered-id, i.e. not yet handed to any consumer. Redis reports it
as nil when it cannot tell (entries were deleted with XDEL) and older servers have no such field;
then the entries after the last-delivered-id are counted with paged XRANGE, and a note says so.
Pending (delivered, not acknowledged) is a separate figure, as Redis keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamkit.backends.base import ConnectOptions
from streamkit.backends.redis.ids import id_after, redis_key, split_redis_key
from streamkit.backends.redis.streamer import RedisStreamer
from streamkit.backends.redis.streamer import open_streamer as open_redis
from streamkit.errors import BackendError
from streamkit.message import now_ms
from streamkit.stats import (
    GroupShardStat,
    GroupStat,
    ShardStat,
    StatReport,
    StreamStat,
    missing,
)
from streamkit.uri import StreamUri

__all__ = ["RedisStatSource", "open_stat_source"]

_COUNT_PAGE = 10_000


def _fields(reply: Sequence[Any]) -> dict[str, Any]:
    """A flat ``[name, value, name, value...]`` XINFO reply as a dict with text names."""
    it = iter(reply)
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in zip(it, it)}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_ms(entry_id: str | None) -> int | None:
    return None if entry_id is None else int(entry_id.partition("-")[0])


class RedisStatSource:
    def __init__(self, uri: StreamUri, streamer: RedisStreamer) -> None:
        self.uri = uri
        self.streamer = streamer
        self.topology = streamer.topology
        self.where = streamer.where

    async def _scan(self, pattern: str) -> list[str]:
        names: list[str] = []
        for node in self.topology.nodes:
            cursor: Any = b"0"
            while True:
                cursor, found = await self.topology.call_node(
                    node, "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, "TYPE", "stream"
                )
                names.extend(raw.decode() for raw in found)
                if cursor in (b"0", "0", 0):
                    break
        return names

    async def _shards(self) -> dict[str, list[tuple[int, str]]]:
        """Stream key → [(shard, Redis key)], sorted; only keys that exist as streams."""
        keys = self.uri.keys
        names: list[str] = []
        if keys:
            for key in keys:
                kind = _text(await self.topology.call(key, "TYPE", key))
                if kind == "stream":
                    names.append(key)
                elif kind != "none":
                    raise BackendError(
                        f"Redis key {key!r} is a {kind}, not a stream (WRONGTYPE)", self.where
                    )
                names.extend(await self._scan(f"{_glob_escape(key)}:*"))
        else:
            names = await self._scan("*")
        found: dict[str, list[tuple[int, str]]] = {}
        for name in dict.fromkeys(names):
            parts = split_redis_key(name)
            if parts is None or (keys and parts[0] not in keys):
                continue
            found.setdefault(parts[0], []).append((parts[1], name))
        if keys:
            missing(
                keys, list(found), "no stream under that Redis key, nor KEY:N shards", self.where
            )
        return {k: sorted(v) for k, v in sorted(found.items())}

    async def collect(self) -> StatReport:
        taken = now_ms()
        notes: list[str] = []
        streams = []
        for key, shards in (await self._shards()).items():
            shard_stats = []
            per_group: dict[str, list[tuple[GroupShardStat, dict[str, Any], list[str]]]] = {}
            for shard, rkey in shards:
                if redis_key(key, shard) != rkey:
                    continue
                shard_stats.append(await self._shard(shard, rkey))
                for group in await self._groups(rkey, shard, notes):
                    per_group.setdefault(group[1]["name"], []).append(group)
            groups = tuple(_merge_group(name, parts) for name, parts in sorted(per_group.items()))
            streams.append(StreamStat(key, tuple(shard_stats), groups))
        return StatReport(self.uri.redacted(), "redis", taken, tuple(streams), notes=tuple(notes))

    async def _shard(self, shard: int, rkey: str) -> ShardStat:
        info = _fields(await self.topology.call(rkey, "XINFO", "STREAM", rkey))
        first = info.get("first-entry")
        last = info.get("last-entry")
        first_id = _text(first[0]) if first else None
        last_id = _text(last[0]) if last else None
        return ShardStat(
            shard=shard,
            messages=int(info["length"]),
            first_ts=_id_ms(first_id),
            last_ts=_id_ms(last_id),
            first_id=first_id,
            last_id=last_id,
        )

    async def _groups(
        self, rkey: str, shard: int, notes: list[str]
    ) -> list[tuple[GroupShardStat, dict[str, Any], list[str]]]:
        out = []
        for raw in await self.topology.call(rkey, "XINFO", "GROUPS", rkey):
            info = _fields(raw)
            name = _text(info["name"]) or ""
            info["name"] = name
            last = _text(info.get("last-delivered-id")) or "0-0"
            lag = info.get("lag")
            if lag is None:
                lag = await self._count_after(rkey, last)
                why = "reports no lag" if "lag" not in info else "could not tell (XDEL)"
                notes.append(
                    f"{rkey} group {name}: lag counted by XRANGE after {last} (the server {why})"
                )
            members = [
                _text(_fields(c)["name"]) or ""
                for c in await self.topology.call(rkey, "XINFO", "CONSUMERS", rkey, name)
            ]
            out.append(
                (
                    GroupShardStat(
                        shard=shard,
                        last_delivered=last,
                        pending=int(info["pending"]),
                        lag=int(lag),
                    ),
                    info,
                    members,
                )
            )
        return out

    async def _count_after(self, rkey: str, last: str) -> int:
        """Entries with an id above ``last`` (paged; only when the server has no lag figure)."""
        count = 0
        start = id_after(last.encode())
        while True:
            page = await self.topology.call(rkey, "XRANGE", rkey, start, "+", "COUNT", _COUNT_PAGE)
            count += len(page)
            if len(page) < _COUNT_PAGE:
                return count
            start = id_after(page[-1][0])

    async def close(self) -> None:
        await self.streamer.close()


def _merge_group(
    name: str, parts: list[tuple[GroupShardStat, dict[str, Any], list[str]]]
) -> GroupStat:
    """One group across the shards of a stream key (Redis keeps a group per Redis key)."""
    members = tuple(sorted({m for _, _, names in parts for m in names}))
    shards = tuple(p[0] for p in parts)
    return GroupStat(
        name=name,
        consumers=len(members),
        members=members,
        pending=sum(s.pending or 0 for s in shards),
        lag=sum(s.lag or 0 for s in shards),
        shards=shards,
    )


def _glob_escape(key: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in key)


async def open_stat_source(uri: StreamUri, options: ConnectOptions) -> RedisStatSource:
    return RedisStatSource(uri, await open_redis(uri, options))
