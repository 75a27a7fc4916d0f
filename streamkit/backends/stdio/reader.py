"""stdin: the process's one reader of fd 0 (``_StdinHub``) and the consumers it feeds.

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
import stat
import sys
from itertools import compress as _compress
from operator import attrgetter
from operator import not_ as _not
from operator import or_ as _or
from typing import TYPE_CHECKING

from streamkit.backends.base import Consumer, ConsumerOptions
from streamkit.errors import EndOfStream, UsageError
from streamkit.formats import line
from streamkit.formats.codec import LineDecoder
from streamkit.message import Message

if TYPE_CHECKING:  # imported when --input-format json asks for it (orjson: start-up)
    from streamkit.formats.jsonl import JsonLineDecoder

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
                from streamkit.formats.jsonl import JsonLineDecoder

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


_hub: _StdinHub | None = None


def _stdin_hub() -> _StdinHub:
    global _hub
    if _hub is None:
        _hub = _StdinHub()
    return _hub


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
