"""stdout: the process's one writer of fd 1 (``_StdoutWriter``) and the producers that use it.

One ``write`` per batch; sequence counters per key are shared by all producers, as SeaStreamer
does.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable, Sequence

from streamkit.backends.base import Payload, Producer, ProducerOptions
from streamkit.errors import DataError, UsageError
from streamkit.formats.printing import stream_encoder
from streamkit.message import BROADCAST, Message, now_ms


class _StdoutWriter:
    """The one writer of fd 1 in this process: whole batches per ``write``."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self.next_seq: dict[str, int] = {}

    def write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                # stdout shares a non-blocking file description with a terminal stdin.
                select.select([], [self.fd], [])
                continue
            view = view[written:]


_writer: _StdoutWriter | None = None


def _stdout_writer() -> _StdoutWriter:
    global _writer
    if _writer is None:
        _writer = _StdoutWriter()
    return _writer


class StdioProducer(Producer):
    """Writes the line format (or JSON lines) to stdout, one ``write`` per batch."""

    def __init__(
        self,
        writer: _StdoutWriter,
        stream_key: str | None,
        options: ProducerOptions,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        super().__init__(stream_key)
        self.writer = writer
        self.clock = clock
        self._encode: Callable[[Sequence[Message], str | None], bytes]
        # The format's module is imported here, by name: JSON lines need orjson (start-up).
        self._encode = stream_encoder(options.output_format)
        self.closed = False

    async def send_many(self, items: Sequence[Payload]) -> None:
        if self.closed:
            raise UsageError("send on a closed producer", "stdio:///")
        if not items:
            return
        messages = self._messages(items)
        try:
            data = self._encode(messages, self.stream_key)
        except DataError:
            # A message the format cannot carry: write every message before it, then fail.
            for index in range(len(messages)):
                try:
                    self._encode(messages[index : index + 1], self.stream_key)
                except DataError:
                    if index:
                        self.writer.write(self._encode(messages[:index], self.stream_key))
                    raise
            raise
        self.writer.write(data)

    def _messages(self, items: Sequence[Payload]) -> Sequence[Message]:
        if not items or set(map(type, items)) == {Message}:  # C-level check of the whole batch
            return items  # type: ignore[return-value]
        now = self.clock()
        key = self.stream_key or BROADCAST
        next_seq = self.writer.next_seq
        out = []
        for item in items:
            if isinstance(item, Message):
                out.append(item)
                continue
            payload = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            seq = next_seq.get(key, 0)
            next_seq[key] = seq + 1
            out.append(Message(key, 0, seq, now, payload))
        return out

    def use_encoder(self, encode: Callable[[Sequence[Message], str | None], bytes]) -> None:
        """Write batches with ``encode`` instead of the --output-format's (relay's -f)."""
        self._encode = encode

    async def flush(self) -> None:
        """Every batch is written by ``send_many`` itself; nothing is held back."""

    async def close(self) -> None:
        self.closed = True
