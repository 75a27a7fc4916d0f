"""The file backend's consumer: reads a ``.ss`` file (``reader``), filters and positions.

Consumers replay from the start and stop at the end of the file as it was when they opened, or
at EOS; with ``follow=True`` they keep reading as the file grows, like ``tail -f``, and an EOS is
only a pause (the next writer resumes the file on top of it). They filter by the URI's keys and
start at ``offset`` (a seq, inclusive) or ``since`` (a time, inclusive) by bisecting the beacons
(``reader``).

``--mode resumable --group G`` remembers where a consumer got to: each ``commit`` (the relay
calls it after the output flushed the batch) writes the byte offset after the last committed
message to ``FILE.G.pos`` (``positions``), and the next consumer of the group starts there,
ignoring ``--offset``/``--since``. ``positions`` (json, hashlib, glob) is imported only by a
consumer with a group: a plain replay (``relay file → stdio``) never loads it.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

from streamkit.backends.base import Consumer, ConsumerOptions
from streamkit.backends.file.reader import READ_CHUNK, SeekTarget, SsFileReader
from streamkit.errors import BackendError, EndOfStream, FileFormatError
from streamkit.formats.codec import SsDecoder
from streamkit.formats.ss import HEADER_SIZE, Item
from streamkit.message import INTERNAL_KEY, Message

if TYPE_CHECKING:
    from streamkit.backends.file.positions import OutputMark, Position, PositionStore

__all__ = ["FileConsumer"]

_POLL_MIN = 0.001
_POLL_MAX = 0.1
"""Follow mode polls with a backoff from 1 ms to 100 ms while the file does not grow."""


def _refuse_a_torn_header(reader: SsFileReader) -> None:
    """An empty file holds no messages; 1-127 bytes are a torn header (damage, as decode and
    verify say), not an empty stream."""
    size = reader.size()
    if size:
        raise FileFormatError(
            f"file is {size} bytes long, too short for the 128-byte .ss header (a writer "
            "crashed while creating it?)",
            f"{reader.path} at byte 0",
            offset=0,
        )


_where_of = attrgetter("stream_key", "shard_id")
_seq_of = attrgetter("seq")


@dataclass
class _Delivered:
    """A batch handed out and not yet committed: where its frames start and end in the file.

    ``end`` is None when the batch is a cut (``--until``) and does not reach the end offset."""

    batch: list[Message]
    start: int
    end: int | None


class FileConsumer(Consumer):
    def __init__(self, path: str, keys: tuple[str, ...], options: ConsumerOptions) -> None:
        super().__init__(options)
        follow = bool(options.follow)
        self._store: PositionStore | None = None
        self._resume: Position | None = None
        if options.mode == "resumable" and options.group:
            self._store = self._open_group(path, options.group, keys)
        try:
            self._reader = SsFileReader(path, follow=follow, before_eos=True)
        except BaseException:
            if self._store is not None:
                self._store.close()
            raise
        self._keys = frozenset(keys) if keys else None
        self._delivered: collections.deque[_Delivered] = collections.deque()
        self._committed = 0
        self._seqs: dict[tuple[str, int], int] = {}
        self._header_bytes = b""
        self._cut = False
        self._real_path = os.path.realpath(path)
        self._fence_outputs: dict[str, OutputMark] = {}
        self._skip_written = 0
        self.already_written = 0
        """Messages not delivered again because the output file already held them (``_fence``)."""
        self._until = options.until
        self._since = options.since
        offset = options.offset
        self._min_seq = offset if isinstance(offset, int) and offset >= 0 else None
        self._skip: dict[tuple[str, int], int] = {}
        """--offset -N: messages still to pass over per (stream, shard) before the last N."""
        self._done = False
        self._closed = False
        self._poll = _POLL_MIN
        self._positioned = False
        self.filtered = 0
        self.filtered_keys: set[str] = set()
        try:
            if self._resume is not None:
                self._resume_at(self._resume)
            self._position()  # "end" means the end as it is now, not at the first read
        except BaseException:
            self._reader.close()
            if self._store is not None:
                self._store.close()
            raise

    def _open_group(self, path: str, group: str, keys: tuple[str, ...]) -> PositionStore:
        """The group's position store, locked, with its position (if any) loaded."""
        from streamkit.backends.file.positions import PositionStore

        store = PositionStore(path, group, keys or None)
        if not os.path.exists(path):
            if os.path.exists(store.path):
                raise store.mismatch("the file does not exist any more")
            return store  # the reader names the missing file
        store.writable()
        store.lock()
        try:
            self._resume = store.load()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def bytes_read(self) -> int:
        """Bytes read from the file so far (seeks read a few beacons, not the file)."""
        return self._reader.bytes_read

    def _resume_at(self, position: Position) -> None:
        """Start where the group committed, after checking the file still fits the position.

        A group with a position ignores --offset, --since and -N, as Redis and Kafka groups do.
        """
        from streamkit.backends.file.positions import TAIL_BYTES

        assert self._store is not None
        reader = self._reader
        offset = position.offset
        header = reader.peek(0, HEADER_SIZE)
        size = reader.size()
        tail = reader.peek(max(0, offset - TAIL_BYTES), min(offset, TAIL_BYTES))
        self._store.check(position, header if len(header) == HEADER_SIZE else None, size, tail)
        reader.read_header()
        reader.start_at(offset)
        self._header_bytes = header
        self._committed = offset
        self._seqs = dict(position.streams)
        self._fence_outputs = dict(position.outputs)
        self._since = None
        self._min_seq = None
        self._positioned = True

    def _position(self) -> bool:
        """Place the reader once the file has a header; False while it has none yet."""
        if self._positioned:
            return True
        reader = self._reader
        if reader.read_header() is None:
            return False
        if self._store is not None:
            self._header_bytes = reader.peek(0, HEADER_SIZE)
        if self.options.offset == "end":
            reader.seek_end()
            if reader.follow and reader.ends_with_eos:
                reader.park(reader.decoder.tell(), reader.eos_end)
        elif self._since is not None or self._min_seq is not None:
            reader.seek(SeekTarget(self._keys, self._min_seq, self._since))
        if self.options.last_n is not None:
            self._skip = self._count_before_last(self.options.last_n)
        self._positioned = True
        return True

    def _count_before_last(self, n: int) -> dict[tuple[str, int], int]:
        """--offset -N: how many messages of each stream and shard come before its last N.

        Counted by reading the file once up to its current end (beacons mark positions, not
        counts), so ``-N`` costs one extra read of the file."""
        counts: dict[tuple[str, int], int] = {}
        counter = SsFileReader(self._reader.path, follow=False, before_eos=True)
        try:
            if counter.read_header() is None:
                return {}
            while items := counter.read_items(65536):
                for m in self._select_keys(items):
                    where = (m.stream_key, m.shard_id)
                    counts[where] = counts.get(where, 0) + 1
        finally:
            counter.close()
        return {where: count - n for where, count in counts.items() if count > n}

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        reader = self._reader
        if self._fence_outputs:
            self._skip_written = self._fence(self._fence_outputs)
            self._fence_outputs = {}
        if self._stopping and not self._done:
            # Drain what was already read from the file; read nothing new.
            start = reader.decoder.tell()
            batch = self._select(reader.decoder.read(max_messages)) if self._positioned else []
            if batch and self._store is not None:
                batch = await self._hand_out(batch, start)
            if batch:
                return batch
            self._done = True
        while not self._done:
            if not self._positioned and not self._position():
                if not reader.follow:
                    _refuse_a_torn_header(reader)
                if not reader.follow or self._stopping:
                    break
                await self._wait()
                continue
            if reader.parked():
                if self._stopping:
                    break
                await self._wait()
                continue
            start = reader.decoder.tell()
            items = reader.read_items(max_messages)
            if items:
                self._poll = _POLL_MIN
                batch = self._select(items)
                if batch and self._store is not None:
                    batch = await self._hand_out(batch, start)
                if reader.decoder.ended:
                    if reader.follow and not self._stopping:
                        decoder = reader.decoder
                        reader.park(decoder.last_message_start, decoder.last_message_end)
                    else:
                        self._done = True
                if batch:
                    return batch
                continue
            if reader.decoder.ended or not reader.follow or self._stopping:
                break
            await self._wait()
        self._done = True
        raise EndOfStream

    async def _wait(self) -> None:
        await asyncio.sleep(self._poll)
        self._poll = min(self._poll * 2, _POLL_MAX)

    def _note_filtered(self, items: list[Item], keys: frozenset[str]) -> None:
        """Messages of other streams the key filter left out (the CLI reports them at exit)."""
        others = [
            m.stream_key
            for m in items
            if isinstance(m, Message) and m.stream_key not in keys and m.stream_key != INTERNAL_KEY
        ]
        if others:
            self.filtered += len(others)
            if len(self.filtered_keys) < 16:
                self.filtered_keys.update(others)

    def _select_keys(self, items: list[Item]) -> list[Message]:
        keys = self._keys
        if keys is None:
            return [m for m in items if isinstance(m, Message) and m.stream_key != INTERNAL_KEY]
        batch = [m for m in items if isinstance(m, Message) and m.stream_key in keys]
        if len(batch) < len(items):  # beacons, or other streams: count the latter
            self._note_filtered(items, keys)
        return batch

    def _pass_over(self, batch: list[Message]) -> list[Message]:
        """--offset -N: drop each stream's messages before its last N (counted at open)."""
        skip, out = self._skip, []
        for m in batch:
            where = (m.stream_key, m.shard_id)
            left = skip.get(where)
            if left:
                if left == 1:
                    del skip[where]
                else:
                    skip[where] = left - 1
                continue
            out.append(m)
        return out

    def _select(self, items: list[Item]) -> list[Message]:
        batch = self._select_keys(items)
        if self._skip:
            batch = self._pass_over(batch)
        if self._since is not None:
            since = self._since
            batch = [m for m in batch if m.timestamp >= since]
        if self._min_seq is not None:
            low = self._min_seq
            batch = [m for m in batch if m.seq >= low]
        if self._until is not None:
            until = self._until
            for i, m in enumerate(batch):
                if m.timestamp > until:
                    self._done = True
                    self._cut = True
                    return batch[:i]
        return batch

    # ---- resumable groups -------------------------------------------------------------------

    async def _hand_out(self, batch: list[Message], start: int) -> list[Message]:
        """Record a batch for ``commit``; leave out (and commit) what the output already has."""
        self._deliver(batch, start)
        if not self._skip_written:
            return batch
        k = min(self._skip_written, len(batch))
        self._skip_written -= k
        self.already_written += k
        await self.commit(batch[:k])
        return batch[k:]

    def _fence(self, outputs: dict[str, OutputMark]) -> int:
        """How many of the next messages a killed run of this relay already wrote to its output.

        A run killed after writing a batch to a ``.ss`` output but before committing it left
        that batch in the output after the size recorded with the last commit. When this
        process writes to that same file again and the messages there after that size are
        exactly (payload and timestamp, in order) the next messages of the input, they are
        committed without being delivered again: a file-to-file relay is then exact across a
        SIGKILL. Anything else (another output, other bytes there) delivers them again
        (at-least-once).
        """
        from streamkit.backends.file.positions import messages_after, writing

        for path, mark in sorted(outputs.items()):
            if not writing(path) or path == self._real_path:
                continue
            written = messages_after(path, mark)
            if written and self._upcoming(len(written)) == written:
                return len(written)
        return 0

    def _upcoming(self, n: int) -> list[tuple[bytes, int]]:
        """The next ``n`` wanted messages from the committed position, read on the side."""
        reader = self._reader
        header = reader.read_header()
        assert header is not None
        start = self._committed
        decoder = SsDecoder(source=reader.path, start=start, header=header)
        keys = self._keys
        out: list[tuple[bytes, int]] = []
        fed = start
        while len(out) < n:
            try:
                items = decoder.read(n - len(out))
            except FileFormatError:
                break
            if not items:
                if decoder.ended:
                    break
                chunk = reader.peek(fed, READ_CHUNK)
                if not chunk:
                    break
                fed += len(chunk)
                decoder.feed(chunk)
                continue
            out.extend(
                (m.payload, m.timestamp)
                for m in items
                if isinstance(m, Message)
                and m.stream_key != INTERNAL_KEY
                and (keys is None or m.stream_key in keys)
            )
        return out[:n]

    def _deliver(self, batch: list[Message], start: int) -> None:
        """Remember where a batch handed out lies, so ``commit`` needs no search of the file."""
        decoder = self._reader.decoder
        # After an EOS the next writer resumes on top of it: the position is its first byte.
        end = decoder.last_message_start if decoder.ended else decoder.last_message_end
        self._delivered.append(_Delivered(batch, start, None if self._cut else end))
        self._cut = False

    async def commit(self, messages: Sequence[Message]) -> None:
        """Record that every message up to ``messages[-1]`` (in delivery order) was handled.

        One position write per call, whatever the batch size: the relay calls this once per
        batch after the output flushed it. Commits of messages older than the committed
        position change nothing.
        """
        store = self._store
        if store is None or not messages:
            return
        last = messages[-1]
        offset = self._offset_after(last)
        if offset is None:
            if last.seq <= self._seqs.get((last.stream_key, last.shard_id), -1):
                return  # committed already
            raise BackendError(
                f"commit of a message this consumer did not deliver ({messages[-1].stream_key}:"
                f"{messages[-1].shard_id}:{messages[-1].seq})",
                store.path,
            )
        if offset <= self._committed:
            return
        self._seqs.update(zip(map(_where_of, messages), map(_seq_of, messages)))
        from streamkit.backends.file.positions import TAIL_BYTES, output_marks

        tail = self._reader.peek(offset - TAIL_BYTES, TAIL_BYTES)
        outputs = output_marks(exclude=self._real_path)
        store.save(offset, self._header_bytes, tail, self._seqs, outputs)
        self._committed = offset

    def _offset_after(self, last: Message) -> int | None:
        """The file offset right after ``last``; delivered batches up to it are dropped."""
        delivered = self._delivered
        for i, entry in enumerate(delivered):
            batch = entry.batch
            if batch[-1] is last and entry.end is not None:
                for _ in range(i + 1):
                    delivered.popleft()
                return entry.end
        for i, entry in enumerate(delivered):
            batch = entry.batch
            index = next((j for j, m in enumerate(batch) if m is last), None)
            if index is None:
                wanted = (last.stream_key, last.shard_id, last.seq)
                index = next(
                    (j for j, m in enumerate(batch) if (m.stream_key, m.shard_id, m.seq) == wanted),
                    None,
                )
            if index is None:
                continue
            offset = self._find_end(entry.start, batch[index])
            for _ in range(i):
                delivered.popleft()
            if index + 1 < len(batch):
                entry.batch = batch[index + 1 :]
                entry.start = offset
            else:
                delivered.popleft()
            return offset
        return None

    def _find_end(self, start: int, target: Message) -> int:
        """Decode from ``start`` until ``target``: the end of its frame (a commit of part of a
        batch, which only ``--count``, ``--until`` or a processor's failure policy cause)."""
        reader = self._reader
        header = reader.read_header()
        assert header is not None
        if start > HEADER_SIZE:
            decoder = SsDecoder(source=reader.path, start=start, header=header)
        else:
            decoder, start = SsDecoder(source=reader.path), 0
        wanted = (target.stream_key, target.shard_id, target.seq)
        fed = start
        while True:
            items = decoder.read(1)
            if items:
                item = items[0]
                if isinstance(item, Message) and (
                    (item.stream_key, item.shard_id, item.seq) == wanted
                ):
                    return decoder.last_message_end
                continue
            chunk = reader.peek(fed, 65536)
            if not chunk:
                raise BackendError("a delivered message is no longer in the file", reader.path)
            fed += len(chunk)
            decoder.feed(chunk)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._reader.close()
            if self._store is not None:
                self._store.close()
