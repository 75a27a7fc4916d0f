"""streamkit: real-time streams for the shell and for Python.

async with streamkit.connect("redis://127.0.0.1:6379") as streamer:
    producer = await streamer.producer("orders")
    await producer.send(b'{"id": 1}')

streamkit.join(consumers, max_lateness=1.0) merges several consumers into one timeline.

The names that need asyncio (the backend seam, ``Join``) are imported on first use, so
``import streamkit`` -- and every CLI command's start-up -- stays cheap (docs/benchmarks.md,
"Start-up"). ``__all__`` is the public API, pinned by tests/test_public_api.py and documented in
docs/api.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streamkit.connect import connect
from streamkit.errors import (
    BackendError,
    ConnectError,
    DataError,
    EndOfStream,
    StreamkitError,
    UsageError,
)
from streamkit.message import Message
from streamkit.uri import StreamUri, parse_stream_uri, parse_streamer_uri

if TYPE_CHECKING:
    from streamkit.backends.base import (
        ConnectOptions,
        Consumer,
        ConsumerOptions,
        Producer,
        ProducerOptions,
        Streamer,
    )
    from streamkit.replay.join import Join, join

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ConnectError",
    "ConnectOptions",
    "Consumer",
    "ConsumerOptions",
    "DataError",
    "EndOfStream",
    "Join",
    "Message",
    "Producer",
    "ProducerOptions",
    "StreamUri",
    "Streamer",
    "StreamkitError",
    "UsageError",
    "__version__",
    "connect",
    "join",
    "parse_stream_uri",
    "parse_streamer_uri",
]

_LAZY = {
    "ConnectOptions": "streamkit.backends.base",
    "Consumer": "streamkit.backends.base",
    "ConsumerOptions": "streamkit.backends.base",
    "Producer": "streamkit.backends.base",
    "ProducerOptions": "streamkit.backends.base",
    "Streamer": "streamkit.backends.base",
    "Join": "streamkit.replay.join",
    "join": "streamkit.replay.join",
}


def __getattr__(name: str) -> Any:
    """Import a public name that needs asyncio on first use (PEP 562), then keep it."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'streamkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
