"""Appending to a ``.ss`` file: find where to resume, rebuild marker state, write batches.

Opening an existing file scans it once (DESIGN §6): the writer resumes right after the last good
frame — on top of a final EOS, or over a half-written frame a crashed writer left — truncating
what follows, and it rebuilds every stream's running checksum and highest seq from the frames, so
the beacons it writes stay true and new sequence numbers continue the old ones. Damage that is
not a cut-off tail (a bad checksum, garbage in the middle, frames hidden behind an early EOS) is
refused: appending would bury it, and ``streamkit verify --repair`` is the deliberate way out.

One ``os.write`` per batch: the encoder returns the whole batch, beacons and splices included, as
one bytes object.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from itertools import islice
from operator import attrgetter, lt

from streamkit.backends.file.reader import DIRECTORY_HINT
from streamkit.errors import BackendError, FileFormatError, UsageError
from streamkit.formats.codec import SsEncoder  # the C frame loop when built
from streamkit.formats.crc16 import CRC16_INIT, crc16_calc, word_table
from streamkit.formats.ss import (
    DEFAULT_BEACON_INTERVAL,
    HEADER_SIZE,
    Item,
    StreamState,
    is_eos,
    validate_beacon_interval,
)
from streamkit.message import Message, now_ms

__all__ = ["SsFileWriter", "rebuild_state"]

log = logging.getLogger("streamkit.file")
_shard_of = attrgetter("shard_id")
_stream_key_of = attrgetter("stream_key")
_seq_of = attrgetter("seq")


class _StateBuilder:
    """Replays frames into per-stream marker state, as the writer that wrote them had it."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, int], StreamState] = {}
        self._table = word_table()

    def add(self, items: list[Item]) -> None:
        streams = self.streams
        table = self._table
        for item in items:
            if item.__class__ is not Message:
                continue
            assert isinstance(item, Message)
            if is_eos(item):
                continue
            crc = crc16_calc(item.payload, CRC16_INIT) if item.payload else CRC16_INIT
            state = streams.get((item.stream_key, item.shard_id))
            if state is None:
                state = streams[(item.stream_key, item.shard_id)] = StreamState(
                    item.seq, item.timestamp
                )
            else:
                if item.seq > state.seq:
                    state.seq = item.seq
                if item.timestamp > state.timestamp:
                    state.timestamp = item.timestamp
            state.running = table[state.running ^ crc]


def rebuild_state(path: str) -> tuple[int, int, dict[tuple[str, int], StreamState]]:
    """Scan a file: ``(resume offset, beacon interval, stream state)`` for appending to it.

    The EOS frame a clean close leaves is not part of the state: the writer overwrites it.
    """
    from streamkit.backends.file.reader import SsFileReader

    builder = _StateBuilder()
    reader = SsFileReader(path)
    try:
        header = reader.read_header()
        if header is None:
            raise FileFormatError(
                f"file is {reader.size()} bytes long, too short for the 128-byte .ss header "
                "(not a .ss file, or a writer crashed while creating it)",
                path,
                offset=0,
            )
        resume = HEADER_SIZE
        while True:
            try:
                items = reader.read_items()
            except FileFormatError:
                if not reader.decoder.truncated:
                    raise
                log.warning(
                    "%s: dropping a half-written tail of %d bytes after byte %d",
                    path,
                    reader.size() - resume,
                    resume,
                )
                break
            if not items:
                break
            builder.add(items)
            if reader.decoder.last_message_end > 0:
                resume = reader.decoder.last_message_end
            if reader.decoder.ended:
                resume = reader.decoder.last_message_start
                if reader.decoder.tell() < reader.size():
                    raise FileFormatError(
                        f"{reader.size() - reader.decoder.tell()} bytes follow the end-of-stream "
                        "frame; readers stop at it, so appended messages would be invisible "
                        "(`streamkit verify --repair` cuts them off, keeping a backup)",
                        f"{path} at byte {resume}",
                        offset=resume,
                    )
                break
        return resume, header.beacon_interval, builder.streams
    except FileFormatError as exc:
        if "verify --repair" not in exc.what:
            exc.what += "; cannot append to a damaged file (`streamkit verify --repair` fixes it)"
        raise
    finally:
        reader.close()


def _increasing(seqs: list[int]) -> bool:
    """Strictly increasing: a contiguous run (the usual case) is checked cheapest."""
    return seqs == list(range(seqs[0], seqs[0] + len(seqs))) or all(
        map(lt, seqs, islice(seqs, 1, None))
    )


class SsFileWriter:
    """The one writer of a file within a streamer; producers share it."""

    def __init__(self, path: str, beacon_interval: int | None = None) -> None:
        if beacon_interval is not None:
            validate_beacon_interval(beacon_interval)
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except IsADirectoryError:
            raise UsageError(DIRECTORY_HINT, path) from None
        except OSError as exc:
            raise UsageError(f"cannot open for writing: {exc.strerror}", path) from None
        try:
            size = os.fstat(self._fd).st_size
            if size == 0:
                self.encoder = SsEncoder(beacon_interval or DEFAULT_BEACON_INTERVAL)
                self._write(self.encoder.header(os.path.basename(path), now_ms()))
            else:
                resume, interval, streams = rebuild_state(path)
                if beacon_interval is not None and beacon_interval != interval:
                    log.warning(
                        "%s: the file's beacon interval %d wins over --beacon-interval %d",
                        path,
                        interval,
                        beacon_interval,
                    )
                if resume < size:
                    os.ftruncate(self._fd, resume)
                self.encoder = SsEncoder(interval, position=resume, streams=streams)
                os.lseek(self._fd, resume, os.SEEK_SET)
                self._write(self.encoder.resume())
        except BaseException:
            os.close(self._fd)
            raise
        self.closed = False
        self._top: int | None = None
        """The highest seq of any stream in the file (None: to be computed)."""

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            raise BackendError(f"write failed: {exc.strerror}", self.path) from None

    def write_frames(self, frames: list[tuple[str, int, int, int, bytes]]) -> None:
        if self.closed:
            raise BackendError("the file producer is closed", self.path)
        self._top = None
        self._write(self.encoder.encode(frames))
        self._raise_failed()

    def write_messages(self, messages: Sequence[Message], key: str | None) -> None:
        """Messages keep seq, shard and timestamp; ``key`` (if given) replaces their keys.

        A seq that does not grow on its stream is continued instead (``continue_seqs``).
        """
        if self.closed:
            raise BackendError("the file producer is closed", self.path)
        batch = self.continue_seqs(messages, key)
        self._write(self.encoder.encode_messages(batch, key))
        self._raise_failed()

    def continue_seqs(self, messages: Sequence[Message], key: str | None) -> Sequence[Message]:
        """``messages`` with every seq that is not above its stream's last one renumbered.

        Sequence numbers in a file grow per (key, shard), so ``--offset N`` and the beacons'
        markers find every message: a source whose numbers start again (a new stdin counts from
        0, the same stream relayed twice) continues from what the file holds. The common case --
        one stream, increasing, above the file's last seq -- is checked at C speed and returns
        ``messages`` unchanged.
        """
        streams = self.encoder.streams
        seqs = list(map(_seq_of, messages))
        top = self._top
        if top is None:
            top = self._top = max((state.seq for state in streams.values()), default=-1)
        if seqs[0] > top and _increasing(seqs):
            # Above every seq in the file and increasing: above each stream's own last seq.
            self._top = seqs[-1]
            return messages
        self._top = None  # recomputed from the streams on the next batch
        first = messages[0]
        if len(set(map(_shard_of, messages))) == 1 and (
            key is not None or len(set(map(_stream_key_of, messages))) == 1
        ):
            state = streams.get((key or first.stream_key, first.shard_id))
            if (state is None or seqs[0] > state.seq) and _increasing(seqs):
                return messages
        out: list[Message] = []
        last_of: dict[tuple[str, int], int] = {}
        for message in messages:
            stream = (key or message.stream_key, message.shard_id)
            last = last_of.get(stream)
            if last is None:
                state = streams.get(stream)
                last = state.seq if state is not None else -1
            if message.seq <= last:
                message = replace(message, seq=last + 1)
            last_of[stream] = message.seq
            out.append(message)
        return out

    def _raise_failed(self) -> None:
        if self.encoder.failed is not None:
            raise UsageError(
                f"{self.encoder.failed} (the messages before it were written)", self.path
            )

    def close(self, *, eos: bool) -> None:
        """Write EOS if asked, then fsync and close: a clean end a reader can trust."""
        if self.closed:
            return
        self.closed = True
        try:
            if eos:
                self._write(self.encoder.eos(now_ms()))
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
