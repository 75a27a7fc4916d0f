"""The ``kafka://`` backend, through confluent-kafka (librdkafka, the client kcat is built on).

Stream key = topic, shard = partition, seq = offset, timestamp = the record's timestamp (ms);
``Message.key``/``headers`` are the record's key and headers, so Kafka-to-Kafka copies keep them.
The pieces: ``kafka_config`` (settings, ``-X``), ``kafka_producer``, ``kafka_consumer`` and
``kafka_positions`` (ends, seek by time). This module connects and hands out the clients.
"""

from __future__ import annotations

import asyncio
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
from streamkit.backends.kafka_config import (
    CONSUMER_DEFAULTS,
    PRODUCER_DEFAULTS,
    base_config,
    config_error,
    describe_kafka_error,
    kafka_logger,
)
from streamkit.backends.kafka_consumer import KafkaConsumer
from streamkit.backends.kafka_positions import all_topics, list_partitions
from streamkit.backends.kafka_producer import KafkaProducer
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
    def __init__(self, uri: StreamUri, options: ConnectOptions, admin: Any) -> None:
        super().__init__(uri, options)
        self._config = base_config(uri, options.settings)
        self._config["logger"] = kafka_logger(options.verbose)
        self._admin = admin
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
        client = _construct(RdProducer, config, settings)
        producer = KafkaProducer(
            stream_key, client, options, self._where, self._topic_check(client)
        )
        holder.append(producer)
        if stream_key is not None:
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


async def open_streamer(uri: StreamUri, options: ConnectOptions) -> KafkaStreamer:
    """Connect: check the ``-X`` settings and that a broker answers within the timeout."""
    config = base_config(uri, options.settings)
    config["logger"] = kafka_logger(options.verbose)
    # Looking a topic up must not create it: a reader of a misspelt topic gets an error.
    config["allow.auto.create.topics"] = False
    admin = _construct(AdminClient, config, options.settings)
    timeout = options.connect_timeout
    try:
        await asyncio.to_thread(admin.list_topics, timeout=timeout)
    except KafkaException as exc:
        servers = config["bootstrap.servers"]
        raise ConnectError(
            f"no Kafka broker answered at {servers} within {timeout:g}s "
            f"({describe_kafka_error(exc.args[0])})",
            uri.redacted(),
        ) from None
    return KafkaStreamer(uri, options, admin)
