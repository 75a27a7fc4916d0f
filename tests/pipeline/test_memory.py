"""Memory stays flat however long the stream: bounded queues and window, slow sink.

The issue's figure is 1,000,000 messages (scripts/benches/processor.py runs that); here 100,000
through a sink slower than the source prove the same property within a few seconds: traced
memory after the first tenth of the stream does not grow with the number of messages.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator

from streamkit.message import Message
from streamkit.pipeline import Pipeline, Stage
from tests.pipeline.streams import ListConsumer, ListProducer

TOTAL = 100_000


def stream() -> Iterator[Message]:
    for n in range(TOTAL):
        yield Message("in", 0, n, n, b"payload %08d ................................" % n)


def test_memory_is_flat_with_a_slow_sink() -> None:
    samples: list[int] = []

    class Sampling(ListConsumer):
        async def next_batch(self, max_messages: int = 1000) -> list[Message]:
            if self.read % 10_000 == 0:
                samples.append(tracemalloc.get_traced_memory()[0])
            return await super().next_batch(max_messages)

    def handler(message: Message) -> bytes:
        return message.payload[:20]

    sink = ListProducer(per_message=3e-5, keep=False)  # slower than the source: backpressure
    pipeline = Pipeline([Stage(handler, workers=4)], ordered=True)
    tracemalloc.start()
    try:
        snapshot = asyncio.run(pipeline.run(Sampling(stream(), batch=500), sink))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert snapshot.messages_out == sink.count == TOTAL
    assert len(samples) >= 8
    steady = samples[1:]
    # a held message costs ~200 bytes: growth under 1.5 MB means < 8% of the stream is held
    assert max(steady) - min(steady) < 1_500_000, samples
    assert peak < 8_000_000, peak
