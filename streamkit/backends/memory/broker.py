"""The in-process broker behind ``memory://NAME/key``: a named set of topics, per process.

Topics (the log, retention, wake-ups) live in ``topic.py``, reader positions and groups in
``groups.py``; this module keeps the process-wide registry and re-exports both, so callers
import everything from here.
"""

from __future__ import annotations

from streamkit.backends.memory.groups import Cursor, Group, GroupStats
from streamkit.backends.memory.topic import (
    DEFAULT_CAPACITY,
    Topic,
    TopicConfig,
    TopicStats,
    _describe,
)
from streamkit.errors import UsageError
from streamkit.message import validate_stream_key

__all__ = [
    "DEFAULT_CAPACITY",
    "Broker",
    "Cursor",
    "Group",
    "GroupStats",
    "Topic",
    "TopicConfig",
    "TopicStats",
    "drop_broker",
    "get_broker",
]


class Broker:
    """All topics of one ``memory://NAME``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.topics: dict[str, Topic] = {}

    def create_topic(self, name: str, config: TopicConfig) -> Topic:
        validate_stream_key(name, where=f"memory://{self.name}")
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = Topic(name, config)
        elif topic.config != config:
            raise UsageError(
                f"stream {name!r} already exists with {_describe(topic.config)}; "
                f"cannot create it again with {_describe(config)}",
                f"memory://{self.name}/{name}",
            )
        return topic

    def topic(self, name: str, default: TopicConfig) -> Topic:
        """The topic, created with ``default`` on first use."""
        topic = self.topics.get(name)
        return topic if topic is not None else self.create_topic(name, default)

    def stats(self, name: str) -> TopicStats:
        topic = self.topics.get(name)
        if topic is None:
            raise UsageError(f"no stream {name!r} in this broker", f"memory://{self.name}")
        return topic.stats()


_BROKERS: dict[str, Broker] = {}


def get_broker(name: str) -> Broker:
    """The process-wide broker called ``name`` (created on first use)."""
    broker = _BROKERS.get(name)
    if broker is None:
        broker = _BROKERS[name] = Broker(name)
    return broker


def drop_broker(name: str) -> None:
    """Forget a broker and all its topics (the next connect starts empty). For tests and reuse."""
    _BROKERS.pop(name, None)
