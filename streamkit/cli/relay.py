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

from streamkit.backends.base import ConnectOptions, Consumer, Producer
from streamkit.cli.notes import filtered_note
from streamkit.cli.options import (
    DURATION,
    URI,
    connect_options,
    connect_options_from,
    consumer_options,
    consumer_options_from,
    producer_options,
    producer_options_from,
)
from streamkit.cli.progress import Progress, relay_progress
from streamkit.cli.replay import open_consumer, pacer_from, replay_options, report_late
from streamkit.cli.runner import Shutdown, run_async, tune_gc
from streamkit.cli.stats import RelayStats
from streamkit.connect import open_streamer
from streamkit.errors import UsageError
from streamkit.formats.printing.template import Template
from streamkit.replay.join import Join
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
  streamkit relay --input kafka://127.0.0.1:9092/events -e -f 'Key: %k, payload: %s\\n'
  streamkit relay --input file://./t.ss/tick --pace 10x
  streamkit relay --input file://./t.ss/tick --input redis://127.0.0.1:6379/orders -e \\
      --output file://./joined.ss/
"""


@click.command(epilog=EXAMPLES)
@click.option(
    "--input",
    "input_uri",
    type=URI,
    multiple=True,
    default=("stdio:///",),
    show_default=True,
    help="Stream to read: stdio:///KEYS, file://PATH/KEYS, redis://HOST:PORT/KEYS, "
    "kafka://HOST:PORT/TOPICS. Repeat it to join several streams into one, in timestamp order.",
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
@click.option(
    "-f",
    "--format-template",
    "template",
    default=None,
    metavar="TEMPLATE",
    help="Print each message to stdout as TEMPLATE, kcat -f style: %s payload, %k key, "
    "%t stream, %p shard, %o seq, %T timestamp (ms), %h headers, %{time} ISO time, "
    "\\n \\t (docs/line-format.md).",
)
@click.option(
    "--stats",
    type=DURATION,
    is_flag=False,
    flag_value="1s",
    default=None,
    metavar="[INTERVAL]",
    help="Print rate, total and (Kafka) lag to stderr every INTERVAL (default 1s) and at exit.",
)
@consumer_options
@producer_options
@connect_options
@replay_options
def relay(**values: Any) -> int:
    """Copy messages from --input to --output, keeping timestamp, sequence number and shard
    wherever the output can carry them."""
    inputs: tuple[StreamUri, ...] = values["input_uri"]
    output_uri: StreamUri = values["output_uri"]
    for input_uri in inputs:
        if input_uri == output_uri and input_uri.scheme != "stdio":
            raise UsageError(
                "input and output are the same stream; relaying would loop", input_uri.redacted()
            )
    output_key = output_uri.key
    if values.get("template") is not None:
        if output_uri.scheme != "stdio":
            raise UsageError(
                f"a template formats stdout; it cannot apply to --output {output_uri.redacted()}",
                "--format-template",
            )
        if values.get("output_format") not in (None, "line"):
            raise UsageError("give either a template or --output-format json", "--format-template")
        values["template"] = Template(values["template"])
    tune_gc()
    return run_async(lambda shutdown: _relay(values, inputs, output_uri, output_key, shutdown))


_TAKES_SETTINGS = ("redis", "rediss", "kafka", "memory")


def _for_side(options: ConnectOptions, uri: StreamUri) -> ConnectOptions:
    """-X settings go to the client backends (as in kcat); stdio and files take none."""
    if uri.scheme in _TAKES_SETTINGS or not options.settings:
        return options
    return replace(options, settings={})


def _kafka_lines(
    consumer: Consumer, producer: Producer, stats: Any, inputs: tuple[StreamUri, ...]
) -> Any:
    """The direct Kafka → stdout relay (``KafkaLinesRelay``) where it applies, else None.
    Imported here: the Kafka client library loads only when a kafka:// URI is used."""
    if len(inputs) != 1 or inputs[0].scheme != "kafka":
        return None
    from streamkit.backends.kafka.relay import KafkaLinesRelay

    return KafkaLinesRelay.taking(consumer, producer, stats)


async def _relay(
    values: dict[str, Any],
    inputs: tuple[StreamUri, ...],
    output_uri: StreamUri,
    output_key: str | None,
    shutdown: Shutdown,
) -> int:
    consumer_options = consumer_options_from(values)
    producer_options = producer_options_from(values)
    connect = connect_options_from(values)
    input_connects = [_for_side(connect, uri) for uri in inputs]
    output_connect = _for_side(connect, output_uri)
    if connect.settings and not any(c.settings for c in (*input_connects, output_connect)):
        raise UsageError(
            "-X settings are for Redis, Kafka and memory streams; neither "
            "--input nor --output is one",
            "-X",
        )
    remaining: int | None = values["count"]
    batch_size: int = values["batch_size"]
    relayed = 0
    producer: Producer | None = None
    failed = True
    pacer = pacer_from(values)
    sources = []
    try:
        for input_uri, input_connect in zip(inputs, input_connects):
            sources.append(await open_streamer(input_uri, input_connect))
        sink = await open_streamer(output_uri, output_connect)
        try:
            consumer = await open_consumer(sources, inputs, consumer_options, values)
            try:
                producer = await sink.producer(output_key, producer_options)
                template: Template | None = values.get("template")
                if template is not None:
                    from streamkit.backends.stdio import StdioProducer  # output is stdio here

                    assert isinstance(producer, StdioProducer)
                    producer.use_encoder(template.encode)
                shutdown.on_stop(consumer.stop)
                stats_interval: float | None = values.get("stats")
                stats = None
                if stats_interval:
                    stats = RelayStats(consumer, stats_interval)
                    stats.start()
                bar = (
                    relay_progress(inputs[0], output_uri, consumer_options.follow)
                    if len(inputs) == 1
                    else Progress(0, "")
                )
                try:
                    fast = None
                    if (
                        remaining is None
                        and not consumer_options.needs_commit
                        and pacer is None
                        and stats is None
                        and output_uri.scheme == "stdio"  # a file relay never imports stdio
                    ):
                        from streamkit.backends.stdio import relay_lines

                        fast = await relay_lines(consumer, producer)  # stdio → stdio in C
                    if (
                        remaining is None
                        and not consumer_options.needs_commit
                        and pacer is None
                        and stats is None
                        and output_uri.scheme == "kafka"
                        and len(inputs) == 1
                        and inputs[0].scheme == "stdio"
                    ):
                        from streamkit.backends.kafka.stdin_relay import relay_spans

                        fast = await relay_spans(consumer, producer)  # stdio → Kafka in C
                    direct = None
                    if fast is None and remaining is None and pacer is None:
                        direct = _kafka_lines(consumer, producer, stats, inputs)
                    if direct is not None:  # Kafka → stdout lines, no Message per record
                        try:
                            fast = await direct.run(batch_size)
                        finally:
                            relayed = direct.relayed
                    if fast is not None:
                        relayed = fast
                    elif remaining != 0:
                        batches = consumer.batches(batch_size)
                        if pacer is not None:
                            shutdown.on_stop(pacer.hurry)
                            batches = pacer.paced(batches)
                        async for batch in batches:
                            if bar.shown:
                                bar.to(getattr(consumer, "bytes_read", 0))
                            if remaining is not None and len(batch) >= remaining:
                                batch = batch[:remaining]
                            await producer.send_many(batch)
                            if consumer_options.needs_commit:
                                await producer.flush()
                                await consumer.commit(batch)
                            relayed += len(batch)
                            if stats is not None:
                                stats.messages = relayed
                            if remaining is not None:
                                remaining -= len(batch)
                                if remaining == 0:
                                    break
                finally:
                    bar.close()
                    await producer.close()
                    if stats is not None:
                        await stats.stop()
                failed = False
            finally:
                await consumer.close()
                if failed and producer is not None and producer.confirmed is not None:
                    # Batches in flight when the output failed did not all arrive.
                    relayed = min(relayed, producer.confirmed)
                parts = consumer.consumers if isinstance(consumer, Join) else [consumer]
                for part, part_uri in zip(parts, inputs):
                    note = filtered_note(part, part_uri)
                    if note is not None:
                        sys.stderr.write(f"streamkit relay: {note}\n")
                skipped = int(getattr(consumer, "skipped", 0) or 0)
                # A resumed file group whose last run was killed between writing a batch and
                # committing it finds that batch in the output already and does not write it again.
                already = int(getattr(consumer, "already_written", 0) or 0)
                if skipped or already or connect.verbose:
                    extra = f", {skipped} invalid lines skipped" if skipped else ""
                    if already:
                        extra += (
                            f", {already} left out because the output already holds them "
                            "(written by an interrupted run before its commit)"
                        )
                    sys.stderr.write(f"streamkit relay: {relayed} messages relayed{extra}\n")
                report_late(consumer)
        finally:
            await sink.close()
    finally:
        for source in sources:
            await source.close()
    return 0
