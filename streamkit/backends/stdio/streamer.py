"""``StdioStreamer``: hands out stdout producers and stdin consumers, checking the options."""

from __future__ import annotations

from streamkit.backends.base import (
    ConnectOptions,
    Consumer,
    ConsumerOptions,
    Producer,
    ProducerOptions,
    Streamer,
    reject_unsupported,
)
from streamkit.backends.stdio.reader import StdioConsumer, _stdin_hub
from streamkit.backends.stdio.writer import StdioProducer, _stdout_writer
from streamkit.errors import UsageError
from streamkit.uri import StreamUri


class StdioStreamer(Streamer):
    async def producer(
        self, stream_key: str | None = None, options: ProducerOptions | None = None
    ) -> Producer:
        options = options or ProducerOptions()
        reject_unsupported(options, "stdio", {"output_format", "end_with_eos"})
        return StdioProducer(_stdout_writer(), stream_key, options)

    async def _open_consumer(
        self, stream_keys: tuple[str, ...], options: ConsumerOptions
    ) -> Consumer:
        reject_unsupported(
            options,
            "stdio",
            {
                "offset",
                "since",
                "until",
                "mode",
                "group",
                "follow",
                "on_invalid",
                "no_meta",
                "input_format",
            },
        )
        if options.offset not in (None, "start"):
            raise UsageError("stdin cannot seek: --offset must be start (the default)", "--offset")
        if options.follow:
            raise UsageError(
                "stdin is always read to its end; --follow applies to files", "--follow"
            )
        if options.mode == "resumable":
            raise UsageError(
                "the stdio backend has no stored position: --mode resumable "
                "needs redis://, kafka:// or memory://",
                "--mode",
            )
        hub = _stdin_hub()
        hub.configure(options)
        consumer = StdioConsumer(hub, stream_keys, options)
        hub.consumers.append(consumer)
        return consumer


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> Streamer:
    reject_unsupported(options, "stdio", {"connect_timeout", "verbose"})
    return StdioStreamer(uri, options)
