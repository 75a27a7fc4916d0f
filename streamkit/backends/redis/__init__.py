"""The Redis Streams backend (``redis://``, ``rediss://``): ``streamer`` connects and hands out
clients; ``producer``, ``consumer`` and ``topology`` talk to the server through ``wire``; ``ids``
is SeaStreamer's key and id layout; ``stats`` is the read-only ``stat`` collector."""

from streamkit.backends.redis.streamer import RedisStreamer, open_streamer

__all__ = ["RedisStreamer", "open_streamer"]
