"""``streamkit processor``: run a function or a command over a stream.

Thin on purpose: options become a ``Pipeline`` (streamkit.pipeline), a consumer and a producer;
the pipeline does the work. Stopping is ``consumer.stop()`` — the CLI group does that on
SIGTERM/SIGINT — after which every stage drains, the output is flushed and committed, and the
command returns so the group can exit 143/130.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from streamkit.backends.base import Producer, ProducerOptions
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
from streamkit.cli.runner import Shutdown, run_async, tune_gc
from streamkit.connect import open_streamer
from streamkit.errors import UsageError
from streamkit.pipeline import (
    BatchSpec,
    ExecPool,
    Pipeline,
    Snapshot,
    Stage,
    key_function,
    load_handler,
    parse_policy,
)
from streamkit.pipeline.handlers import Handler, Runner
from streamkit.pipeline.runner import open_uri_producer
from streamkit.uri import StreamUri

__all__ = ["build_pipeline", "processor", "run_processor"]


def _warn(text: str) -> None:
    sys.stderr.write(f"streamkit processor: {text}\n")
    sys.stderr.flush()


def build_pipeline(values: dict[str, Any]) -> Pipeline:
    """The pipeline the options describe (raises UsageError for impossible combinations)."""
    func: str | None = values.get("func")
    command: str | None = values.get("exec_command")
    if bool(func) == bool(command):
        raise UsageError("give exactly one of --func module:callable or --exec 'command'", "--func")
    workers: int = values.get("workers") or 1
    size, timeout, batch_by = (
        values.get("batch_size"),
        values.get("batch_timeout"),
        values.get("batch_by"),
    )
    batch = None
    if size is not None or timeout is not None:
        if command:
            raise UsageError(
                "--exec handles one message per line; batches need --func", "--batch-size"
            )
        batch = BatchSpec(size, timeout, key_function(batch_by) if batch_by else None)
    elif batch_by:
        raise UsageError("--batch-by needs --batch-size and/or --batch-timeout", "--batch-by")
    handler: Handler | Runner
    if command:
        handler = ExecPool(command, processes=workers)
        name = f"--exec {command!r}"
    else:
        assert func is not None
        handler = load_handler(func, values.get("include") or ())
        name = f"--func {func}"
    partition_by = values.get("partition_by")
    dispatch, key = "round-robin", None
    if partition_by:
        dispatch, key = "partition", key_function(partition_by)
    elif batch is not None and batch.key is not None:
        dispatch, key = "partition", batch.key  # one key's batches in order, by one worker
    policy = parse_policy(values.get("on_error") or "fail")
    if policy.dead_letter is not None and policy.dead_letter.startswith("memory:"):
        raise UsageError(
            f"dead-letter:{policy.dead_letter}: a memory broker lives inside one process, so "
            "the dead letters would be lost at exit; give a file, Redis or Kafka URI",
            "--on-error",
        )
    stage = Stage(
        handler,
        workers=workers,
        dispatch=dispatch,
        key=key,
        on_error=policy,
        batch=batch,
        name=name,
    )
    return Pipeline([stage], ordered=values.get("ordered", True), warn=_warn)


async def run_processor(values: dict[str, Any], pipeline: Pipeline | None = None) -> Snapshot:
    """Open the input and output, run the pipeline to the end (or to ``pipeline.stop()``)."""
    pipeline = pipeline or build_pipeline(values)
    input_uri: StreamUri = values["input_uri"]
    output_uri: StreamUri = values["output_uri"]
    connect = connect_options_from(values)
    consumer_options = consumer_options_from(values)
    producer_options = producer_options_from(values)
    if output_uri.scheme != "kafka" and producer_options.partition_by is not None:
        # --partition-by chooses workers; only Kafka also keys its records by it
        fields = dict(producer_options.__dict__)
        fields["partition_by"] = None
        producer_options = ProducerOptions(**fields)
    output_key = output_uri.key

    async def open_dead_letters(uri: str) -> Producer:
        return await open_uri_producer(uri, connect)

    pipeline.open_producer = open_dead_letters
    source = await open_streamer(input_uri, connect)
    try:
        sink = await open_streamer(output_uri, connect)
        try:
            consumer = await source.consumer(input_uri.keys, consumer_options)
            try:
                producer = await sink.producer(output_key, producer_options)
                try:
                    snapshot = await pipeline.run(
                        consumer,
                        producer,
                        count=values.get("count"),
                        stats_interval=values.get("stats"),
                    )
                finally:
                    await producer.close()
            finally:
                await consumer.close()
                note = filtered_note(consumer, input_uri)
                if note is not None:
                    _warn(note)
        finally:
            await sink.close()
    finally:
        await source.close()
    if values.get("stats") or values.get("verbose"):
        _warn("done: " + snapshot.line())
    return snapshot


_EXAMPLES = """
\b
Examples:
  streamkit clock --interval 0 --count 1000 | streamkit processor --func mypkg.enrich:handle
  streamkit processor --input kafka://127.0.0.1:9092/events --output stdio:///enriched \\
      --func mypkg.enrich:handle --workers 16 --ordered --partition-by user_id
  streamkit processor --exec 'jq -c .tick' --workers 4 --on-error skip
  streamkit processor --input redis://127.0.0.1:6379/rows --func db:insert_many \\
      --batch-size 500 --batch-timeout 1s --mode resumable --group loader
  (mypkg.enrich and db stand for modules of your own)
"""


@click.command("processor", epilog=_EXAMPLES)
@click.option(
    "--input",
    "input_uri",
    type=URI,
    default="stdio:///",
    show_default=True,
    help="The stream to read, e.g. kafka://127.0.0.1:9092/events (default: stdin, as relay).",
)
@click.option(
    "--output",
    "output_uri",
    type=URI,
    default="stdio:///",
    show_default=True,
    help="The stream to write (one key, or none to keep each input's key).",
)
@click.option(
    "--func",
    default=None,
    metavar="MODULE:CALLABLE",
    help="A Python function (sync or async) taking a streamkit.Message, or a list "
    "of them with batching; it returns bytes/str, a list (fan-out) or None "
    "(drop).",
)
@click.option(
    "-I",
    "include",
    multiple=True,
    metavar="DIR",
    help="Add DIR to the import path for --func. Repeatable.",
)
@click.option(
    "--exec",
    "exec_command",
    default=None,
    metavar="COMMAND",
    help="A shell command run as a pool of --workers long-running processes: one "
    "payload line in, one result line out (an empty line drops the message).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Messages (or batches) handled at the same time.",
)
@click.option(
    "--ordered/--unordered",
    default=True,
    show_default=True,
    help="Write results in input order, or as soon as they are ready (per "
    "--partition-by key order is kept either way).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Hand --func lists of up to N messages.",
)
@click.option(
    "--batch-timeout",
    type=DURATION,
    default=None,
    help="...and never hold a batch open longer than this (e.g. 200ms).",
)
@click.option(
    "--batch-by",
    default=None,
    metavar="FIELD",
    help="One batch per value of FIELD (a top-level JSON field, or 'key').",
)
@click.option(
    "--on-error",
    default="fail",
    show_default=True,
    metavar="fail|skip|retry:N|dead-letter:URI",
    help="A failing message: stop with exit 1, skip it (logged, counted), retry N "
    "times with backoff then fail, or write it with its error to URI.",
)
@click.option(
    "--stats",
    type=DURATION,
    is_flag=False,
    flag_value="1s",
    default=None,
    metavar="[INTERVAL]",
    help="Print counts, queue depths and latency p50/p99 to stderr every INTERVAL "
    "(default 1s, as relay --stats).",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=None, help="Stop after reading N messages."
)
@consumer_options
@producer_options
@connect_options
def processor(**values: Any) -> int:
    """Run a function or a command over a stream: workers, order, partitions, batches.

    --partition-by FIELD sends all messages with one value of FIELD (a top-level JSON field of
    the payload, or 'key' for the message key) to the same worker, in order; for a Kafka output
    it also keys the records.
    """
    pipeline = build_pipeline(values)
    tune_gc()
    return run_async(lambda shutdown: _run(values, pipeline, shutdown))


async def _run(values: dict[str, Any], pipeline: Pipeline, shutdown: Shutdown) -> int:
    """SIGTERM/SIGINT call ``pipeline.stop()`` (= ``consumer.stop()``): the run drains and
    returns, and the runner exits 143/130 once everything read was written."""
    shutdown.on_stop(pipeline.stop)
    await run_processor(values, pipeline)
    return 0
