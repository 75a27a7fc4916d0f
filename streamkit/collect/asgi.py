"""``collect``'s HTTP side as a bare ASGI app (served by uvicorn with httptools).

Why bare ASGI and not a framework: on this project's 2-core machine a bare aiohttp handler
answered 13,000 POSTs/s and the same handler as a bare ASGI app under uvicorn+httptools 23,700
(docs/collect.md); the routing here is three prefixes, so a framework would only add cost.

Routes: ``POST /streams/{KEY}`` (one message, or NDJSON lines), ``GET /healthz``, ``GET
/metrics``; anything else is a 404/405 with the same one-line JSON error shape
``{"error": "...", "cause": "..."}`` as every refusal. Checks run cheapest first and none
touches the output: token, key, content type, declared size, then the body is read (stopping at
``--max-body``), decoded, and only then counted against ``--max-in-flight``. A request over the
bound gets 503 with ``Retry-After`` and costs nothing more: memory is bounded by in-flight
messages times body size, whatever the load.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from streamkit.collect.metrics import Metrics
from streamkit.collect.ndjson import ndjson_rows
from streamkit.collect.writer import Writer
from streamkit.errors import StreamkitError, UsageError
from streamkit.message import now_ms, validate_stream_key

__all__ = ["NDJSON_TYPES", "RAW_TYPES", "CollectApp", "Settings"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

RAW_TYPES = frozenset(
    {"application/octet-stream", "application/json", "text/plain", "application/x-protobuf"}
)
"""A body of one of these is one message, its bytes unchanged."""
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/jsonlines"})
"""One message per line, in the JSON-lines form of docs/line-format.md."""

_JSON = (b"content-type", b"application/json")
_ACCEPTED_ONE = b'{"accepted":1}\n'
_PREFIX = "/streams/"


@dataclass(frozen=True)
class Settings:
    max_in_flight: int
    max_body: int
    token: str | None
    keys: Sequence[str]
    """The only keys accepted (the output URI's keys); empty: any valid key."""
    retry_after: int = 1
    probe_timeout: float = 5.0


class _Refusal(Exception):
    def __init__(self, status: int, cause: str, what: str, headers: Headers | None = None):
        super().__init__(what)
        self.status = status
        self.cause = cause
        self.what = what
        self.headers = headers or []


class CollectApp:
    def __init__(self, settings: Settings, writer: Writer, metrics: Metrics) -> None:
        self.settings = settings
        self.writer = writer
        self.metrics = metrics
        self.draining = False
        self._auth = f"Bearer {settings.token}".encode() if settings.token is not None else None
        self._keys = frozenset(settings.keys)
        self._retry = [(b"retry-after", str(settings.retry_after).encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if path.startswith(_PREFIX):
                if method != "POST":
                    raise _Refusal(405, "method", f"{method} is not allowed here; use POST")
                await self._timed_post(scope, receive, send, path[len(_PREFIX) :])
            elif path == "/healthz" and method == "GET":
                await self._healthz(send)
            elif path == "/metrics" and method == "GET":
                self._check_token(scope)
                await _answer(
                    send, 200, self.metrics.render().encode(),
                    [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")],
                )  # fmt: skip
            else:
                raise _Refusal(
                    404, "not_found", f"no route {method} {path}: POST /streams/KEY, "
                    "GET /healthz, GET /metrics",
                )  # fmt: skip
        except _Refusal as refusal:
            if refusal.cause in self.metrics.rejected:
                self.metrics.rejected[refusal.cause] += 1
            body = json.dumps({"error": refusal.what, "cause": refusal.cause}) + "\n"
            await _answer(send, refusal.status, body.encode(), [_JSON, *refusal.headers])

    def _check_token(self, scope: Scope) -> None:
        if self._auth is None:
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
        if not hmac.compare_digest(given, self._auth):
            raise _Refusal(
                401, "unauthorized", "missing or wrong bearer token", [(b"www-authenticate",
                                                                        b"Bearer")]
            )  # fmt: skip

    async def _timed_post(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.metrics.requests += 1
        try:
            await self._post(scope, receive, send, key)
        finally:
            self.metrics.observe(loop.time() - started)

    async def _post(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        settings = self.settings
        self._check_token(scope)
        if self.draining:
            raise _Refusal(
                503, "draining", "shutting down; not taking new messages",
                [(b"connection", b"close")],
            )  # fmt: skip
        try:
            validate_stream_key(key, where="the URL path")
        except UsageError as error:
            raise _Refusal(400, "bad_request", f"invalid stream key: {error}") from None
        if self._keys and key not in self._keys:
            raise _Refusal(
                404, "not_found", f"stream {key!r} is not one this server writes "
                f"({', '.join(sorted(self._keys))})",
            )  # fmt: skip
        durable = False
        if scope["query_string"]:
            ack = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("ack", "accepted")
            if ack not in ("accepted", "written"):
                raise _Refusal(400, "bad_request", f"ack={ack}: use accepted or written")
            durable = ack == "written"
        ctype = "application/octet-stream"
        length = -1
        for name, value in scope["headers"]:
            if name == b"content-type":
                ctype = value.decode("latin-1").split(";", 1)[0].strip().lower()
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
        ndjson = ctype in NDJSON_TYPES
        if not ndjson and ctype not in RAW_TYPES:
            raise _Refusal(
                415, "unsupported_type", f"content type {ctype} is not taken: send "
                "application/x-ndjson (one message per line) or a raw body "
                "(application/octet-stream, application/json, text/plain)",
            )  # fmt: skip
        if length > settings.max_body:
            raise self._too_large()
        body = await self._body(receive)
        if ndjson:
            rows_or_error = ndjson_rows(key, body)
            if isinstance(rows_or_error, str):
                raise _Refusal(400, "bad_request", rows_or_error)
            rows = rows_or_error
        else:
            rows = [(key, 0, now_ms(), body, None, ())]
        n = len(rows)
        metrics = self.metrics
        if n > settings.max_in_flight:
            raise _Refusal(
                413, "too_large", f"{n} messages in one request; --max-in-flight is "
                f"{settings.max_in_flight}: send smaller batches",
            )  # fmt: skip
        if metrics.in_flight + n > settings.max_in_flight:
            raise _Refusal(
                503, "busy", f"{metrics.in_flight} messages wait for the output; retry later",
                self._retry,
            )  # fmt: skip
        metrics.in_flight += n
        metrics.received += n
        try:
            await self.writer.submit(rows, durable)
        except StreamkitError as error:
            raise _Refusal(
                503, "output_failed", f"the output failed: {error}", self._retry
            ) from None
        finally:
            metrics.in_flight -= n
        if durable:
            await _answer(send, 200, f'{{"written":{n}}}\n'.encode(), [_JSON])
        else:
            body = _ACCEPTED_ONE if n == 1 else f'{{"accepted":{n}}}\n'.encode()
            await _answer(send, 202, body, [_JSON])

    async def _body(self, receive: Receive) -> bytes:
        limit = self.settings.max_body
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise self._too_large()
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large()
            parts.append(chunk)
        return b"".join(parts)

    def _too_large(self) -> _Refusal:
        return _Refusal(
            413, "too_large", f"the body is over --max-body ({self.settings.max_body} bytes)"
        )

    async def _healthz(self, send: Send) -> None:
        """200 when the output takes a flush now; 503 while draining or when it fails."""
        if self.draining:
            raise _Refusal(503, "draining", "shutting down")
        try:
            await asyncio.wait_for(
                asyncio.shield(self.writer.submit([], True)), self.settings.probe_timeout
            )
        except asyncio.TimeoutError:
            raise _Refusal(
                503, "output_failed",
                f"the output did not flush within {self.settings.probe_timeout:g}s",
            ) from None  # fmt: skip
        except StreamkitError as error:
            raise _Refusal(503, "output_failed", f"the output failed: {error}") from None
        await _answer(send, 200, b'{"status":"ok"}\n', [_JSON])


async def _answer(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
