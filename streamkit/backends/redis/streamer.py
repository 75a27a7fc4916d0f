"""The Redis Streams backend (``redis://``, ``rediss://``), in SeaStreamer's layout.

Stream key ``k`` is Redis key ``k`` (shard 0) and ``k:N`` (shard N); the payload is field
``msg``; entry id ``MS-N`` gives timestamp MS and seq ``MS << 16 | N``. Data written by
SeaStreamer reads here and the other way round. A single server or a Redis Cluster: detected
from the server (``INFO cluster``), see ``topology``.

Client settings (``-X name=value`` or ``-X redis.name=value``): ``db``, ``tls_ca``,
``tls_cert``, ``tls_key``, ``tls_verify`` (``false`` trusts any certificate),
``reconnect_timeout`` (seconds), ``block_ms``, ``scan_interval`` (seconds), ``page`` (entries
per read), ``message_field``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

from streamkit.backends.base import (
    ConnectOptions,
    Consumer,
    ConsumerOptions,
    Producer,
    ProducerOptions,
    Streamer,
    reject_unsupported,
)
from streamkit.backends.redis.consumer import ConsumerSettings, RedisConsumer
from streamkit.backends.redis.producer import RedisProducer
from streamkit.backends.redis.topology import Topology
from streamkit.backends.redis.wire import RedisConfig
from streamkit.errors import UsageError
from streamkit.message import validate_stream_key
from streamkit.uri import StreamUri

__all__ = ["RedisStreamer", "open_streamer"]

_CONSUMER_OPTIONS = {"offset", "since", "until", "mode", "group", "follow", "consumer_name",
                     "claim_idle"}  # fmt: skip
_SETTINGS = ("db", "tls_ca", "tls_cert", "tls_key", "tls_verify", "reconnect_timeout",
             "block_ms", "scan_interval", "page", "message_field")  # fmt: skip


def _number(settings: Mapping[str, str], name: str, default: float, kind: type = float) -> float:
    text = settings.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"-X {name}={text}: not a number", "-X") from None
    if value < 0:
        raise UsageError(f"-X {name}={text}: must not be negative", "-X")
    return float(value)


def _flag(settings: Mapping[str, str], name: str, default: bool) -> bool:
    text = settings.get(name)
    if text is None:
        return default
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"-X {name}={text}: use true or false", "-X")


def _own_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """This backend's ``-X`` settings: ``name`` or ``redis.name``.

    A relay passes one ``-X`` list to both ends; names with a dot (``fetch.wait.max.ms``) are
    another client's (librdkafka's) and are left to it, while an unknown plain name is refused.
    """
    own: dict[str, str] = {}
    for name, value in settings.items():
        if name.startswith("redis."):
            own[name[len("redis.") :]] = value
        elif "." not in name:
            own[name] = value
    return own


def _check_tls(config: RedisConfig) -> None:
    """The ``-X tls_*`` files, checked before connecting: a missing or unusable file is one
    line naming the setting and the file (exit 2), not a traceback from the ssl module."""
    if not config.tls:
        return
    named = (("tls_ca", config.tls_ca), ("tls_cert", config.tls_cert), ("tls_key", config.tls_key))
    for name, path in named:
        if path is None:
            continue
        if not os.path.exists(path):
            raise UsageError("no such file", f"-X {name}={path}")
        if not os.path.isfile(path):
            raise UsageError("not a file", f"-X {name}={path}")
        if not os.access(path, os.R_OK):
            raise UsageError("permission denied", f"-X {name}={path}")
    if config.tls_key and not config.tls_cert:
        raise UsageError("needs -X tls_cert=FILE too", f"-X tls_key={config.tls_key}")
    try:
        context = ssl.create_default_context(cafile=config.tls_ca)
    except ssl.SSLError as exc:
        raise UsageError(
            f"not a PEM CA certificate ({exc.reason or exc})", f"-X tls_ca={config.tls_ca}"
        ) from None
    if config.tls_cert:
        try:
            context.load_cert_chain(config.tls_cert, config.tls_key)
        except ssl.SSLError as exc:
            given = f"-X tls_cert={config.tls_cert}"
            if config.tls_key:
                given += f" -X tls_key={config.tls_key}"
            raise UsageError(
                f"not a PEM certificate and its key ({exc.reason or exc})", given
            ) from None


class RedisStreamer(Streamer):
    def __init__(self, uri: StreamUri, options: ConnectOptions, topology: Topology) -> None:
        super().__init__(uri, options)
        self.topology = topology
        self.where = uri.with_keys(()).redacted().rstrip("/") if uri.keys else uri.redacted()
        settings = _own_settings(options.settings)
        self._consumer_settings = ConsumerSettings(
            block_ms=int(_number(settings, "block_ms", 2000, int)),
            scan_interval=_number(settings, "scan_interval", 5.0),
            page=max(1, int(_number(settings, "page", 1000, int))),
            message_field=settings.get("message_field", "msg").encode(),
        )
        self._opened: list[Producer | Consumer] = []

    @property
    def cluster(self) -> bool:
        return self.topology.cluster

    async def producer(
        self, stream_key: str | None = None, options: ProducerOptions | None = None
    ) -> Producer:
        options = options or ProducerOptions()
        reject_unsupported(options, "redis", {"maxlen"})
        if stream_key is not None:
            validate_stream_key(stream_key, where=self.where)
        producer = RedisProducer(self.topology, stream_key, options.maxlen, self.where)
        self._opened.append(producer)
        return producer

    async def _open_consumer(
        self, stream_keys: tuple[str, ...], options: ConsumerOptions
    ) -> Consumer:
        supported = set(_CONSUMER_OPTIONS)
        if options.mode == "realtime":
            supported.discard("claim_idle")
            supported.discard("consumer_name")
        reject_unsupported(options, "redis", supported)
        consumer = RedisConsumer(
            self.topology, stream_keys, options, self._consumer_settings, self.where
        )
        await consumer.start()
        self._opened.append(consumer)
        return consumer

    async def close(self) -> None:
        opened, self._opened = self._opened, []
        try:
            for item in opened:
                await item.close()
        finally:
            await self.topology.close()


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> RedisStreamer:
    """Connect to the first reachable node of ``uri``; ConnectError (one line) if none is."""
    settings = _own_settings(options.settings)
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise UsageError(
            f"unknown Redis setting(s) {', '.join(unknown)}; known: {', '.join(_SETTINGS)}", "-X"
        )
    config = RedisConfig(
        tls=uri.tls,
        username=uri.username,
        password=uri.password,
        db=int(_number(settings, "db", 0, int)),
        connect_timeout=options.connect_timeout,
        tls_ca=settings.get("tls_ca"),
        tls_cert=settings.get("tls_cert"),
        tls_key=settings.get("tls_key"),
        tls_verify=_flag(settings, "tls_verify", True),
    )
    _check_tls(config)
    where = uri.redacted()
    if uri.has_key_list:
        where = where.rsplit("/", 1)[0]
    topology = Topology(
        uri.nodes,
        config,
        where,
        reconnect_timeout=_number(settings, "reconnect_timeout", 60.0),
        verbose=options.verbose,
    )
    await topology.start()
    streamer = RedisStreamer(uri, options, topology)
    streamer.where = where
    return streamer
