"""The fast stdin → stdout relay: the compiled decoder transcodes chunks, no Message per line.

``direct_input`` and ``note_left_out`` serve the stdin → Kafka relay too (backends/kafka).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from streamkit.backends.base import Consumer, Producer
from streamkit.backends.stdio.reader import _FILTERED_KEYS_KEPT, StdioConsumer
from streamkit.backends.stdio.writer import StdioProducer
from streamkit.formats.codec import encode_lines


def direct_input(consumer: Consumer, method: str) -> Any | None:
    """The stdin hub's decoder, for a relay that reads stdin past the consumer (``method``: the
    decoder's entry it will call, which only the compiled one has); None where the batch loop
    must read: a consumer in a group, with ``--since``/``--until``, sharing stdin with another,
    or with messages already taken."""
    if not isinstance(consumer, StdioConsumer):
        return None
    hub = consumer.hub
    options = consumer.options
    if (
        not hasattr(hub.decoder, method)
        or consumer.group is not None
        or options.since is not None
        or options.until is not None
        or hub.consumers != [consumer]
        or consumer._pending
        or hub.eof
    ):
        return None
    return hub.decoder


def note_left_out(consumer: StdioConsumer, decoder: Any) -> None:
    """The key filter's count of a direct relay, for the CLI's note at exit."""
    left_out: dict[str, int] | None = decoder.left_out
    if left_out:
        consumer.filtered += sum(left_out.values())
        consumer.filtered_keys.update(sorted(left_out)[:_FILTERED_KEYS_KEPT])


async def relay_lines(consumer: Consumer, producer: Producer) -> int | None:
    """stdin → stdout in the line format without a Message per line; None if not applicable.

    The compiled decoder turns each chunk read into the output lines directly (copying lines
    already in canonical form, formatting the others, dropping keys the consumer does not
    read, renaming to the producer's key); lines it does not take go through the pure parser
    and encoder one by one, so output, errors and exit codes are those of the batch loop. Taken
    only for one ungrouped consumer without ``--since``/``--until`` and line output; returns
    the number of messages written.
    """
    transcoder = direct_input(consumer, "feed_into")  # the compiled LineDecoder (line_compiled)
    if (
        transcoder is None
        or not isinstance(producer, StdioProducer)
        or producer._encode is not encode_lines
        or producer.closed
    ):
        return None
    assert isinstance(consumer, StdioConsumer)
    keep = consumer.keys or None
    sink = bytearray()
    try:
        return await _transcode(
            consumer.hub, transcoder, sink, producer.writer, keep, producer.stream_key
        )
    finally:
        note_left_out(consumer, transcoder)


async def read_chunks(hub: Any) -> AsyncIterator[bytes]:
    """stdin's chunks as read, then ``b""`` at its end; nothing new after ``stop()`` (as in
    ``pump``). Marks the hub's input as ended when done."""
    while not hub.stopped.is_set():
        data = await hub._read()
        if data is None:  # stopped while waiting
            break
        yield data
        if not data:
            break
    hub.eof = True


async def _transcode(
    hub: Any, transcoder: Any, sink: bytearray, writer: Any, keep: Any, out_key: str | None
) -> int:
    async for data in read_chunks(hub):
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
    relayed: int = transcoder.relayed
    return relayed
