"""Run ``collect``: open the output, serve HTTP, and on a signal drain before exiting.

The drain order is what makes "nothing accepted is lost" true: mark the server draining (new
requests get 503), stop listening and let aiohttp finish the requests in progress (they wait
for the writer, which still runs), then close the writer (it sends whatever is still queued) and
close the producer (a flush: EOS and fsync for a file, the delivery reports for Kafka).
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from dataclasses import dataclass

from aiohttp import web

from streamkit.backends.base import ConnectOptions, ProducerOptions
from streamkit.collect.metrics import Metrics
from streamkit.collect.server import Settings, build_app
from streamkit.collect.writer import Writer
from streamkit.connect import open_streamer
from streamkit.errors import BackendError
from streamkit.uri import StreamUri

__all__ = ["Listen", "serve"]


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    tls: ssl.SSLContext | None = None


async def serve(
    listen: Listen,
    output: StreamUri,
    settings: Settings,
    connect: ConnectOptions,
    producer_options: ProducerOptions,
    stopped: asyncio.Event,
    drain_timeout: float = 60.0,
) -> None:
    streamer = await open_streamer(output, connect)
    try:
        producer = await streamer.producer(None, producer_options)
        try:
            metrics = Metrics()
            writer = Writer(producer, metrics)
            writer.start()
            app, state = build_app(settings, writer, metrics)
            runner = web.AppRunner(
                app, access_log=None, handle_signals=False, shutdown_timeout=drain_timeout
            )
            await runner.setup()
            try:
                site = web.TCPSite(
                    runner, listen.host, listen.port, ssl_context=listen.tls, backlog=1024
                )
                try:
                    await site.start()
                except OSError as error:
                    raise BackendError(
                        f"cannot listen on {listen.host}:{listen.port}: {error.strerror or error}",
                        "--listen",
                    ) from None
                scheme = "https" if listen.tls else "http"
                host = f"[{listen.host}]" if ":" in listen.host else listen.host
                port = _bound_port(runner, listen.port)
                sys.stderr.write(
                    f"streamkit collect: listening on {scheme}://{host}:{port}, "
                    f"writing to {output.redacted()}\n"
                )
                sys.stderr.flush()
                await stopped.wait()
                state.draining = True
            finally:
                await runner.cleanup()
            await writer.close()
        finally:
            await producer.close()
    finally:
        await streamer.close()


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked
