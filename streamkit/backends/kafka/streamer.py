"""The ``kafka://`` backend, through confluent-kafka (librdkafka, the client kcat is built on).

Stream key = topic, shard = partition, seq = offset, timestamp = the record's timestamp (ms);
``Message.key``/``headers`` are the record's key and headers, so Kafka-to-Kafka copies keep them.
The pieces: ``config`` (settings, ``-X``), ``producer`` (on ``librdkafka``'s client where it
can be), ``consumer`` and ``positions`` (ends, seek by time). This module connects and hands
out the clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka import Producer as RdProducer
from confluent_kafka.admin import AdminClient

from streamkit.backends.base import (
    ConnectOptions,
    Consumer,
    ConsumerOptions,
    Producer,
    ProducerOptions,
    Streamer,
    reject_unsupported,
)
from streamkit.backends.kafka.config import (
    CONSUMER_DEFAULTS,
    PRODUCER_DEFAULTS,
    base_config,
    config_error,
    describe_kafka_error,
    kafka_logger,
)
from streamkit.backends.kafka.consumer import KafkaConsumer
from streamkit.backends.kafka.librdkafka import direct_client
from streamkit.backends.kafka.positions import all_topics, list_partitions
from streamkit.backends.kafka.producer import KafkaProducer
from streamkit.errors import BackendError, ConnectError
from streamkit.uri import StreamUri

__all__ = ["KafkaStreamer", "open_streamer"]

_CONSUMER_OPTIONS = {"offset", "since", "until", "mode", "group", "follow", "consumer_name"}
_PRODUCER_OPTIONS = {"partition_by"}


def _construct(factory: Any, config: dict[str, Any], settings: Any) -> Any:
    try:
        return factory(config)
    except KafkaException as exc:
        raise config_error(describe_kafka_error(exc.args[0]), settings) from None
    except (TypeError, ValueError) as exc:
        raise config_error(str(exc), settings) from None


class KafkaStreamer(Streamer):
    def __init__(
        self,
        uri: StreamUri,
        options: ConnectOptions,
        admin: Any,
        listed_topics: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(uri, options)
        self._config = base_config(uri, options.settings)
        self._config["logger"] = kafka_logger(options.verbose)
        self._admin = admin
        self._listed_topics = listed_topics
        self._producers: list[KafkaProducer] = []
        self._consumers: list[KafkaConsumer] = []
        self._where = uri.redacted()

    def _topic_check(self, client: Any) -> Any:
        timeout = self.connect_options.connect_timeout

        def check(topic: str) -> None:
            # A producer's metadata request creates the topic where the broker allows it.
            where = f"kafka://{self._config['bootstrap.servers']}/{topic}"
            list_partitions(client, [topic], timeout, where)

        return check

    async def producer(
        self, stream_key: str | None = None, options: ProducerOptions | None = None
    ) -> Producer:
        options = options or ProducerOptions()
        reject_unsupported(options, "kafka", _PRODUCER_OPTIONS)
        settings = self.connect_options.settings
        config = {**PRODUCER_DEFAULTS, **self._config}
        holder: list[KafkaProducer] = []
        config["on_delivery"] = lambda error, message: holder[0].on_delivery(error, message)
        client = _construct(direct_client, config, settings) or _construct(
            RdProducer, config, settings
        )
        producer = KafkaProducer(
            stream_key,
            client,
            options,
            self._where,
            self._topic_check(client),
            known_topics=self._listed_topics,
        )
        holder.append(producer)
        if stream_key is not None:
            # A topic the connect-time listing showed needs no second metadata round trip:
            # the producer connects while the first batch is being read.
            await producer.ensure_topic(stream_key)
        self._producers.append(producer)
        return producer

    async def _open_consumer(
        self, stream_keys: tuple[str, ...], options: ConsumerOptions
    ) -> Consumer:
        reject_unsupported(options, "kafka", _CONSUMER_OPTIONS)
        timeout = self.connect_options.connect_timeout
        topics = list(stream_keys)
        if not topics:
            topics = await asyncio.to_thread(all_topics, self._admin, timeout)
            if not topics:
                raise BackendError("the Kafka cluster has no topics to read", self._where)
        partitions = await asyncio.to_thread(
            list_partitions, self._admin, topics, timeout, self._where
        )
        config = {**CONSUMER_DEFAULTS, **self._config}
        config["group.id"] = options.group or "streamkit"
        if options.consumer_name:
            config["client.id"] = options.consumer_name
        consumer = KafkaConsumer(
            options,
            config,
            topics,
            partitions,
            self._where,
            timeout,
            self.connect_options.verbose,
            self._admin,
        )
        try:
            await asyncio.to_thread(consumer.start)
        except KafkaException as exc:
            raise config_error(
                describe_kafka_error(exc.args[0]), self.connect_options.settings
            ) from None
        self._consumers.append(consumer)
        return consumer

    async def close(self) -> None:
        producers, self._producers = self._producers, []
        consumers, self._consumers = self._consumers, []
        try:
            for producer in producers:
                await producer.close()
        finally:
            for consumer in consumers:
                await consumer.close()


def _bootstrap_addresses(servers: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a ``bootstrap.servers`` list (``SSL://h:p`` and ``[v6]:p`` too)."""
    addresses: list[tuple[str, int]] = []
    for item in servers.split(","):
        text = item.strip().rpartition("://")[2]
        if not text:
            continue
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port_text = rest.lstrip(":")
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep:
                host, port_text = text, ""
        try:
            addresses.append((host, int(port_text) if port_text else 9092))
        except ValueError:
            continue
    return addresses


async def _refused(address: tuple[str, int], timeout: float) -> str | None:
    """Why a TCP connection to ``address`` failed at once (refused, unknown host), or None
    when it connects, or only times out (a slow network is librdkafka's to wait for)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror as exc:
        return f"cannot resolve the host name: {exc.strerror}"
    except (OSError, asyncio.TimeoutError):
        return None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _fail_fast(servers: str, timeout: float, where: str) -> None:
    """Fail at once when every bootstrap server refuses the connection.

    librdkafka retries a refused connection until the timeout (10 s by default) and then
    reports only "timed out"; Redis users get "refused" in a fraction of a second. A broker
    that goes down later is still retried (that is librdkafka's reconnect, not this check)."""
    addresses = _bootstrap_addresses(servers)
    if not addresses:
        return
    reasons = await asyncio.gather(*(_refused(a, timeout) for a in addresses))
    if all(reasons):
        named = ", ".join(f"{h}:{p} ({r})" for (h, p), r in zip(addresses, reasons))
        raise ConnectError(f"no Kafka broker at {named}: is the broker running there?", where)


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> KafkaStreamer:
    """Connect: check the ``-X`` settings and that a broker answers within the timeout."""
    config = base_config(uri, options.settings)
    config["logger"] = kafka_logger(options.verbose)
    # Looking a topic up must not create it: a reader of a misspelt topic gets an error.
    config["allow.auto.create.topics"] = False
    admin = _construct(AdminClient, config, options.settings)
    timeout = options.connect_timeout
    await _fail_fast(str(config["bootstrap.servers"]), timeout, uri.redacted())
    try:
        metadata = await asyncio.to_thread(admin.list_topics, timeout=timeout)
    except KafkaException as exc:
        servers = config["bootstrap.servers"]
        raise ConnectError(
            f"no Kafka broker answered at {servers} within {timeout:g}s "
            f"({describe_kafka_error(exc.args[0])})",
            uri.redacted(),
        ) from None
    return KafkaStreamer(uri, options, admin, _usable_topics(metadata))


def _usable_topics(metadata: Any) -> frozenset[str]:
    """Topics of a cluster listing that exist without error and have partitions."""
    return frozenset(
        name for name, info in metadata.topics.items() if info.error is None and info.partitions
    )
