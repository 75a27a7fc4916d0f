"""``stat`` for ``.ss`` files: one scan by ``verify``'s checker, reported as ``StatReport``.

The scan is verify's (``verify_file``): the same decoder, CRC checks and EOS rules, so ``stat``
and ``verify`` never disagree about damage. Damage is reported, not raised: ``stat`` describes
what is readable up to it. The file is opened read-only; a missing file is ``NoSuchStream``.

A look is one plain call, not ``asyncio.to_thread``: the scan is the whole command, with nothing
else on the event loop to keep responsive, and a thread pool was start-up time (its modules and a
thread). ``positions`` (json, hashlib, glob) loads only when a ``FILE.GROUP.pos`` is there.
"""

from __future__ import annotations

import os

from streamkit.backends.base import ConnectOptions
from streamkit.backends.file.scan import ProgressSink, verify_file
from streamkit.message import INTERNAL_KEY, now_ms
from streamkit.stats import (
    FileStat,
    GroupShardStat,
    GroupStat,
    NoSuchStream,
    ShardStat,
    StatReport,
    StreamStat,
    missing,
)
from streamkit.uri import StreamUri

__all__ = ["FileStatSource", "open_stat_source"]


class FileStatSource:
    def __init__(self, uri: StreamUri) -> None:
        self.uri = uri
        self.path = uri.path

    async def collect(self) -> StatReport:
        return self.look()

    def look(self, progress: ProgressSink | None = None) -> StatReport:
        """One look, without an event loop: ``stat FILE`` runs this alone (see cli/stat.py).

        ``progress``: told the bytes scanned (the CLI's bar on a terminal)."""
        where = self.uri.redacted()
        if not os.path.isfile(self.path):
            what = "is not a file" if os.path.exists(self.path) else "does not exist"
            raise NoSuchStream(f"no such stream: {self.path} {what}", where)
        taken = now_ms()
        report = verify_file(self.path, progress)
        by_key: dict[str, list[ShardStat]] = {}
        for (key, shard), s in sorted(report.streams.items()):
            if key == INTERNAL_KEY:
                continue
            by_key.setdefault(key, []).append(
                ShardStat(
                    shard=shard,
                    messages=s.count,
                    first_seq=s.min_seq,
                    last_seq=s.max_seq,
                    first_ts=s.min_ts,
                    last_ts=s.max_ts,
                )
            )
        keys = self.uri.keys
        if keys:
            missing(keys, list(by_key), f"no message with that key in {self.path}", where)
        groups = _groups(self.path, by_key)
        streams = tuple(
            StreamStat(key, tuple(shards), groups.get(key, ()))
            for key, shards in by_key.items()
            if not keys or key in keys
        )
        header = report.header
        damage = report.damage
        file = FileStat(
            path=self.path,
            size=report.size,
            name=header.file_name if header else None,
            created_at=header.created_at if header else None,
            beacon_interval=header.beacon_interval if header else None,
            beacons=report.beacons,
            payload_bytes=report.payload_bytes,
            eos_at=report.eos_at,
            damage=str(damage) if damage is not None else None,
            damage_offset=damage.offset if damage is not None else None,
            warnings=tuple(report.warnings),
        )
        return StatReport(where, "file", taken, streams, file)

    async def close(self) -> None:
        return None


def _groups(path: str, by_key: dict[str, list[ShardStat]]) -> dict[str, tuple[GroupStat, ...]]:
    """Resumable groups (``FILE.G.pos``) per stream: the committed seq and the messages after it."""
    out: dict[str, list[GroupStat]] = {}
    if not _has_positions(path):
        return {}
    from streamkit.backends.file.positions import group_states

    for state in group_states(path):
        position = state.position
        live = 1 if state.live else 0
        if position is None:
            continue
        status = "committed" if state.fits else "position no longer fits the file"
        for key, shards in by_key.items():
            if position.keys is not None and key not in position.keys:
                continue
            parts = []
            for shard in shards:
                seq = position.streams.get((key, shard.shard))
                last = shard.last_seq
                lag = None
                if state.fits and last is not None:
                    lag = last - seq if seq is not None else shard.messages
                committed = seq + 1 if seq is not None else None
                parts.append(GroupShardStat(shard.shard, committed=committed, lag=lag))
            lags = [p.lag for p in parts if p.lag is not None]
            out.setdefault(key, []).append(
                GroupStat(
                    state.group,
                    live,
                    lag=sum(lags) if lags else None,
                    state=status,
                    shards=tuple(parts),
                )
            )
    return {key: tuple(groups) for key, groups in out.items()}


def _has_positions(path: str) -> bool:
    """Whether any ``PATH.*.pos`` may be beside the file: a directory listing, no glob."""
    folder, name = os.path.split(path)
    prefix = name + "."
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return True  # let group_states decide, as before
    return any(n.startswith(prefix) and n.endswith(".pos") for n in names)


async def open_stat_source(uri: StreamUri, options: ConnectOptions) -> FileStatSource:
    return FileStatSource(uri)
