"""A raw RESP connection: whole batches of commands in one write, replies parsed by hiredis.

redis-py's generic command layer costs ~8 µs per command in Python, which caps a pipelined
XADD relay near 125k msgs/s; packing a batch of commands into one buffer and parsing the replies
with ``hiredis.Reader`` in a tight loop does several times better (docs/redis.md). Every Redis
command of the backend, control commands included, goes through this one small class, so that
there is one place for timeouts, TLS, authentication and the mapping of failures to errors.

There is deliberately no per-command timeout: a blocking XREAD waits as long as its BLOCK says.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis

from streamkit.backends.redis import codec
from streamkit.backends.redis.resp import MORE, OTHER
from streamkit.errors import BackendError, ConnectError
from streamkit.uri import Node

__all__ = [
    "ConnectionLost",
    "RedisConfig",
    "RedisConnection",
    "ServerError",
    "encode_command",
    "reply_error_code",
]

_READ_CHUNK = 1 << 20


class ConnectionLost(ConnectError):
    """An open connection broke (server restart, network): the caller may reconnect and retry."""


class ServerError(BackendError):
    """Redis answered a command with an error reply; ``code`` is its first word (WRONGTYPE...)."""

    def __init__(self, what: str, where: str | None = None, *, code: str = "ERR") -> None:
        super().__init__(what, where)
        self.code = code


def reply_error_code(error: Exception) -> str:
    return str(error).split(" ", 1)[0]


@dataclass(frozen=True)
class RedisConfig:
    """Everything needed to open one more connection to any node of the deployment."""

    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0
    connect_timeout: float = 10.0
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool = True

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _bulk(arg: bytes | str | int) -> bytes:
    if isinstance(arg, str):
        arg = arg.encode()
    elif isinstance(arg, int):
        arg = b"%d" % arg
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def encode_command(*args: bytes | str | int) -> bytes:
    return b"*%d\r\n%s" % (len(args), b"".join(_bulk(a) for a in args))


class RedisConnection:
    """One TCP/TLS connection. Not shared by concurrent tasks unless the caller holds ``lock``."""

    def __init__(
        self, node: Node, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.node = node
        self.where = f"redis://{node}"
        self.lock = asyncio.Lock()
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader()
        self._raw = b""
        """Bytes read by ``read_acks`` and not parsed yet, from ``_raw_pos``."""
        self._raw_pos = 0
        self._broken = False

    @classmethod
    async def open(cls, node: Node, config: RedisConfig, where: str) -> RedisConnection:
        """Connect, authenticate and select the database; ConnectError with one clear line."""
        host, port = node.host, node.port or 6379
        context = config.ssl_context()
        try:
            # TCP first, then TLS: a plain server never answers a TLS hello, and only a
            # timeout in the second step can tell the user that this is the likely reason.
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=_READ_CHUNK), config.connect_timeout
            )
            if context is not None:
                raw = writer.transport.get_extra_info("socket").dup()
                writer.close()
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(
                            sock=raw, ssl=context, server_hostname=host, limit=_READ_CHUNK
                        ),
                        config.connect_timeout,
                    )
                except (TimeoutError, asyncio.TimeoutError):
                    raw.close()
                    raise ConnectError(
                        f"no TLS handshake from {node} within {config.connect_timeout:g}s: "
                        "is that port serving TLS? (use redis:// for a plain port)",
                        where,
                    ) from None
        except ssl.SSLCertVerificationError as error:
            raise ConnectError(
                f"TLS certificate of {node} not trusted ({error.verify_message}): give its CA "
                "with -X tls_ca=FILE, or -X tls_verify=false to skip the check",
                where,
            ) from None
        except ssl.SSLError as error:
            raise ConnectError(
                f"TLS handshake with {node} failed ({error.reason or error}): "
                "is that port serving TLS? (use redis:// for a plain port)",
                where,
            ) from None
        except (TimeoutError, asyncio.TimeoutError):
            raise ConnectError(
                f"no answer from {node} within {config.connect_timeout:g}s", where
            ) from None
        except ConnectionRefusedError:
            raise ConnectError(
                f"connection to {node} refused (is redis-server running there?)", where
            ) from None
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConnectError(f"cannot connect to {node}: {reason}", where) from None
        connection = cls(node, reader, writer)
        try:
            await asyncio.wait_for(connection._handshake(config, where), config.connect_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            await connection.close()
            hint = " (a TLS port? use rediss://)" if not config.tls else ""
            raise ConnectError(f"{node} did not answer the handshake{hint}", where) from None
        except ConnectionLost:
            await connection.close()
            hint = "is it a TLS port? use rediss://" if not config.tls else "wrong TLS setup?"
            raise ConnectError(
                f"{node} closed the connection during the handshake ({hint})", where
            ) from None
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _handshake(self, config: RedisConfig, where: str) -> None:
        commands: list[tuple[bytes | str | int, ...]] = []
        if config.password is not None or config.username is not None:
            auth: tuple[bytes | str | int, ...] = ("AUTH", config.password or "")
            if config.username:
                auth = ("AUTH", config.username, config.password or "")
            commands.append(auth)
        commands.append(("PING",))
        if config.db:
            commands.append(("SELECT", config.db))
        replies = await self.pipeline(commands)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                code = reply_error_code(reply)
                if code == "WRONGPASS" or "invalid password" in str(reply):
                    raise ConnectError("authentication failed: wrong user name or password", where)
                if code == "NOAUTH":
                    raise ConnectError(
                        "the server requires a password: put it in the URI "
                        "(redis://:PASSWORD@host:port or redis://USER:PASSWORD@host:port)",
                        where,
                    )
                raise ConnectError(f"handshake failed: {reply}", where)

    @property
    def broken(self) -> bool:
        return self._broken

    def write(self, data: bytes) -> None:
        if self._broken:
            raise ConnectionLost("connection already lost", self.where)
        self._writer.write(data)

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except (OSError, RuntimeError) as error:
            self._broken = True
            raise ConnectionLost(f"connection lost: {error}", self.where) from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A failed read breaks the connection: mark it, and map the failure to ConnectionLost."""
        try:
            yield
        except ConnectionLost:
            self._broken = True
            raise
        except asyncio.CancelledError:
            self._broken = True  # a reply may be half read: this connection is unusable
            raise
        except (OSError, ssl.SSLError, hiredis.ProtocolError) as error:
            self._broken = True
            raise ConnectionLost(f"connection lost: {error}", self.where) from None

    async def _read_chunk(self) -> bytes:
        data = await self._reader.read(_READ_CHUNK)
        if not data:
            raise ConnectionLost("the server closed the connection", self.where)
        return data

    async def read_replies(self, count: int) -> list[Any]:
        """``count`` replies; error replies come back as ``hiredis.ReplyError`` values."""
        out: list[Any] = []
        parser = self._parser
        if self._raw_pos < len(self._raw):  # left by read_acks: hiredis parses it first
            parser.feed(self._raw[self._raw_pos :])
            self._raw, self._raw_pos = b"", 0
        gets = parser.gets
        append = out.append
        with self._reading():
            while len(out) < count:
                reply = gets()
                if reply is False:
                    parser.feed(await self._read_chunk())
                else:
                    append(reply)
        return out

    async def read_acks(self, count: int) -> list[tuple[int, Any]]:
        """Read ``count`` replies of which only the errors matter (a batch of XADDs): returns
        each error reply as (its index, ``hiredis.ReplyError``).

        With the C codec the plain replies are skipped in the bytes as read, with no Python
        object per reply; anything else goes to hiredis, which then parses until its buffer is
        used up. Bytes are in one place at a time: hiredis's buffer or ``_raw`` after it.
        On the pure path hiredis reads every reply (faster than a Python loop over bytes).
        """
        skip = codec.skip_replies
        if skip is None:
            replies = await self.read_replies(count)
            if hiredis.ReplyError not in map(type, replies):  # the usual batch: no loop in Python
                return []  # (this Reader makes no ReplyError subclasses: the types are exact)
            return [(i, r) for i, r in enumerate(replies) if isinstance(r, hiredis.ReplyError)]
        failed: list[tuple[int, Any]] = []
        done = 0
        parser = self._parser
        with self._reading():
            while done < count:
                if parser.has_data():
                    reply = parser.gets()
                    if reply is False:
                        parser.feed(await self._read_chunk())
                        continue
                    if isinstance(reply, hiredis.ReplyError):
                        failed.append((done, reply))
                    done += 1
                    continue
                raw = self._raw
                pos, skipped, why = skip(raw, self._raw_pos, count - done)
                done += skipped
                if why == MORE:
                    data = await self._read_chunk()
                    raw, pos = (raw[pos:] + data if pos < len(raw) else data), 0
                elif why == OTHER:
                    parser.feed(raw[pos:])
                    raw, pos = b"", 0
                self._raw, self._raw_pos = raw, pos
        return failed

    async def execute_raw(self, data: bytes, count: int) -> list[Any]:
        """Write pre-encoded commands and read their ``count`` replies."""
        self.write(data)
        await self.drain()
        return await self.read_replies(count)

    async def pipeline(self, commands: Iterable[Sequence[bytes | str | int]]) -> list[Any]:
        encoded = [encode_command(*c) for c in commands]
        return await self.execute_raw(b"".join(encoded), len(encoded))

    async def call(self, *args: bytes | str | int) -> Any:
        """One command; an error reply raises ServerError."""
        (reply,) = await self.execute_raw(encode_command(*args), 1)
        if isinstance(reply, hiredis.ReplyError):
            raise ServerError(str(reply), self.where, code=reply_error_code(reply))
        return reply

    async def close(self) -> None:
        self._broken = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
