"""The in-process backend (``memory://``): ``broker`` holds the topics, retention, groups and
back-pressure; ``streamer`` adapts them to the Streamer / Producer / Consumer protocol and is
also the ``stat`` collector."""

from streamkit.backends.memory.streamer import MemoryStreamer, open_streamer

__all__ = ["MemoryStreamer", "open_streamer"]
