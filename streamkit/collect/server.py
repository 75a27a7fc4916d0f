"""``collect``'s HTTP side (aiohttp): routes, checks, answers; the output is ``Writer``'s.

Routes: ``POST /streams/{KEY}`` (one message, or NDJSON lines), ``GET /healthz``, ``GET
/metrics``; anything else is a 404/405 with the same one-line JSON error shape
``{"error": "...", "cause": "..."}`` as every refusal. Checks run cheapest first and none
touches the output: token, key, content type, declared size, then the body is read (bounded by
aiohttp's ``client_max_size``), decoded, and only then counted against ``--max-in-flight``.
A request over the bound gets 503 with ``Retry-After`` and costs nothing more: memory is bounded
by in-flight messages times body size, whatever the load.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from streamkit.collect.metrics import Metrics
from streamkit.collect.ndjson import ndjson_rows
from streamkit.collect.writer import Writer
from streamkit.errors import StreamkitError, UsageError
from streamkit.message import now_ms, validate_stream_key

__all__ = ["NDJSON_TYPES", "RAW_TYPES", "Settings", "build_app"]

RAW_TYPES = frozenset(
    {"application/octet-stream", "application/json", "text/plain", "application/x-protobuf"}
)
"""A body of one of these is one message, its bytes unchanged."""
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/jsonlines"})
"""One message per line, in the JSON-lines form of docs/line-format.md."""


@dataclass(frozen=True)
class Settings:
    max_in_flight: int
    max_body: int
    token: str | None
    keys: Sequence[str]
    """The only keys accepted (the output URI's keys); empty: any valid key."""
    retry_after: int = 1
    probe_timeout: float = 5.0


def _error(status: int, cause: str, what: str, **headers: str) -> web.Response:
    body = json.dumps({"error": what, "cause": cause}) + "\n"
    return web.Response(
        status=status, text=body, content_type="application/json", headers=headers or None
    )


class _App:
    def __init__(self, settings: Settings, writer: Writer, metrics: Metrics) -> None:
        self.settings = settings
        self.writer = writer
        self.metrics = metrics
        self.draining = False
        self._auth = f"Bearer {settings.token}".encode() if settings.token is not None else None
        self._keys = frozenset(settings.keys)
        self._loop_time = asyncio.get_running_loop().time

    def _refuse(self, status: int, cause: str, what: str, **headers: str) -> web.Response:
        self.metrics.rejected[cause] += 1
        return _error(status, cause, what, **headers)

    def _unauthorized(self, request: web.Request) -> bool:
        if self._auth is None:
            return False
        given = request.headers.get("Authorization", "").encode()
        return not hmac.compare_digest(given, self._auth)

    async def streams(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _error(405, "method", f"{request.method} is not allowed here; use POST")
        started = self._loop_time()
        self.metrics.requests += 1
        response = await self._post(request)
        self.metrics.observe(self._loop_time() - started)
        return response

    async def _post(self, request: web.Request) -> web.StreamResponse:
        settings = self.settings
        if self._unauthorized(request):
            return self._refuse(
                401, "unauthorized", "missing or wrong bearer token",
                **{"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        if self.draining:
            return self._refuse(
                503, "draining", "shutting down; not taking new messages", Connection="close"
            )
        key = request.match_info["key"]
        try:
            validate_stream_key(key, where="the URL path")
        except UsageError as error:
            return self._refuse(400, "bad_request", f"invalid stream key: {error}")
        if self._keys and key not in self._keys:
            return self._refuse(
                404, "not_found", f"stream {key!r} is not one this server writes "
                f"({', '.join(sorted(self._keys))})",
            )  # fmt: skip
        ack = request.query.get("ack", "accepted")
        if ack not in ("accepted", "written"):
            return self._refuse(400, "bad_request", f"ack={ack}: use accepted or written")
        ctype = request.content_type
        ndjson = ctype in NDJSON_TYPES
        if not ndjson and ctype not in RAW_TYPES:
            return self._refuse(
                415, "unsupported_type", f"content type {ctype} is not taken: send "
                "application/x-ndjson (one message per line) or a raw body "
                "(application/octet-stream, application/json, text/plain)",
            )  # fmt: skip
        length = request.content_length
        if length is not None and length > settings.max_body:
            return self._too_large()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        if ndjson:
            rows_or_error = ndjson_rows(key, body)
            if isinstance(rows_or_error, str):
                return self._refuse(400, "bad_request", rows_or_error)
            rows = rows_or_error
        else:
            rows = [(key, 0, now_ms(), body, None, ())]
        n = len(rows)
        metrics = self.metrics
        if n > settings.max_in_flight:
            return self._refuse(
                413, "too_large", f"{n} messages in one request; --max-in-flight is "
                f"{settings.max_in_flight}: send smaller batches",
            )  # fmt: skip
        if metrics.in_flight + n > settings.max_in_flight:
            return self._refuse(
                503, "busy", f"{metrics.in_flight} messages wait for the output; retry later",
                **{"Retry-After": str(settings.retry_after)},
            )  # fmt: skip
        metrics.in_flight += n
        metrics.received += n
        durable = ack == "written"
        try:
            await self.writer.submit(rows, durable)
        except StreamkitError as error:
            return self._refuse(
                503, "output_failed", f"the output failed: {error}",
                **{"Retry-After": str(settings.retry_after)},
            )  # fmt: skip
        finally:
            metrics.in_flight -= n
        if durable:
            return web.Response(
                status=200, text=f'{{"written":{n}}}\n', content_type="application/json"
            )
        return web.Response(
            status=202, text=f'{{"accepted":{n}}}\n', content_type="application/json"
        )

    def _too_large(self) -> web.Response:
        return self._refuse(
            413, "too_large", f"the body is over --max-body ({self.settings.max_body} bytes)"
        )

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when the output takes a flush now; 503 while draining or when it fails."""
        if self.draining:
            return _error(503, "draining", "shutting down")
        try:
            await asyncio.wait_for(
                asyncio.shield(self.writer.submit([], True)), self.settings.probe_timeout
            )
        except asyncio.TimeoutError:
            return _error(503, "output_failed", "the output did not flush within "
                          f"{self.settings.probe_timeout:g}s")  # fmt: skip
        except StreamkitError as error:
            return _error(503, "output_failed", f"the output failed: {error}")
        return web.Response(text='{"status":"ok"}\n', content_type="application/json")

    async def metrics_page(self, request: web.Request) -> web.Response:
        if self._unauthorized(request):
            return self._refuse(401, "unauthorized", "missing or wrong bearer token")
        return web.Response(
            body=self.metrics.render().encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def other(self, request: web.Request) -> web.Response:
        self.metrics.rejected["not_found"] += 1
        return _error(
            404, "not_found", f"no route {request.path}: POST /streams/KEY, GET /healthz, "
            "GET /metrics",
        )  # fmt: skip


def build_app(settings: Settings, writer: Writer, metrics: Metrics) -> tuple[web.Application, _App]:
    state = _App(settings, writer, metrics)
    app = web.Application(client_max_size=settings.max_body)
    app.router.add_route("*", "/streams/{key}", state.streams)
    app.router.add_get("/healthz", state.healthz, allow_head=False)
    app.router.add_get("/metrics", state.metrics_page, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", state.other)
    return app, state
