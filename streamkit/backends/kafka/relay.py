"""The direct Kafka → stdout relay: records become line-format bytes, no Message per record.

``relay --input kafka://... --output stdio:///...`` with the default line output hands every
record to no user code, so the consumer writes each batch's lines itself
(``KafkaConsumer.next_lines``: C, or its pure twin, for plain records; the Message path for
the rest) and this loop writes them to stdout. Taken only where the result is the batch loop's
byte for byte: one Kafka input, stdout in the line format (no ``--output-format json``, no
``-f`` template), no ``--count``, ``--pace`` or group mode (whose commits need the messages).
"""

from __future__ import annotations

import asyncio
from typing import Any

from streamkit.backends.base import Consumer, Producer
from streamkit.backends.kafka.consumer import KafkaConsumer
from streamkit.backends.stdio import StdioProducer
from streamkit.errors import EndOfStream
from streamkit.formats.codec import encode_lines

__all__ = ["KafkaLinesRelay"]


class KafkaLinesRelay:
    """One relay run; ``relayed`` counts the messages written so far (also after an error)."""

    def __init__(self, consumer: KafkaConsumer, producer: StdioProducer, stats: Any) -> None:
        self.consumer = consumer
        self.producer = producer
        self.stats = stats
        """``RelayStats`` (its ``messages`` is kept up to date) or None."""
        self.relayed = 0

    @classmethod
    def taking(
        cls, consumer: Consumer, producer: Producer, stats: Any = None
    ) -> KafkaLinesRelay | None:
        """The relay for this pair, or None where the batch loop must run (see the module)."""
        if not isinstance(consumer, KafkaConsumer) or not isinstance(producer, StdioProducer):
            return None
        key = producer.stream_key
        if (
            producer._encode is not encode_lines
            or producer.closed
            or consumer.options.needs_commit
            or (key is not None and not key.isascii())
        ):
            return None
        return cls(consumer, producer, stats)

    async def run(self, batch_size: int) -> int:
        """Relay until the consumer ends; returns the number of messages written."""
        consumer, stats = self.consumer, self.stats
        out_key = self.producer.stream_key
        write = self.producer.writer.write
        sink = bytearray()
        while True:
            try:
                count = await consumer.next_lines(batch_size, out_key, sink)
            except EndOfStream:
                return self.relayed
            finally:
                if sink:  # the lines before a message the format cannot carry, too
                    write(sink)
                    sink.clear()
            # As ``Consumer.batches``: a signal's stop() runs between batches.
            await asyncio.sleep(0)
            self.relayed += count
            if stats is not None:
                stats.messages = self.relayed
