"""The one small protocol every backend implements: Streamer, Producer, Consumer.

The batch paths are the real API: ``Consumer.next_batch(n)`` returns whatever is ready (at least
one message) and ``Producer.send_many(items)`` takes a whole batch. The per-message API
(``recv``, ``async for message in consumer``, ``send``) is a convenience built on top here, once,
so a backend writes only the batch paths.

Options are plain dataclasses shared by every backend. A backend that cannot honour an option
given a non-default value raises ``UsageError`` naming the option and the backend
(``reject_unsupported``): nothing is silently ignored.
"""

from __future__ import annotations

import abc
import collections
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any

from streamkit.errors import EndOfStream, UsageError
from streamkit.message import Message
from streamkit.uri import StreamUri

__all__ = [
    "MODES",
    "ConnectOptions",
    "Consumer",
    "ConsumerOptions",
    "Payload",
    "Producer",
    "ProducerOptions",
    "Streamer",
    "payload_bytes",
    "reject_unsupported",
]

MODES = ("realtime", "resumable", "load-balanced")

Payload = bytes | str | Message
"""What ``send``/``send_many`` accept. A Message keeps its timestamp, seq and shard wherever the
backend can store them; its stream key is replaced by the producer's key when it has one."""


def _flag(name: str) -> dict[str, str]:
    return {"flag": name}


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach the backend."""

    connect_timeout: float = field(default=10.0, metadata=_flag("--connect-timeout"))
    """Seconds to wait for a server before failing with ConnectError."""
    settings: Mapping[str, str] = field(default_factory=dict, metadata=_flag("-X"))
    """Client settings passed through verbatim (librdkafka properties for Kafka, like kcat -X)."""
    verbose: bool = field(default=False, metadata=_flag("-v"))
    """Report positions and reconnects on stderr."""


@dataclass(frozen=True)
class ConsumerOptions:
    """Where to start, where to stop, and how to share a stream. The same for every backend.

    ``offset=None`` means the backend's default: files and stdin start at the start, Redis and
    Kafka at the end (live), as SeaStreamer and kcat do — except with ``follow=False``, which
    starts at the start everywhere (kcat's ``-e`` prints the whole topic; end-to-end would
    print nothing). ``follow=None`` likewise: files and stdin stop at their end, Redis and
    Kafka follow. ``start_offset`` resolves both.
    """

    offset: str | int | None = field(default=None, metadata=_flag("--offset"))
    """``"start"``, ``"end"``, a sequence number to start AT (inclusive), or ``-N``: the last N
    messages of each stream/shard/partition (kcat's ``-o -N``)."""
    since: int | None = field(default=None, metadata=_flag("--since"))
    """Deliver messages with timestamp >= since (ms)."""
    until: int | None = field(default=None, metadata=_flag("--until"))
    """Stop after the last message with timestamp <= until (ms)."""
    mode: str = field(default="realtime", metadata=_flag("--mode"))
    """``realtime`` (read, never acknowledge), ``resumable`` (a group that remembers where it
    got to: commits after output) or ``load-balanced`` (members of a group share the work)."""
    group: str | None = field(default=None, metadata=_flag("--group"))
    """The consumer group (Redis) or group id (Kafka); needed by every mode but ``realtime``."""
    follow: bool | None = field(default=None, metadata=_flag("--follow/--no-follow"))
    """Keep waiting for new messages at the end (True) or stop there (False, kcat's ``-e``);
    None: the backend's default (files and stdin stop, Redis and Kafka follow)."""
    consumer_name: str | None = field(default=None, metadata=_flag("--consumer-name"))
    """This member's name in a Redis group. Default: the group's name when resumable (a
    restarted relay owns its pending entries again), ``host:pid`` when load-balanced."""
    claim_idle: float | None = field(default=None, metadata=_flag("--claim-idle"))
    """Seconds after which another member's pending entries are claimed (load-balanced)."""
    on_invalid: str = field(default="fail", metadata=_flag("--on-invalid"))
    """Line input only: ``fail`` (exit 3), ``skip`` (warn, count), ``raw`` (line = payload)."""
    no_meta: bool = field(default=False, metadata=_flag("--no-meta"))
    """Line input only: every line is a raw payload, even one starting with ``[``."""
    input_format: str = field(default="line", metadata=_flag("--input-format"))
    """stdio only: ``line`` or ``json`` (one JSON object per line, see formats.jsonl)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(
                f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}", "--mode"
            )
        if self.mode != "realtime" and not self.group:
            raise UsageError(
                f"--mode {self.mode} needs a consumer group: add --group NAME", "--mode"
            )
        if isinstance(self.offset, bool):
            raise UsageError(
                f"invalid offset {self.offset!r}: use start, end or a number", "--offset"
            )
        if (
            self.offset is not None
            and not isinstance(self.offset, int)
            and self.offset not in ("start", "end")
        ):
            raise UsageError(
                f"invalid offset {self.offset!r}: use start, end or a number", "--offset"
            )
        if self.on_invalid not in ("fail", "skip", "raw"):
            raise UsageError(
                f"invalid value {self.on_invalid!r}: use fail, skip or raw", "--on-invalid"
            )

    def start_offset(self, default: str) -> str | int:
        """The offset a backend whose own default is ``default`` starts at: the one given;
        else ``"start"`` when not following (``-e``); else ``default``."""
        if self.offset is not None:
            return self.offset
        if self.follow is False:
            return "start"
        return default

    @property
    def last_n(self) -> int | None:
        """N for ``offset=-N`` (the last N of each stream/shard/partition), else None."""
        offset = self.offset
        if isinstance(offset, int) and offset < 0:
            return -offset
        return None

    @property
    def needs_commit(self) -> bool:
        """True when the consumer must be told what was written downstream (acks/commits)."""
        return self.mode != "realtime"


@dataclass(frozen=True)
class ProducerOptions:
    """How to write, where a backend has a choice. Options of other backends left at their
    defaults are ignored; set to anything else they are refused (``reject_unsupported``)."""

    beacon_interval: int | None = field(default=None, metadata=_flag("--beacon-interval"))
    """File only: bytes between beacons (default 1 MiB; a new file only)."""
    maxlen: int | None = field(default=None, metadata=_flag("--maxlen"))
    """Redis only: approximate MAXLEN trimming on XADD."""
    partition_by: str | None = field(default=None, metadata=_flag("--partition-by"))
    """Kafka only: ``key`` (use each message's key) or a top-level JSON field of the payload."""
    output_format: str = field(default="line", metadata=_flag("--output-format"))
    """stdio only: ``line`` or ``json``."""
    end_with_eos: bool = field(default=True, metadata=_flag("--eos/--no-eos"))
    """File only: write an end-of-stream frame on a clean close."""


def reject_unsupported(options: Any, backend: str, supported: set[str]) -> None:
    """Raise UsageError for any option set to a non-default value that ``backend`` cannot honour."""
    for f in fields(options):
        if f.name in supported:
            continue
        value = getattr(options, f.name)
        default = f.default_factory() if callable(f.default_factory) else f.default
        if value != default:
            flag = f.metadata.get("flag", f.name)
            raise UsageError(f"the {backend} backend does not support {flag} (got {value!r})", flag)


def payload_bytes(item: Payload) -> bytes:
    """The payload bytes of anything ``send`` accepts."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, Message):
        return item.payload
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"cannot send {type(item).__name__}: give bytes, str or Message")


class Producer(abc.ABC):
    """Writes messages to one stream (``stream_key``) or, with no key, each to its own stream."""

    def __init__(self, stream_key: str | None) -> None:
        self.stream_key = stream_key

    @abc.abstractmethod
    async def send_many(self, items: Sequence[Payload]) -> None:
        """Queue a batch for writing; returns once accepted (not necessarily durable)."""

    async def send(self, item: Payload) -> None:
        """Queue one message: ``send_many`` of one (batch with ``send_many`` where rate matters)."""
        await self.send_many((item,))

    @property
    def confirmed(self) -> int | None:
        """Messages the destination has confirmed storing, where the backend counts its
        receipts (None: it does not). After a failure this, not the number handed to
        ``send_many``, is what arrived: pipelined batches may still have been in flight."""
        return None

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until everything sent so far is written/acknowledged; raise if any of it failed."""

    async def close(self) -> None:
        """Flush and release. A closed producer refuses further sends."""
        await self.flush()

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Consumer(abc.ABC):
    """Reads one or more streams. Backends implement ``next_batch``; the rest is built here."""

    def __init__(self, options: ConsumerOptions) -> None:
        self.options = options
        self._buffer: collections.deque[Message] = collections.deque()
        self._stopping = False

    @abc.abstractmethod
    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        """Wait for at least one message; return up to ``max_messages`` that are ready.

        Raises EndOfStream when a finite stream is done, and after ``stop()`` once everything
        already read from the source has been returned.
        """

    async def commit(self, messages: Sequence[Message]) -> None:
        """Record that ``messages`` were handled downstream (acks/commits). Realtime: no-op."""

    def stop(self) -> None:
        """Ask the consumer to read nothing new; ``next_batch`` drains what it holds, then ends.

        Safe to call from a signal handler callback on the event loop.
        """
        self._stopping = True

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called: the consumer is draining what it holds."""
        return self._stopping

    async def close(self) -> None:
        """Release connections/files. Idempotent."""

    async def batches(self, max_messages: int = 1000) -> AsyncIterator[list[Message]]:
        """The fast path: ``async for batch in consumer.batches(1000)``."""
        from asyncio import sleep  # here: stat and decode import this module, not asyncio

        while True:
            if self._buffer:
                batch = [
                    self._buffer.popleft() for _ in range(min(max_messages, len(self._buffer)))
                ]
            else:
                try:
                    batch = await self.next_batch(max_messages)
                except EndOfStream:
                    return
            # A consumer whose data is local (a file, a client library's queue) may never
            # suspend, and a signal's stop() is a loop callback: yield once per batch so it
            # runs, and reading ends within a batch of the signal. After the read, not before:
            # a producer in the same loop then adds at most one of its turns per batch.
            await sleep(0)
            yield batch

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message; TimeoutError after ``timeout`` seconds, EndOfStream at the end."""
        if not self._buffer:
            import asyncio

            if timeout is None:
                self._buffer.extend(await self.next_batch())
            else:
                self._buffer.extend(await asyncio.wait_for(self.next_batch(), timeout))
        return self._buffer.popleft()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.recv()
            except EndOfStream:
                return

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Streamer(abc.ABC):
    """A connection to one backend (a broker, a file, stdio) that makes producers and consumers."""

    def __init__(self, uri: StreamUri, options: ConnectOptions) -> None:
        self.uri = uri
        self.connect_options = options

    @abc.abstractmethod
    async def producer(
        self, stream_key: str | None = None, options: ProducerOptions | None = None
    ) -> Producer:
        """A producer for ``stream_key``; None keeps each message's own key."""

    @abc.abstractmethod
    async def _open_consumer(
        self, stream_keys: tuple[str, ...], options: ConsumerOptions
    ) -> Consumer:
        """Backend part of ``consumer``: keys are validated, options complete."""

    async def consumer(
        self,
        stream_keys: Sequence[str] | str = (),
        options: ConsumerOptions | None = None,
        **option_values: Any,
    ) -> Consumer:
        """A consumer of ``stream_keys`` (empty: every stream the backend can enumerate).

        Options come as a ConsumerOptions or as keywords (``offset="start", group="g"``).
        """
        keys = (stream_keys,) if isinstance(stream_keys, str) else tuple(stream_keys)
        base = options or ConsumerOptions()
        if option_values:
            values = {f.name: getattr(base, f.name) for f in fields(base)}
            unknown = set(option_values) - set(values)
            if unknown:
                raise TypeError(f"unknown consumer option(s): {', '.join(sorted(unknown))}")
            values.update(option_values)
            base = ConsumerOptions(**values)
        return await self._open_consumer(keys, base)

    async def close(self) -> None:
        """Flush and release everything this streamer opened."""

    async def __aenter__(self) -> Streamer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
