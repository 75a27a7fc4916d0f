"""streamkit: real-time streams for the shell and for Python.

async with streamkit.connect("redis://127.0.0.1:6379") as streamer:
    producer = await streamer.producer("orders")
    await producer.send(b'{"id": 1}')

streamkit.join(consumers, max_lateness=1.0) merges several consumers into one timeline.

Only ``connect`` and the errors are imported with the package: every other name is imported on
first use (the backend seam and ``Join`` need asyncio, ``Message`` and ``StreamUri`` dataclasses),
so ``import streamkit`` -- and ``streamkit --version`` -- stays cheap (docs/benchmarks.md,
"Start-up"). ``connect`` cannot wait: importing the ``streamkit.connect`` module would otherwise
bind the package's ``connect`` to the module, not the function. ``__all__`` is the public API,
pinned by tests/test_public_api.py and documented in docs/api.md.
"""

from __future__ import annotations

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

if TYPE_CHECKING:
    from streamkit.backends.base import (
        ConnectOptions,
        Consumer,
        ConsumerOptions,
        Producer,
        ProducerOptions,
        Streamer,
    )
    from streamkit.message import Message
    from streamkit.replay.join import Join, join
    from streamkit.uri import StreamUri, parse_stream_uri, parse_streamer_uri

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
    "Message": "streamkit.message",
    "StreamUri": "streamkit.uri",
    "parse_stream_uri": "streamkit.uri",
    "parse_streamer_uri": "streamkit.uri",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562), then keep it."""
    import streamkit.lazy as lazy  # not at import: ``import streamkit`` loads connect, errors only

    return lazy.load(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
