"""``streamkit relay``: copy a stream from any URI to any URI.

The loop is the library's batch path: ``consumer.batches(n)`` → ``producer.send_many(batch)``,
and, in resumable/load-balanced modes, ``producer.flush()`` then ``consumer.commit(batch)`` so a
message is acknowledged only after it was written downstream (at-least-once).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import click

from streamkit.backends.base import ConnectOptions
from streamkit.cli.options import (
    URI,
    connect_options,
    connect_options_from,
    consumer_options,
    consumer_options_from,
    producer_options,
    producer_options_from,
)
from streamkit.cli.progress import relay_progress
from streamkit.cli.runner import Shutdown, run_async, tune_gc
from streamkit.connect import open_streamer
from streamkit.errors import UsageError
from streamkit.uri import StreamUri

__all__ = ["relay"]

EXAMPLES = """
\b
Examples:
  streamkit clock --stream tick --count 5 | streamkit relay --output file://./t.ss/tick
  streamkit relay --input file://./t.ss/tick --since 2026-11-23T07:00:02
  streamkit relay --input redis://127.0.0.1:6379/orders \\
      --output kafka://127.0.0.1:9092/orders --offset start
  streamkit relay --input kafka://127.0.0.1:9092/events -e --output-format json
"""


@click.command(epilog=EXAMPLES)
@click.option(
    "--input",
    "input_uri",
    type=URI,
    default="stdio:///",
    show_default=True,
    help="Stream to read: stdio:///KEYS, file://PATH/KEYS, redis://HOST:PORT/KEYS, "
    "kafka://HOST:PORT/TOPICS, memory://NAME/KEYS.",
)
@click.option(
    "--output",
    "output_uri",
    type=URI,
    default="stdio:///",
    show_default=True,
    help="Stream to write. Its key names the output stream; with no key "
    "(stdio:///) every message keeps its own.",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=None, help="Stop after relaying N messages."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Most messages moved per read/write.",
)
@consumer_options
@producer_options
@connect_options
def relay(**values: Any) -> int:
    """Copy messages from --input to --output, keeping timestamp, sequence number and shard
    wherever the output can carry them."""
    input_uri: StreamUri = values["input_uri"]
    output_uri: StreamUri = values["output_uri"]
    if input_uri == output_uri and input_uri.scheme != "stdio":
        raise UsageError(
            "input and output are the same stream; relaying would loop", input_uri.redacted()
        )
    output_key = output_uri.key
    tune_gc()
    return run_async(lambda shutdown: _relay(values, input_uri, output_uri, output_key, shutdown))


_TAKES_SETTINGS = ("redis", "rediss", "kafka", "memory")


def _for_side(options: ConnectOptions, uri: StreamUri) -> ConnectOptions:
    """-X settings go to the client backends (as in kcat); stdio and files take none."""
    if uri.scheme in _TAKES_SETTINGS or not options.settings:
        return options
    return replace(options, settings={})


async def _relay(
    values: dict[str, Any],
    input_uri: StreamUri,
    output_uri: StreamUri,
    output_key: str | None,
    shutdown: Shutdown,
) -> int:
    consumer_options = consumer_options_from(values)
    producer_options = producer_options_from(values)
    connect = connect_options_from(values)
    input_connect = _for_side(connect, input_uri)
    output_connect = _for_side(connect, output_uri)
    if connect.settings and not (input_connect.settings or output_connect.settings):
        raise UsageError(
            "-X settings are for Redis, Kafka and memory streams; neither "
            "--input nor --output is one",
            "-X",
        )
    remaining: int | None = values["count"]
    batch_size: int = values["batch_size"]
    relayed = 0
    source = await open_streamer(input_uri, input_connect)
    try:
        sink = await open_streamer(output_uri, output_connect)
        try:
            consumer = await source.consumer(input_uri.keys, consumer_options)
            try:
                producer = await sink.producer(output_key, producer_options)
                shutdown.on_stop(consumer.stop)
                bar = relay_progress(input_uri, output_uri, consumer_options.follow)
                try:
                    if remaining != 0:
                        async for batch in consumer.batches(batch_size):
                            if bar.shown:
                                bar.to(getattr(consumer, "bytes_read", 0))
                            if remaining is not None and len(batch) >= remaining:
                                batch = batch[:remaining]
                            await producer.send_many(batch)
                            if consumer_options.needs_commit:
                                await producer.flush()
                                await consumer.commit(batch)
                            relayed += len(batch)
                            if remaining is not None:
                                remaining -= len(batch)
                                if remaining == 0:
                                    break
                finally:
                    bar.close()
                    await producer.close()
            finally:
                await consumer.close()
                skipped = int(getattr(consumer, "skipped", 0) or 0)
                if skipped or connect.verbose:
                    extra = f", {skipped} invalid lines skipped" if skipped else ""
                    sys.stderr.write(f"streamkit relay: {relayed} messages relayed{extra}\n")
        finally:
            await sink.close()
    finally:
        await source.close()
    return 0
