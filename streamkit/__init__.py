"""streamkit: real-time streams for the shell and for Python.

async with streamkit.connect("redis://127.0.0.1:6379") as streamer:
    producer = await streamer.producer("orders")
    await producer.send(b'{"id": 1}')

streamkit.join(consumers, max_lateness=1.0) merges several consumers into one timeline.
"""

from streamkit.backends.base import (
    ConnectOptions,
    Consumer,
    ConsumerOptions,
    Producer,
    ProducerOptions,
    Streamer,
)
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
