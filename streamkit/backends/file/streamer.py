"""``file://PATH/KEYS``: SeaStreamer ``.ss`` files as a stream backend.

Producers append (a new file gets a header; an existing one is resumed after its last good frame,
see ``writer``), one ``write`` per batch, EOS and fsync on close. Consumers replay from the
start and stop at the end of the file as it was when they opened, or at EOS; with
``follow=True`` they keep reading as the file grows, like ``tail -f``, and an EOS is only a pause
(the next writer resumes the file on top of it). They filter by the URI's keys and start at
``offset`` (a seq, inclusive) or ``since`` (a time, inclusive) by bisecting the beacons
(``reader``).

``--mode resumable --group G`` remembers where a consumer got to: each ``commit`` (the relay
calls it after the output flushed the batch) writes the byte offset after the last committed
message to ``FILE.G.pos`` (``positions``), and the next consumer of the group starts there,
ignoring ``--offset``/``--since``. Load-balanced groups are refused: a file has no broker to
share its messages out.

``FileStreamer`` lives here; ``FileProducer`` is in ``producer`` and ``FileConsumer`` in
``consumer`` (re-exported here, where they always were, on first use: PEP 562). Each is imported
when first needed, so a file → stdout relay never loads the writer, the encoder or
``positions``, and a stdio → file relay never loads the consumer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamkit.lazy as lazy
from streamkit.backends.base import (
    ConnectOptions,
    ConsumerOptions,
    ProducerOptions,
    Streamer,
    reject_unsupported,
)
from streamkit.errors import UsageError
from streamkit.message import validate_stream_key
from streamkit.uri import StreamUri

if TYPE_CHECKING:
    from streamkit.backends.file.consumer import FileConsumer
    from streamkit.backends.file.producer import FileProducer
    from streamkit.backends.file.writer import SsFileWriter

__all__ = ["FileConsumer", "FileProducer", "FileStreamer", "open_streamer"]

_CONSUMER_OPTIONS = {"offset", "since", "until", "follow"}
_PRODUCER_OPTIONS = {"beacon_interval", "end_with_eos"}


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> FileStreamer:
    return FileStreamer(uri, options)


class FileStreamer(Streamer):
    """One ``.ss`` file. Its producers share one writer; each consumer reads on its own."""

    def __init__(self, uri: StreamUri, options: ConnectOptions) -> None:
        super().__init__(uri, options)
        self.path = uri.path
        self._writer: SsFileWriter | None = None
        self._writer_users = 0
        self._eos = True
        self._consumers: list[FileConsumer] = []

    async def producer(
        self, stream_key: str | None = None, options: ProducerOptions | None = None
    ) -> FileProducer:
        from streamkit.backends.file.positions import output_opened
        from streamkit.backends.file.producer import FileProducer, _refuse_internal
        from streamkit.backends.file.writer import SsFileWriter

        options = options or ProducerOptions()
        reject_unsupported(options, "file", _PRODUCER_OPTIONS)
        if stream_key is not None:
            validate_stream_key(stream_key, where=str(self.uri))
            _refuse_internal(stream_key, str(self.uri))
        if self._writer is None:
            self._writer = SsFileWriter(self.path, options.beacon_interval)
            output_opened(self._writer.path)
        self._writer_users += 1
        self._eos = options.end_with_eos
        return FileProducer(self, self._writer, stream_key)

    def _release_writer(self, eos: bool) -> None:
        self._writer_users -= 1
        if self._writer_users <= 0 and self._writer is not None:
            from streamkit.backends.file.positions import output_closed

            writer, self._writer = self._writer, None
            output_closed(writer.path)
            writer.close(eos=eos)

    async def _open_consumer(
        self, stream_keys: tuple[str, ...], options: ConsumerOptions
    ) -> FileConsumer:
        reject_unsupported(options, "file", _CONSUMER_OPTIONS | {"mode", "group"})
        if options.mode == "load-balanced":
            raise UsageError(
                "the file backend has no load-balanced consumer groups (no broker shares a "
                "file's messages out): use --mode resumable --group G to remember a position",
                "--mode",
            )
        if options.group and options.mode != "resumable":
            raise UsageError(
                "a --group on a file needs --mode resumable (the file backend has no other "
                "consumer groups)",
                "--group",
            )
        from streamkit.backends.file.consumer import FileConsumer

        consumer = FileConsumer(self.path, stream_keys, options)
        self._consumers.append(consumer)
        return consumer

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.close()
        if self._writer is not None:
            from streamkit.backends.file.positions import output_closed

            writer, self._writer = self._writer, None
            output_closed(writer.path)
            self._writer_users = 0
            writer.close(eos=self._eos)


_LAZY = {
    "FileConsumer": "streamkit.backends.file.consumer",
    "FileProducer": "streamkit.backends.file.producer",
}


def __getattr__(name: str) -> Any:
    """``FileConsumer`` and ``FileProducer``, imported from their modules on first use."""
    return lazy.load(__name__, _LAZY, name)
