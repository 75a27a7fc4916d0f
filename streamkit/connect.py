"""``streamkit.connect(uri)``: pick the backend by the URI's scheme, at run time.

Backends are imported lazily so that ``stdio`` never pays for importing the Kafka client.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: `import streamkit` must not import asyncio (start-up)
    from streamkit.backends.base import ConnectOptions, Streamer
    from streamkit.uri import StreamUri

__all__ = ["connect"]

_BACKEND_MODULES = {
    "stdio": "streamkit.backends.stdio",
    "file": "streamkit.backends.file",
    "redis": "streamkit.backends.redis",
    "rediss": "streamkit.backends.redis",
    "kafka": "streamkit.backends.kafka",
    "memory": "streamkit.backends.memory",
}


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> Streamer:
    """Open the backend for ``uri``; each backend module defines ``open_streamer`` alike."""
    module = importlib.import_module(_BACKEND_MODULES[uri.scheme])
    streamer: Streamer = await module.open_streamer(uri, options)
    return streamer


class _Connection:
    """Both ``await connect(uri)`` and ``async with connect(uri) as streamer`` work."""

    def __init__(self, uri: StreamUri, options: ConnectOptions) -> None:
        self._uri = uri
        self._options = options
        self._streamer: Streamer | None = None

    def __await__(self) -> Generator[Any, None, Streamer]:
        return open_streamer(self._uri, self._options).__await__()

    async def __aenter__(self) -> Streamer:
        self._streamer = await open_streamer(self._uri, self._options)
        return self._streamer

    async def __aexit__(self, *exc: object) -> None:
        if self._streamer is not None:
            await self._streamer.close()


def connect(
    uri: str | StreamUri, options: ConnectOptions | None = None, **option_values: Any
) -> _Connection:
    """Connect to the backend named by ``uri`` (``redis://127.0.0.1:6379``, ``memory://x``, ...).

    The scheme picks the backend, imported when the connection opens (``stdio`` never loads a
    Kafka client).
    Options come as a ConnectOptions or as keywords (``connect_timeout=2``). The result is
    both awaitable (``streamer = await connect(uri)``, close it yourself) and an async context
    manager (``async with connect(uri) as streamer``, closed on exit).
    """
    from streamkit.backends.base import ConnectOptions
    from streamkit.uri import parse_streamer_uri

    parsed = parse_streamer_uri(uri) if isinstance(uri, str) else uri
    if option_values:
        options = ConnectOptions(**{**(options.__dict__ if options else {}), **option_values})
    return _Connection(parsed, options or ConnectOptions())
