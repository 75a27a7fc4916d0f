"""Where each Redis key lives, and how to get a working connection to it again after a failure.

A deployment is one server or a Redis Cluster; which one is *detected*: the first reachable node
of the URI answers ``INFO cluster``, and ``cluster_enabled:1`` switches on slot routing (the
slot map comes from ``CLUSTER SLOTS`` and is refreshed on MOVED/ASK or a lost node). So the same
URI form works for both, and any subset of the cluster's nodes serves as seeds.

Reconnects back off exponentially (0.1 s doubling to 5 s) until ``reconnect_timeout`` passes;
the loss is reported on stderr once, in one line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.crc import key_slot

from streamkit.backends.redis.wire import ConnectionLost, RedisConfig, RedisConnection
from streamkit.errors import ConnectError
from streamkit.uri import Node

__all__ = ["Backoff", "Topology", "warn"]

T = TypeVar("T")
_SLOTS = 16384


def warn(text: str) -> None:
    """One diagnostic line on stderr (never stdout: stdout may carry the stream)."""
    sys.stderr.write(f"streamkit: {text}\n")
    sys.stderr.flush()


class Backoff:
    """Delays 0.1 s, 0.2 s, ... up to ``cap``; ``expired`` once ``limit`` seconds have passed."""

    def __init__(self, limit: float, first: float = 0.1, cap: float = 5.0) -> None:
        self.limit = limit
        self.first = first
        self.cap = cap
        self.started = time.monotonic()
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * float(2**self.attempt))
        self.attempt += 1
        return delay

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def expired(self) -> bool:
        return self.elapsed >= self.limit


class Topology:
    """Seeds, the slot map (cluster) and one shared control connection per node."""

    def __init__(
        self,
        seeds: tuple[Node, ...],
        config: RedisConfig,
        where: str,
        *,
        reconnect_timeout: float = 60.0,
        verbose: bool = False,
    ) -> None:
        self.seeds = seeds
        self.config = config
        self.where = where
        self.reconnect_timeout = reconnect_timeout
        self.verbose = verbose
        self.cluster = False
        self._slots: list[Node] = []
        self._control: dict[Node, RedisConnection] = {}
        self._dedicated: set[RedisConnection] = set()
        self._refresh_lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect to the first reachable seed and learn whether this is a cluster."""
        error: ConnectError | None = None
        for seed in self.seeds:
            try:
                connection = await RedisConnection.open(seed, self.config, self.where)
            except ConnectError as failure:
                error = error or failure
                continue
            self._control[seed] = connection
            info = await connection.call("INFO", "cluster")
            self.cluster = b"cluster_enabled:1" in info
            if self.cluster:
                await self.refresh()
            return
        assert error is not None
        raise error

    @property
    def nodes(self) -> list[Node]:
        """Every master (cluster) or the one server."""
        if self.cluster:
            return sorted(set(self._slots), key=str)
        return [self.seeds[0]]

    def node_for(self, key: str) -> Node:
        if not self.cluster:
            return self.seeds[0]
        return self._slots[key_slot(key.encode())]

    async def refresh(self) -> None:
        """Reload the slot map from any node that answers (after MOVED, ASK or a lost node)."""
        async with self._refresh_lock:
            candidates = list(dict.fromkeys([*self._slots[:1], *self.seeds, *self._control]))
            last: Exception | None = None
            for node in candidates:
                try:
                    connection = await self.control(node)
                    reply = await connection.call("CLUSTER", "SLOTS")
                except ConnectError as error:
                    last = error
                    continue
                self._slots = self._slot_map(reply, node)
                return
            raise ConnectError(f"no cluster node answers CLUSTER SLOTS ({last})", self.where)

    @staticmethod
    def _slot_map(reply: list[Any], asked: Node) -> list[Node]:
        slots: list[Node] = [asked] * _SLOTS
        for start, end, master, *_replicas in reply:
            host = master[0].decode() or asked.host
            node = Node(host, int(master[1]))
            for slot in range(int(start), int(end) + 1):
                slots[slot] = node
        return slots

    async def control(self, node: Node) -> RedisConnection:
        """The shared connection for short commands to ``node`` (reopened when broken)."""
        connection = self._control.get(node)
        if connection is None or connection.broken:
            connection = await RedisConnection.open(node, self.config, self.where)
            self._control[node] = connection
        return connection

    async def dedicated(self, node: Node) -> RedisConnection:
        """A connection of the caller's own (blocking reads, a producer's pipeline)."""
        connection = await RedisConnection.open(node, self.config, self.where)
        self._dedicated.add(connection)
        return connection

    async def release(self, connection: RedisConnection) -> None:
        self._dedicated.discard(connection)
        await connection.close()

    async def call(self, key: str, *args: bytes | str | int) -> Any:
        """One short command about ``key``, routed to its node, with reconnects."""

        async def attempt() -> Any:
            connection = await self.control(self.node_for(key))
            async with connection.lock:
                return await connection.call(*args)

        return await self.with_reconnect(attempt)

    async def call_node(self, node: Node, *args: bytes | str | int) -> Any:
        async def attempt() -> Any:
            connection = await self.control(node)
            async with connection.lock:
                return await connection.call(*args)

        return await self.with_reconnect(attempt)

    async def with_reconnect(
        self, operation: Callable[[], Awaitable[T]], *, first_error: ConnectError | None = None
    ) -> T:
        """Run ``operation``; on a lost connection, back off, refresh and run it again.

        ``first_error``: the connection was already lost (report it and wait before trying).
        """
        backoff: Backoff | None = None
        if first_error is not None:
            backoff = await self.wait_after_loss(first_error, None)
        while True:
            try:
                result = await operation()
            except ConnectionLost as error:
                backoff = await self.wait_after_loss(error, backoff)
                continue
            except ConnectError as error:
                if backoff is None:
                    raise
                backoff = await self.wait_after_loss(error, backoff)
                continue
            if backoff is not None and self.verbose:
                warn(f"{self.where}: reconnected after {backoff.elapsed:.1f}s")
            return result

    async def wait_after_loss(self, error: ConnectError, backoff: Backoff | None) -> Backoff:
        """Report (once), sleep the next backoff delay, refresh; raise when retries ran out."""
        if backoff is None:
            backoff = Backoff(self.reconnect_timeout)
            warn(f"{self.where}: {error.what}; reconnecting with backoff")
        if backoff.expired:
            raise ConnectError(
                f"gave up reconnecting after {backoff.elapsed:.0f}s: {error.what}", self.where
            )
        await asyncio.sleep(backoff.next_delay())
        if self.cluster:
            try:
                await self.refresh()
            except ConnectError:
                pass
        return backoff

    async def close(self) -> None:
        for connection in [*self._control.values(), *self._dedicated]:
            await connection.close()
        self._control.clear()
        self._dedicated.clear()
