"""One data model for "what is in these streams": ``streamkit stat`` and ``streamer.stats()``.

Every backend describes itself with the same few dataclasses, so a table, a JSON object or a
library caller reads a file, a Redis key, a Kafka topic or a memory topic the same way:

    StatReport            one look at one URI (``taken_at``), backend-wide notes
    ├── FileStat          .ss files only: size, header, beacons, EOS, damage
    └── StreamStat        one stream key (a Redis key family, a Kafka topic, a memory topic)
        ├── ShardStat     one shard / partition: messages, seq range, time range
        └── GroupStat     one consumer group: members, pending, lag
            └── GroupShardStat   the group on one shard: committed / last delivered, lag

A field a backend cannot know is ``None`` (shown as ``-``), never a guess: Kafka has no pending
count, Redis no committed offset, and a broker that does not report members gives ``None``
members rather than an empty list. ``to_json()`` is the documented JSON shape (docs/stat.md);
field names there are stable.

``open_stat_source(uri)`` gives a reusable source (``--watch`` keeps its connections); each
backend's collector lives next to the backend (``backends/*_stats.py``) and is imported lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from streamkit.backends.base import ConnectOptions
from streamkit.errors import BackendError, UsageError
from streamkit.uri import StreamUri

__all__ = [
    "FileStat",
    "GroupShardStat",
    "GroupStat",
    "NoSuchStream",
    "ShardStat",
    "StatReport",
    "StatSource",
    "StreamStat",
    "open_stat_source",
]


class NoSuchStream(BackendError):
    """``stat`` was asked about a stream key, topic or file that does not exist (exit 1)."""


@dataclass(frozen=True)
class ShardStat:
    shard: int
    messages: int
    """Messages held now (file: frames; Redis: XLEN; Kafka: end - low; memory: depth)."""
    first_seq: int | None = None
    last_seq: int | None = None
    first_ts: int | None = None
    """Milliseconds since the epoch, UTC (None: empty, or the broker would not say)."""
    last_ts: int | None = None
    next_seq: int | None = None
    """The seq the next message gets: Kafka's end offset (true high watermark), memory's next."""
    first_id: str | None = None
    """Redis entry ids (``ms-n``) of the first and last entry."""
    last_id: str | None = None


@dataclass(frozen=True)
class GroupShardStat:
    shard: int
    committed: int | None = None
    """Kafka: the committed offset (the next to read); memory: every seq below it is acked."""
    last_delivered: str | None = None
    """Redis: the group's last-delivered-id on this shard."""
    pending: int | None = None
    """Redis: delivered, not acknowledged."""
    lag: int | None = None
    """Entries the group has still to read here (None: unknown, e.g. no commit yet)."""


@dataclass(frozen=True)
class GroupStat:
    name: str
    consumers: int | None
    """Members now (None: the broker does not report members)."""
    members: tuple[str, ...] | None = None
    pending: int | None = None
    lag: int | None = None
    """Sum of the known per-shard lags."""
    state: str | None = None
    """Kafka: the coordinator's state (STABLE, EMPTY...); memory: the group's mode."""
    shards: tuple[GroupShardStat, ...] = ()


@dataclass(frozen=True)
class StreamStat:
    key: str
    shards: tuple[ShardStat, ...]
    groups: tuple[GroupStat, ...] = ()

    @property
    def messages(self) -> int:
        return sum(s.messages for s in self.shards)

    @property
    def first_ts(self) -> int | None:
        known = [s.first_ts for s in self.shards if s.first_ts is not None]
        return min(known) if known else None

    @property
    def last_ts(self) -> int | None:
        known = [s.last_ts for s in self.shards if s.last_ts is not None]
        return max(known) if known else None


@dataclass(frozen=True)
class FileStat:
    path: str
    size: int
    name: str | None
    """The name in the file header (None when the header is damaged)."""
    created_at: int | None
    beacon_interval: int | None
    beacons: int
    payload_bytes: int
    eos_at: int | None
    """Byte offset of the end-of-stream frame; None: no EOS (still written, or not closed)."""
    damage: str | None = None
    damage_offset: int | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatReport:
    uri: str
    backend: str
    taken_at: int
    streams: tuple[StreamStat, ...]
    file: FileStat | None = None
    notes: tuple[str, ...] = field(default=())
    """Caveats about the figures (a broker known to misreport something, and what was done)."""

    def stream(self, key: str) -> StreamStat:
        for s in self.streams:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (docs/stat.md): stable names, ms timestamps, nulls."""
        return {
            "uri": self.uri,
            "backend": self.backend,
            "taken_at": self.taken_at,
            "streams": [
                {
                    "key": s.key,
                    "messages": s.messages,
                    "first_ts": s.first_ts,
                    "last_ts": s.last_ts,
                    "shards": [asdict(shard) for shard in s.shards],
                    "groups": [_group_json(g) for g in s.groups],
                }
                for s in self.streams
            ],
            "file": None if self.file is None else _file_json(self.file),
            "notes": list(self.notes),
        }


def _group_json(group: GroupStat) -> dict[str, Any]:
    out = asdict(group)
    out["members"] = None if group.members is None else list(group.members)
    out["shards"] = [asdict(s) for s in group.shards]
    return out


def _file_json(stat: FileStat) -> dict[str, Any]:
    out = asdict(stat)
    out["warnings"] = list(stat.warnings)
    return out


class StatSource(Protocol):
    """A backend's collector, kept open between looks (``--watch``)."""

    async def collect(self) -> StatReport: ...

    async def close(self) -> None: ...


_COLLECTORS = {
    "file": "streamkit.backends.file.stats",
    "redis": "streamkit.backends.redis.stats",
    "rediss": "streamkit.backends.redis.stats",
    "kafka": "streamkit.backends.kafka.stats",
    "memory": "streamkit.backends.memory.streamer",
}


async def open_stat_source(uri: StreamUri, options: ConnectOptions | None = None) -> StatSource:
    """A read-only collector for ``uri`` (its keys narrow the report; none: every stream).

    Nothing is created on the way: no group, topic, key or file. A named stream that does not
    exist raises ``NoSuchStream`` at the first ``collect()``.
    """
    module_name = _COLLECTORS.get(uri.scheme)
    if module_name is None:
        raise UsageError(
            f"{uri.scheme}:// streams have no stored state to describe (use file, redis, "
            "kafka or memory)",
            uri.redacted(),
        )
    module = importlib.import_module(module_name)
    source: StatSource = await module.open_stat_source(uri, options or ConnectOptions())
    return source


def missing(keys: Sequence[str], found: Sequence[str], why: str, where: str) -> None:
    """Raise ``NoSuchStream`` naming every requested key that is not there, and why."""
    absent = [k for k in keys if k not in found]
    if absent:
        names = ", ".join(repr(k) for k in absent)
        raise NoSuchStream(f"no such stream: {names} ({why})", where)
