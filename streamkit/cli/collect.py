"""``streamkit collect --listen HOST:PORT --output URI``: HTTP in, any backend out.

Thin: parse options, check the optional uvicorn dependency with a message saying how to install
it, then run ``streamkit.collect.service.serve`` under the common signal handling (SIGTERM /
SIGINT drain and exit 143 / 130). The HTTP contract is in docs/collect.md.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import click

from streamkit.cli.options import (
    URI,
    connect_options,
    connect_options_from,
    producer_options,
    producer_options_from,
)
from streamkit.cli.runner import Shutdown, run_async, tune_gc
from streamkit.errors import StreamkitError, UsageError
from streamkit.uri import StreamUri

__all__ = ["collect", "parse_listen"]

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
               "mb": 1 << 20, "mib": 1 << 20}  # fmt: skip


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` (loopback); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{text!r}: use HOST:PORT (e.g. 127.0.0.1:8080)", "--listen")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def parse_size(text: str) -> int:
    lowered = text.strip().lower()
    number = lowered.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = lowered[len(number) :]
    if not number.isdigit() or unit not in _SIZE_UNITS or int(number) < 1:
        raise UsageError(f"{text!r}: use a byte count like 1048576, 512k or 8m", "--max-body")
    return int(number) * _SIZE_UNITS[unit]


def _tls(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("TLS needs both --cert and --key", "--cert" if cert is None else "--key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot load the certificate or key: {error}", f"{cert}, {key}") from None
    return context


def _token(token: str | None, token_file: str | None) -> str | None:
    if token is not None and token_file is not None:
        raise UsageError("give --token or --token-file, not both", "--token-file")
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as error:
            raise UsageError(f"cannot read the token: {error.strerror}", token_file) from None
        if not token:
            raise UsageError("the token file is empty", token_file)
    if token is not None and not token.strip():
        raise UsageError("the token is empty", "--token")
    return token


_EXAMPLES = """
\b
Examples:
  streamkit collect --output file://./in.ss/ &        # listens on 127.0.0.1:8080
  curl -X POST --data-binary '{"id":1}' http://127.0.0.1:8080/streams/orders
  streamkit collect --listen 0.0.0.0:8443 --cert c.pem --key k.pem --token-file secret \\
    --output kafka://127.0.0.1:9092/
"""


@click.command(epilog=_EXAMPLES)
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    help="HOST:PORT to serve on (loopback unless told otherwise; port 0 picks one).",
)
@click.option(
    "--output",
    "output_uri",
    type=URI,
    required=True,
    help="Where messages go: file://F.ss/, redis://H:P/, kafka://H:P/, stdio:/// "
    "(keys in the URI limit which /streams/KEY are taken).",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Messages that may wait for the output; beyond it requests get 503 + Retry-After.",
)
@click.option(
    "--max-body",
    default="8m",
    show_default=True,
    help="Largest request body (413 above it), e.g. 1048576, 512k, 8m.",
)
@click.option("--token", default=None, help="Require 'Authorization: Bearer TOKEN' (else 401).")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the token from a file (keeps it out of ps).",
)
@click.option("--cert", type=click.Path(dir_okay=False), default=None, help="TLS certificate.")
@click.option("--key", type=click.Path(dir_okay=False), default=None, help="TLS private key.")
@producer_options
@connect_options
def collect(**values: Any) -> int:
    """Take messages in over HTTP (POST /streams/KEY) and write them to any output URI.

    A body is one message; a body sent as application/x-ndjson is one message per line (the JSON
    lines of docs/line-format.md: ts, key, headers, payload). 202 once the output accepted the
    messages; ?ack=written answers 200 after they were flushed. GET /healthz, GET /metrics
    (Prometheus). SIGTERM: stop taking requests, write what was taken, exit 143.
    """
    try:
        from streamkit.collect.asgi import Settings
        from streamkit.collect.service import Listen, serve
    except ImportError as error:
        if (error.name or "").split(".")[0] not in ("uvicorn", "httptools"):
            raise
        raise StreamkitError(
            "collect needs uvicorn and httptools: pip install -e '.[collect]' "
            "(or pip install 'uvicorn>=0.29' 'httptools>=0.6')"
        ) from None

    host, port = parse_listen(values["listen"])
    output: StreamUri = values["output_uri"]
    settings = Settings(
        max_in_flight=values["max_in_flight"],
        max_body=parse_size(values["max_body"]),
        token=_token(values["token"], values["token_file"]),
        keys=output.keys,
    )
    _tls(values["cert"], values["key"])  # refuse a bad pair before anything starts
    listen = Listen(host, port, values["cert"], values["key"])
    connect = connect_options_from(values)
    producing = producer_options_from(values)
    tune_gc()

    async def main(shutdown: Shutdown) -> int:
        stopped = asyncio.Event()
        shutdown.on_stop(stopped.set)
        await serve(listen, output.with_keys(()), settings, connect, producing, stopped)
        return 0

    return run_async(main)
