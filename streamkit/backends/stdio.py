"""The stdio backend: the line format on stdin and stdout.

One process has one stdin and one stdout, so every stdio streamer in a process shares one
``_StdinHub`` (reads big chunks, decodes them, routes messages to consumers by key and group)
and one ``_StdoutWriter`` (one ``write`` per batch, sequence counters per key shared by all
producers, as SeaStreamer does).

Routing (spec/line-format.md): a consumer with keys receives lines of those keys and every
``broadcast`` line; a consumer without keys receives everything. Consumers in one group share
messages round-robin by sequence number; consumers in different groups (or none) each get all.

Reading is pull-based: a chunk is read only when a consumer has nothing buffered, so a slow
output slows the reader (backpressure through the pipe). Pipes and terminals are read in
non-blocking mode through the event loop, so ``stop()`` (SIGTERM) never waits on a blocked read;
regular files are read directly.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import stat
import sys
from collections.abc import Callable, Sequence
from itertools import compress as _compress
from operator import attrgetter
from operator import not_ as _not
from operator import or_ as _or
from typing import Any

from streamkit.backends.base import (
    ConnectOptions,
    Consumer,
    ConsumerOptions,
    Payload,
    Producer,
    ProducerOptions,
    Streamer,
    reject_unsupported,
)
from streamkit.errors import DataError, EndOfStream, UsageError
from streamkit.formats import line
from streamkit.formats.codec import LineDecoder, encode_lines
from streamkit.formats.jsonl import JsonLineDecoder, encode_json_lines
from streamkit.message import BROADCAST, Message, now_ms
from streamkit.uri import StreamUri

__all__ = ["StdioConsumer", "StdioProducer", "StdioStreamer", "open_streamer", "relay_lines"]

CHUNK_SIZE = 1 << 16
"""Bytes per read. A pipe hands over at most 64 KiB anyway; from a file or a socket, bigger
reads made decoding ~30% slower per line (a 1 MiB chunk's columns no longer fit the cache)."""


def _warn(text: str) -> None:
    sys.stderr.write(f"streamkit: {text}\n")


class _StdinHub:
    """The one reader of fd 0 in this process, shared by every stdio consumer."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.consumers: list[StdioConsumer] = []
        self.decoder: line.LineDecoder | JsonLineDecoder | None = None
        self.decoder_options: tuple[str, str, bool] | None = None
        self.eof = False
        self.stopped = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pollable: bool | None = None
        self._saved_flags: int | None = None

    def configure(self, options: ConsumerOptions) -> None:
        wanted = (options.input_format, options.on_invalid, options.no_meta)
        if self.decoder_options is not None and self.decoder_options != wanted:
            raise UsageError(
                "all stdio consumers of one process must use the same "
                "--input-format, --on-invalid and --no-meta",
                "stdio:///",
            )
        if self.decoder is None:
            if options.input_format == "json":
                self.decoder = JsonLineDecoder("<stdin>", on_invalid=options.on_invalid, warn=_warn)
            elif options.input_format == "line":
                self.decoder = LineDecoder(
                    "<stdin>", on_invalid=options.on_invalid, no_meta=options.no_meta, warn=_warn
                )
            else:
                raise UsageError(
                    f"unknown input format {options.input_format!r}: use line or json",
                    "--input-format",
                )
            self.decoder_options = wanted

    def _setup(self) -> None:
        if self._pollable is not None:
            return
        mode = os.fstat(self.fd).st_mode
        self._pollable = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)
        if self._pollable:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            if not flags & os.O_NONBLOCK:
                self._saved_flags = flags
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)

    def restore(self) -> None:
        """Give stdin back to the shell in the mode we found it."""
        if self._saved_flags is not None:
            try:
                fcntl.fcntl(self.fd, fcntl.F_SETFL, self._saved_flags)
            except OSError:
                pass
            self._saved_flags = None

    async def _read(self) -> bytes | None:
        """One chunk; b'' at EOF; None when stopped while waiting for data."""
        self._setup()
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(self.fd, CHUNK_SIZE)
            except BlockingIOError:
                pass
            if self.stopped.is_set():
                return None
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.fd, _resolve, readable)
            stop_wait = asyncio.ensure_future(self.stopped.wait())
            try:
                await asyncio.wait((readable, stop_wait), return_when=asyncio.FIRST_COMPLETED)
            finally:
                loop.remove_reader(self.fd)
                stop_wait.cancel()

    async def pump(self, caller: StdioConsumer) -> None:
        """Read and route one chunk (or mark EOF); only one consumer reads at a time.

        After ``stop()`` nothing new is read: a partial last line is dropped, complete lines
        already read were routed when their chunk arrived.
        """
        async with self._lock:
            if self.eof or caller._pending:
                return
            if self.stopped.is_set():
                self.eof = True
                return
            assert self.decoder is not None
            data = await self._read()
            if data is None:
                self.eof = True
                return
            if data:
                messages = self.decoder.feed(data)
            else:
                self.eof = True
                messages = self.decoder.finish()
            if messages:
                self.route(messages, self.decoder.broadcast)

    def route(self, messages: list[Message], broadcast: list[bool]) -> None:
        consumers = [c for c in self.consumers if not c.closed]
        groups: dict[str, list[StdioConsumer]] = {}
        all_broadcast = False not in broadcast
        for consumer in consumers:
            if consumer.group is not None:
                groups.setdefault(consumer.group, []).append(consumer)
            elif not consumer.keys or all_broadcast:
                consumer._pending.extend(messages)
            else:  # keep broadcasts and the consumer's keys, selected in C
                pending = consumer._pending
                before = len(pending)
                wanted = map(consumer.keys.__contains__, map(_stream_key_of, messages))
                pending.extend(_compress(messages, map(_or, broadcast, wanted)))
                left_out = len(messages) - (len(pending) - before)
                if left_out:
                    consumer.note_filtered(messages, left_out, broadcast)
        if not groups:
            return
        for message, is_broadcast in zip(messages, broadcast):
            for members in groups.values():
                eligible = [m for m in members if m.accepts(message, is_broadcast)]
                if eligible:
                    eligible[message.seq % len(eligible)]._pending.append(message)
                else:
                    members[0].note_filtered([message], 1)


_stream_key_of = attrgetter("stream_key")
_FILTERED_KEYS_KEPT = 16


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _StdoutWriter:
    """The one writer of fd 1 in this process: whole batches per ``write``."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self.next_seq: dict[str, int] = {}

    def write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                # stdout shares a non-blocking file description with a terminal stdin.
                select.select([], [self.fd], [])
                continue
            view = view[written:]


_hub: _StdinHub | None = None
_writer: _StdoutWriter | None = None


def _stdin_hub() -> _StdinHub:
    global _hub
    if _hub is None:
        _hub = _StdinHub()
    return _hub


def _stdout_writer() -> _StdoutWriter:
    global _writer
    if _writer is None:
        _writer = _StdoutWriter()
    return _writer


class StdioConsumer(Consumer):
    """Messages from stdin for ``keys`` (all when empty), optionally shared within a group."""

    hub: _StdinHub

    def __init__(self, hub: _StdinHub, keys: tuple[str, ...], options: ConsumerOptions) -> None:
        super().__init__(options)
        self.hub = hub
        self.keys = frozenset(keys)
        self.group = options.group
        self.closed = False
        self._pending: list[Message] = []
        self._waiting = False
        self._past_until = False
        self.filtered = 0
        """Messages of other streams the key filter left out (reported by the CLI at exit)."""
        self.filtered_keys: set[str] = set()
        """Some of their stream keys (at most ``_FILTERED_KEYS_KEPT``)."""

    def note_filtered(
        self, messages: list[Message], left_out: int, broadcast: list[bool] | None = None
    ) -> None:
        """Count what the key filter left out; only runs for chunks where it left some out.

        The keys kept are those of the messages left out (broadcasts were delivered)."""
        self.filtered += left_out
        if len(self.filtered_keys) < _FILTERED_KEYS_KEPT:
            if broadcast is not None and True in broadcast:
                messages = list(_compress(messages, map(_not, broadcast)))
            self.filtered_keys.update(set(map(_stream_key_of, messages)) - self.keys)

    @property
    def skipped(self) -> int:
        """Invalid lines skipped under ``on_invalid="skip"`` (shared by the process's consumers)."""
        return self.hub.decoder.skipped if self.hub.decoder is not None else 0

    def accepts(self, message: Message, is_broadcast: bool) -> bool:
        return not self.keys or is_broadcast or message.stream_key in self.keys

    async def next_batch(self, max_messages: int = 1000) -> list[Message]:
        while True:
            if self._pending and not self._past_until:
                batch = self._take(max_messages)
                if batch:
                    return batch
                continue
            if self.hub.eof or self._past_until or self.closed:
                decoder = self.hub.decoder
                if decoder is not None and decoder.error is not None:
                    raise decoder.error
                raise EndOfStream
            if self._stopping:
                self.hub.stopped.set()
            self._waiting = True
            try:
                await self.hub.pump(self)
            finally:
                self._waiting = False

    def _take(self, max_messages: int) -> list[Message]:
        pending = self._pending
        if len(pending) <= max_messages:
            batch, self._pending = pending, []
        else:
            batch = pending[:max_messages]
            del pending[:max_messages]
        since, until = self.options.since, self.options.until
        if since is not None:
            batch = [m for m in batch if m.timestamp >= since]
        if until is not None:
            for index, message in enumerate(batch):
                if message.timestamp > until:
                    self._past_until = True
                    return batch[:index]
        return batch

    def stop(self) -> None:
        super().stop()
        self.hub.stopped.set()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self in self.hub.consumers:
                self.hub.consumers.remove(self)
            if not self.hub.consumers:
                self.hub.restore()


class StdioProducer(Producer):
    """Writes the line format (or JSON lines) to stdout, one ``write`` per batch."""

    def __init__(
        self,
        writer: _StdoutWriter,
        stream_key: str | None,
        options: ProducerOptions,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        super().__init__(stream_key)
        self.writer = writer
        self.clock = clock
        self._encode: Callable[[Sequence[Message], str | None], bytes]
        if options.output_format == "json":
            self._encode = encode_json_lines
        elif options.output_format == "line":
            self._encode = encode_lines
        else:
            raise UsageError(
                f"unknown output format {options.output_format!r}: use line or json",
                "--output-format",
            )
        self.closed = False

    async def send_many(self, items: Sequence[Payload]) -> None:
        if self.closed:
            raise UsageError("send on a closed producer", "stdio:///")
        if not items:
            return
        messages = self._messages(items)
        try:
            data = self._encode(messages, self.stream_key)
        except DataError:
            # A message the format cannot carry: write every message before it, then fail.
            for index in range(len(messages)):
                try:
                    self._encode(messages[index : index + 1], self.stream_key)
                except DataError:
                    if index:
                        self.writer.write(self._encode(messages[:index], self.stream_key))
                    raise
            raise
        self.writer.write(data)

    def _messages(self, items: Sequence[Payload]) -> Sequence[Message]:
        if not items or set(map(type, items)) == {Message}:  # C-level check of the whole batch
            return items  # type: ignore[return-value]
        now = self.clock()
        key = self.stream_key or BROADCAST
        next_seq = self.writer.next_seq
        out = []
        for item in items:
            if isinstance(item, Message):
                out.append(item)
                continue
            payload = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            seq = next_seq.get(key, 0)
            next_seq[key] = seq + 1
            out.append(Message(key, 0, seq, now, payload))
        return out

    def use_encoder(self, encode: Callable[[Sequence[Message], str | None], bytes]) -> None:
        """Write batches with ``encode`` instead of the --output-format's (relay's -f)."""
        self._encode = encode

    async def flush(self) -> None:
        """Every batch is written by ``send_many`` itself; nothing is held back."""

    async def close(self) -> None:
        self.closed = True


class StdioStreamer(Streamer):
    async def producer(
        self, stream_key: str | None = None, options: ProducerOptions | None = None
    ) -> Producer:
        options = options or ProducerOptions()
        reject_unsupported(options, "stdio", {"output_format", "end_with_eos"})
        return StdioProducer(_stdout_writer(), stream_key, options)

    async def _open_consumer(
        self, stream_keys: tuple[str, ...], options: ConsumerOptions
    ) -> Consumer:
        reject_unsupported(
            options,
            "stdio",
            {
                "offset",
                "since",
                "until",
                "mode",
                "group",
                "follow",
                "on_invalid",
                "no_meta",
                "input_format",
            },
        )
        if options.offset not in (None, "start"):
            raise UsageError("stdin cannot seek: --offset must be start (the default)", "--offset")
        if options.follow:
            raise UsageError(
                "stdin is always read to its end; --follow applies to files", "--follow"
            )
        if options.mode == "resumable":
            raise UsageError(
                "the stdio backend has no stored position: --mode resumable "
                "needs redis://, kafka:// or memory://",
                "--mode",
            )
        hub = _stdin_hub()
        hub.configure(options)
        consumer = StdioConsumer(hub, stream_keys, options)
        hub.consumers.append(consumer)
        return consumer


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> Streamer:
    reject_unsupported(options, "stdio", {"connect_timeout", "verbose"})
    return StdioStreamer(uri, options)


async def relay_lines(consumer: Consumer, producer: Producer) -> int | None:
    """stdin → stdout in the line format without a Message per line; None if not applicable.

    The compiled decoder turns each chunk read into the output lines directly (copying lines
    already in canonical form, formatting the others, dropping keys the consumer does not
    read, renaming to the producer's key); lines it does not take go through the pure parser
    and encoder one by one, so output, errors and exit codes are those of the batch loop. Taken
    only for one ungrouped consumer without ``--since``/``--until`` and line output; returns
    the number of messages written.
    """
    if not isinstance(consumer, StdioConsumer) or not isinstance(producer, StdioProducer):
        return None
    hub = consumer.hub
    decoder = hub.decoder
    options = consumer.options
    if (
        not hasattr(decoder, "feed_into")
        or producer._encode is not encode_lines
        or producer.closed
        or consumer.group is not None
        or options.since is not None
        or options.until is not None
        or hub.consumers != [consumer]
        or consumer._pending
        or hub.eof
    ):
        return None
    transcoder: Any = decoder  # the compiled LineDecoder (line_compiled), by feed_into
    keep = consumer.keys or None
    out_key = producer.stream_key
    writer = producer.writer
    sink = bytearray()
    try:
        return await _transcode(hub, transcoder, sink, writer, keep, out_key)
    finally:
        left_out: dict[str, int] | None = transcoder.left_out
        if left_out:  # the key filter's count, for the CLI's note at exit
            consumer.filtered += sum(left_out.values())
            consumer.filtered_keys.update(sorted(left_out)[:_FILTERED_KEYS_KEPT])


async def _transcode(
    hub: Any, transcoder: Any, sink: bytearray, writer: Any, keep: Any, out_key: str | None
) -> int:
    while not hub.stopped.is_set():  # after stop() nothing new is read (as in pump)
        data = await hub._read()
        if data is None:
            break
        try:
            if data:
                transcoder.feed_into(data, sink, keep, out_key)
            else:
                transcoder.finish_into(sink, keep, out_key)
        finally:
            if sink:  # what precedes a bad line or message is written first
                writer.write(sink)
                sink.clear()
        if transcoder.error is not None:
            raise transcoder.error
        if not data:
            break
    hub.eof = True
    relayed: int = transcoder.relayed
    return relayed
