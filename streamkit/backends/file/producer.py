"""The file backend's producer: appends batches to the streamer's shared ``SsFileWriter``.

One ``write`` per batch (``writer``); the relay's all-``Message`` batches take a C-speed path,
anything else is framed here. ``FileStreamer`` (``streamer``) hands producers out and closes the
writer when the last one closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from streamkit.backends.base import Payload, Producer
from streamkit.backends.file.writer import SsFileWriter
from streamkit.errors import BackendError, UsageError
from streamkit.message import INTERNAL_KEY, MAX_U64, Message, now_ms, validate_stream_key

if TYPE_CHECKING:
    from streamkit.backends.file.streamer import FileStreamer

__all__ = ["FileProducer"]

_JUST_MESSAGES = {Message}


def _refuse_internal(key: str, where: str) -> None:
    if key == INTERNAL_KEY:
        raise UsageError(f"{INTERNAL_KEY} is reserved for end-of-stream frames", where)


_stream_key_of = attrgetter("stream_key")


class FileProducer(Producer):
    def __init__(self, streamer: FileStreamer, writer: SsFileWriter, key: str | None) -> None:
        super().__init__(key)
        self._streamer = streamer
        self._writer = writer
        self._closed = False
        self._checked_keys: set[str] = set()

    async def send_many(self, items: Sequence[Payload]) -> None:
        if self._closed:
            raise BackendError("send on a closed file producer", self._writer.path)
        if not items:
            return
        if set(map(type, items)) == _JUST_MESSAGES:  # the relay path; a C-speed check
            if self.stream_key is None:
                for key in set(map(_stream_key_of, items)):
                    if key not in self._checked_keys:
                        _refuse_internal(key, self._writer.path)
                        self._checked_keys.add(key)
            self._writer.write_messages(items, self.stream_key)  # type: ignore[arg-type]
            return
        self._writer.write_frames(self._frames(items))

    def _frames(self, items: Sequence[Payload]) -> list[tuple[str, int, int, int, bytes]]:
        encoder = self._writer.encoder
        fixed = self.stream_key
        now = now_ms()
        frames: list[tuple[str, int, int, int, bytes]] = []
        append = frames.append
        next_seq: dict[tuple[str, int], int] = {}
        for item in items:
            if item.__class__ is Message:
                assert isinstance(item, Message)
                key = fixed if fixed is not None else item.stream_key
                if key not in self._checked_keys:
                    validate_stream_key(key, where=self._writer.path)
                    _refuse_internal(key, self._writer.path)
                    self._checked_keys.add(key)
                seq, shard = item.seq, item.shard_id
                if not (0 <= seq <= MAX_U64 and 0 <= shard <= MAX_U64 and item.timestamp >= 0):
                    raise UsageError(
                        f"message {key}:{shard}:{seq} has a field out of range "
                        f"(timestamp {item.timestamp})",
                        self._writer.path,
                    )
                last = next_seq.get((key, shard))
                if last is None:
                    last = encoder.next_seq(key, shard) if (key, shard) in encoder.streams else 0
                if seq < last:  # numbers that start again continue the stream's (as above)
                    seq = last
                next_seq[(key, shard)] = seq + 1
                append((key, shard, seq, item.timestamp, item.payload))
                continue
            if fixed is None:
                raise UsageError(
                    "this producer has no stream key, so it can only send Messages: give a key "
                    "(file://PATH/KEY)",
                    self._writer.path,
                )
            if isinstance(item, str):
                payload = item.encode("utf-8")
            elif isinstance(item, (bytes, bytearray, memoryview)):
                payload = bytes(item)
            else:
                raise TypeError(f"cannot send {type(item).__name__}: give bytes, str or Message")
            seq = next_seq.get((fixed, 0)) or encoder.next_seq(fixed, 0)
            next_seq[(fixed, 0)] = seq + 1
            append((fixed, 0, seq, now, payload))
        return frames

    async def flush(self) -> None:
        """Every batch is handed to the OS as it is sent, so there is nothing left to push."""

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._streamer._release_writer(self._streamer._eos)
