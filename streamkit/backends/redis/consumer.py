"""Reading Redis streams: XREAD (realtime) or XREADGROUP (resumable, load-balanced), paged.

Shards: a consumer of ``k`` reads ``k`` and every ``k:N`` that SCAN finds (never KEYS), and
looks again every ``scan_interval`` while following. A *reader* is the set of shards one command
reads: all of them on a single server, one shard per reader in a cluster (a shard's keys hash to
different slots). Each reader runs one read at a time in its own task on its own connection,
so a blocking read never holds up acks or another node, and ``stop()`` can cut it short.

Positions: realtime keeps the last delivered id per shard in memory; group modes keep theirs
in the group (own pending entries first with id ``0``, then ``>``), with XACK in ``commit()``.

Start-up (shards, start ids, groups) and the state shared by both halves are in ``positions.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import hiredis

from streamkit.backends.redis.ids import (
    MAX_SUB,
    redis_key,
    seq_to_id,
)
from streamkit.backends.redis.positions import (
    _NEW,
    ConsumerPositions,
    ConsumerSettings,
    _id_tuple,
    _Reader,
    _Shard,
    shard_node,
)
from streamkit.backends.redis.reading import read_entries
from streamkit.backends.redis.topology import Backoff, warn
from streamkit.backends.redis.wire import (
    ServerError,
    encode_command,
    reply_error_code,
)
from streamkit.errors import BackendError, EndOfStream
from streamkit.message import Message, now_ms

__all__ = ["ConsumerSettings", "RedisConsumer"]


class RedisConsumer(ConsumerPositions):
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
            if not entries:
                continue
            last_id, over = read_entries(
                entries,
                shard,
                out,
                until=until,
                field_name=field_name,
                grouped=self._grouped,
                where=where,
                skip_acks=self._skip_acks,
                wide=self._wide,
            )
            self.wide_ids += over
            if shard.position != _NEW:
                shard.position = last_id
            end = shard.end
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
        ready = self._ready
        if max_messages >= len(ready):  # the usual case: all of it, without a loop per message
            out = list(ready)
            ready.clear()
            return out
        popleft = ready.popleft
        return [popleft() for _ in range(max_messages)]

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
