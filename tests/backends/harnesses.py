"""One small harness per backend for the contract suite (``test_contract.py``).

A harness knows how to reach its backend inside a test (a private server fixture, a temporary
file, a fresh in-process broker), how to name a fresh stream, and which parts of the contract
the backend claims (``features``). The suite runs every contract test against every live
harness that claims the feature the test needs.

A harness is live when its backend module exists: a backend still being written is left out of
the parameter list rather than skipped. A module that exists but fails to import is an error,
not silently dropped. ``STREAMKIT_CONTRACT_BACKENDS=memory,redis`` narrows the list.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ALL_FEATURES = frozenset(
    {
        "follow",  # a consumer can wait for messages sent after it was opened
        "offset_end",  # offset="end" starts after the last message
        "groups",  # load-balanced members of one group share messages
        "resumable",  # a resumable group continues after its last commit
    }
)


@dataclass(frozen=True)
class Bound:
    """A harness bound to one test: where the streamer is, and how to make fresh streams."""

    harness: Harness
    streamer_uri: str
    context: Any = None

    def new_key(self) -> str:
        """A fresh stream, prepared (a one-partition Kafka topic, so its order is total)."""
        key = "c" + uuid.uuid4().hex[:12]
        self.harness.prepare(self, key)
        return key

    def close(self) -> None:
        self.harness.release(self)


@dataclass(frozen=True)
class Harness:
    name: str
    module: str
    features: frozenset[str]
    default_offset: str
    """Where a consumer given no offset starts: ``start`` or ``end``."""
    default_follow: bool
    fixture: str | None = None
    """The pytest fixture giving this backend's private server, if it needs one."""

    def live(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def bind(self, request: pytest.FixtureRequest, tmp_path: Path) -> Bound:
        server = request.getfixturevalue(self.fixture) if self.fixture else None
        return Bound(self, self.streamer_uri(server, tmp_path), server)

    def streamer_uri(self, server: Any, tmp_path: Path) -> str:
        raise NotImplementedError

    def prepare(self, bound: Bound, key: str) -> None:
        pass

    def release(self, bound: Bound) -> None:
        pass


class MemoryHarness(Harness):
    def streamer_uri(self, server: Any, tmp_path: Path) -> str:
        return f"memory://contract-{uuid.uuid4().hex[:12]}"

    def release(self, bound: Bound) -> None:
        from streamkit.backends.memory.streamer import drop_broker

        drop_broker(bound.streamer_uri.removeprefix("memory://"))


class FileHarness(Harness):
    def streamer_uri(self, server: Any, tmp_path: Path) -> str:
        return f"file://{tmp_path / 'contract.ss'}"


class RedisHarness(Harness):
    def streamer_uri(self, server: Any, tmp_path: Path) -> str:
        return str(server.url).rstrip("/")


class KafkaHarness(Harness):
    def streamer_uri(self, server: Any, tmp_path: Path) -> str:
        return f"kafka://{server.address}"

    def prepare(self, bound: Bound, key: str) -> None:
        bound.context.create_topic(key, partitions=1)


HARNESSES: tuple[Harness, ...] = (
    MemoryHarness(
        "memory",
        "streamkit.backends.memory",
        ALL_FEATURES,
        default_offset="start",
        default_follow=True,
    ),
    FileHarness(
        "file",
        "streamkit.backends.file",
        frozenset({"follow", "offset_end", "resumable"}),
        default_offset="start",
        default_follow=False,
    ),
    RedisHarness(
        "redis",
        "streamkit.backends.redis",
        ALL_FEATURES,
        default_offset="end",
        default_follow=True,
        fixture="redis_server",
    ),
    KafkaHarness(
        "kafka",
        "streamkit.backends.kafka",
        ALL_FEATURES,
        default_offset="end",
        default_follow=True,
        fixture="kafka_broker",
    ),
)


def live_harnesses(feature: str | None = None) -> list[Harness]:
    """The harnesses to run: backend module present, named in the env filter, with ``feature``."""
    wanted = os.environ.get("STREAMKIT_CONTRACT_BACKENDS")
    names = {n.strip() for n in wanted.split(",")} if wanted else None
    return [
        h
        for h in HARNESSES
        if h.live()
        and (names is None or h.name in names)
        and (feature is None or feature in h.features)
    ]
