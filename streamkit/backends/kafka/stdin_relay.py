"""The direct stdin → Kafka relay: lines become records with no Message per line.

``relay --input stdio:///... --output kafka://host/topic`` hands no line to user code, so the
compiled decoder leaves each chunk's messages where they are (``LineDecoder.feed_spans``:
payload places and times) and the producer hands them from there to librdkafka
(``KafkaProducer.send_pieces``). Lines the C loop leaves to the general parser become Messages
and go through ``send_many``, in order with the rest, so errors, ``--on-invalid`` and the key
filter are the batch loop's. Taken for one ungrouped stdin consumer without ``--since`` or
``--until`` (``direct_input``), a producer on ``LibrdkafkaClient`` with one topic and no
``--partition-by FIELD`` (``takes_spans``), and, in the CLI, without ``--count``, ``--pace``
or ``--stats``; everything else is the batch loop.
"""

from __future__ import annotations

from streamkit.backends.base import Consumer, Producer
from streamkit.backends.kafka.producer import KafkaProducer
from streamkit.backends.stdio.reader import StdioConsumer
from streamkit.backends.stdio.relay import direct_input, note_left_out, read_chunks

__all__ = ["relay_spans"]


async def relay_spans(consumer: Consumer, producer: Producer) -> int | None:
    """stdin → Kafka without a Message per line; None if not applicable. Returns the number
    of messages handed to the producer (its ``close()`` then waits for their delivery)."""
    decoder = direct_input(consumer, "feed_spans")
    if decoder is None or not isinstance(producer, KafkaProducer) or not producer.takes_spans():
        return None
    assert isinstance(consumer, StdioConsumer)
    keep = consumer.keys or None
    try:
        async for data in read_chunks(consumer.hub):
            pieces = decoder.feed_spans(data, keep) if data else decoder.finish_spans(keep)
            await producer.send_pieces(pieces)  # what precedes a bad line is sent first
            if decoder.error is not None:
                raise decoder.error
    finally:
        note_left_out(consumer, decoder)
    relayed: int = decoder.relayed
    return relayed
