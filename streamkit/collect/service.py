"""Run ``collect``: open the output, serve HTTP (uvicorn), and on a signal drain, then exit.

The drain order is what makes "nothing accepted is lost" true: mark the app draining (new
requests get 503), let uvicorn stop listening and finish the requests in progress (they wait for
the writer, which still runs), then close the writer (it sends whatever is still queued) and
close the producer (a flush: EOS and fsync for a file, the delivery reports for Kafka).

uvicorn is driven through ``startup``/``main_loop``/``shutdown`` rather than ``serve``: its
``serve`` installs its own SIGTERM handler and re-raises the signal at the end, while streamkit's
runner owns signals (exit 143 after a clean drain). The listening socket is bound here, so a
port in use is one clear error instead of uvicorn's exit.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from dataclasses import dataclass

import httptools  # noqa: F401  (imported here so a missing one is reported up front)
import uvicorn

from streamkit.backends.base import ConnectOptions, ProducerOptions
from streamkit.collect.asgi import CollectApp, Settings
from streamkit.collect.metrics import Metrics
from streamkit.collect.writer import Writer
from streamkit.connect import open_streamer
from streamkit.errors import BackendError
from streamkit.uri import StreamUri

__all__ = ["Listen", "serve"]


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    cert: str | None = None
    key: str | None = None


def _bind(listen: Listen) -> socket.socket:
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: a response (head and body are two writes) must not
        # wait for the client's delayed ACK (Nagle), which capped keep-alive at ~700 req/s.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((listen.host, listen.port))
        sock.listen(1024)
    except OSError as error:
        sock.close()
        raise BackendError(
            f"cannot listen on {listen.host}:{listen.port}: {error.strerror or error}",
            "--listen",
        ) from None
    sock.setblocking(False)
    return sock


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
            app = CollectApp(settings, writer, metrics)
            await _run_http(app, listen, output, stopped, drain_timeout)
            await writer.close()
        finally:
            await producer.close()
    finally:
        await streamer.close()


async def _run_http(
    app: CollectApp, listen: Listen, output: StreamUri, stopped: asyncio.Event, drain: float
) -> None:
    sock = _bind(listen)
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level=logging.WARNING,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        ssl_certfile=listen.cert,
        ssl_keyfile=listen.key,
        timeout_graceful_shutdown=int(drain),
        backlog=1024,
    )
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    scheme = "https" if listen.cert else "http"
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    port = sock.getsockname()[1]
    sys.stderr.write(
        f"streamkit collect: listening on {scheme}://{host}:{port}, writing to "
        f"{output.redacted()}\n"
    )
    sys.stderr.flush()
    ticking = asyncio.ensure_future(server.main_loop())
    try:
        await stopped.wait()
    finally:
        app.draining = True
        server.should_exit = True
        await ticking
        await server.shutdown(sockets=[sock])
        sock.close()
