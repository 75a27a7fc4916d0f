"""The fast stdin → stdout relay: the compiled decoder transcodes chunks, no Message per line."""

from __future__ import annotations

from typing import Any

from streamkit.backends.base import Consumer, Producer
from streamkit.backends.stdio.reader import _FILTERED_KEYS_KEPT, StdioConsumer
from streamkit.backends.stdio.writer import StdioProducer
from streamkit.formats.codec import encode_lines


async def relay_lines(consumer: Consumer, producer: Producer) -> int | None:
    """stdin → stdout in the line format without a Message per line; None if not applicable.

    The compiled decoder turns each chunk read into the output lines directly (copying lines
    already in canonical form, formatting the others, dropping keys the consumer does not
    read, renaming to the producer's key); lines it does not take go through the pure parser
    and encoder one by one, so output, errors and exit codes are those of the batch loop. Taken
    only for one ungrouped consumer without ``--since``/``--until`` and line output; returns
    the number of messages written.
    """
    if not isinstance(consumer, StdioConsumer) or not isinstance(producer, StdioProducer):
        return None
    hub = consumer.hub
    decoder = hub.decoder
    options = consumer.options
    if (
        not hasattr(decoder, "feed_into")
        or producer._encode is not encode_lines
        or producer.closed
        or consumer.group is not None
        or options.since is not None
        or options.until is not None
        or hub.consumers != [consumer]
        or consumer._pending
        or hub.eof
    ):
        return None
    transcoder: Any = decoder  # the compiled LineDecoder (line_compiled), by feed_into
    keep = consumer.keys or None
    out_key = producer.stream_key
    writer = producer.writer
    sink = bytearray()
    try:
        return await _transcode(hub, transcoder, sink, writer, keep, out_key)
    finally:
        left_out: dict[str, int] | None = transcoder.left_out
        if left_out:  # the key filter's count, for the CLI's note at exit
            consumer.filtered += sum(left_out.values())
            consumer.filtered_keys.update(sorted(left_out)[:_FILTERED_KEYS_KEPT])


async def _transcode(
    hub: Any, transcoder: Any, sink: bytearray, writer: Any, keep: Any, out_key: str | None
) -> int:
    while not hub.stopped.is_set():  # after stop() nothing new is read (as in pump)
        data = await hub._read()
        if data is None:
            break
        try:
            if data:
                transcoder.feed_into(data, sink, keep, out_key)
            else:
                transcoder.finish_into(sink, keep, out_key)
        finally:
            if sink:  # what precedes a bad line or message is written first
                writer.write(sink)
                sink.clear()
        if transcoder.error is not None:
            raise transcoder.error
        if not data:
            break
    hub.eof = True
    relayed: int = transcoder.relayed
    return relayed
