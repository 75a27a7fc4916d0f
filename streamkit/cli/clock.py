"""``streamkit clock``: emit ``{"tick": N}`` at an interval — a source for trying pipelines."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from streamkit.cli.options import (
    DURATION,
    URI,
    connect_options,
    connect_options_from,
    producer_options,
    producer_options_from,
)
from streamkit.cli.runner import Shutdown, run_async, tune_gc
from streamkit.connect import open_streamer
from streamkit.message import validate_stream_key
from streamkit.uri import StreamUri, parse_stream_uri

__all__ = ["clock"]

EXAMPLES = """
\b
Examples:
  streamkit clock --stream tick --interval 100ms --count 50
  streamkit clock --interval 0 --count 1000000 > ticks.log
  streamkit clock --output redis://127.0.0.1:6379/tick --interval 1s
"""

_FAST_BATCH = 1000


@click.command(epilog=EXAMPLES)
@click.option(
    "--stream",
    default=None,
    help="Stream key of the ticks (default: clock, or the key of --output).",
)
@click.option(
    "--output",
    "output_uri",
    type=URI,
    default=None,
    help="Where to write (default stdio:///STREAM).",
)
@click.option(
    "--interval",
    type=DURATION,
    default="1s",
    show_default=True,
    help="Time between ticks: 500ms, 2s, 1m; 0 = as fast as the output takes them.",
)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    default=None,
    help="Stop after N ticks (default: run until interrupted).",
)
@producer_options
@connect_options
def clock(**values: Any) -> int:
    """Emit {"tick": N} messages, N = 0, 1, 2, ..., to any URI (default stdout)."""
    stream: str | None = values["stream"]
    if stream is not None:
        validate_stream_key(stream, where="--stream")
    output: StreamUri | None = values["output_uri"]
    if output is None:
        output = parse_stream_uri(f"stdio:///{stream or 'clock'}")
    elif output.key is None:
        output = output.with_keys((stream or "clock",))
    elif stream is not None and stream != output.key:
        click.echo(
            f"streamkit clock: --stream {stream} differs from the --output key "
            f"{output.key}; writing to {output.key}",
            err=True,
        )
    tune_gc()
    target = output
    return run_async(lambda shutdown: _tick(values, target, shutdown))


async def _tick(values: dict[str, Any], output: StreamUri, shutdown: Shutdown) -> int:
    interval: float = values["interval"]
    count: int | None = values["count"]
    stopped = asyncio.Event()
    shutdown.on_stop(stopped.set)
    streamer = await open_streamer(output, connect_options_from(values))
    try:
        producer = await streamer.producer(output.key, producer_options_from(values))
        try:
            tick = 0
            loop = asyncio.get_running_loop()
            start = loop.time()
            while (count is None or tick < count) and not stopped.is_set():
                if interval <= 0:
                    size = _FAST_BATCH if count is None else min(_FAST_BATCH, count - tick)
                    await producer.send_many(
                        [b'{"tick": %d}' % n for n in range(tick, tick + size)]
                    )
                    tick += size
                    await asyncio.sleep(0)
                    continue
                await producer.send_many([b'{"tick": %d}' % tick])
                tick += 1
                delay = start + tick * interval - loop.time()
                if delay > 0 and (count is None or tick < count):
                    try:
                        await asyncio.wait_for(stopped.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
        finally:
            await producer.close()
    finally:
        await streamer.close()
    return 0
