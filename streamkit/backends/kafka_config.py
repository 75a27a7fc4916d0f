"""librdkafka configuration for the Kafka backend: defaults, ``-X`` pass-through, error wording.

Every client (admin, producer, consumer) is built from one base dictionary so that ``-X``
settings reach all of them; a setting librdkafka refuses becomes one UsageError line naming the
setting instead of kcat's "Invalid argument or configuration".
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

from streamkit.errors import UsageError
from streamkit.uri import StreamUri

__all__ = [
    "CONSUMER_DEFAULTS",
    "PRODUCER_DEFAULTS",
    "base_config",
    "config_error",
    "describe_kafka_error",
    "kafka_logger",
    "own_settings",
]

PRODUCER_DEFAULTS: dict[str, Any] = {
    # Batches of a few ms amortise requests; kcat -P uses the same librdkafka defaults otherwise.
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "queue.buffering.max.messages": 1_000_000,
    # Only failures come back as delivery reports: a per-message Python callback halves the
    # produce rate, and a success needs no action (flush() proves it).
    "delivery.report.only.error": True,
}

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    # End of partition is how --no-follow and --until know a partition is done (watermarks
    # are not trustworthy on every broker, see kafka_positions).
    "enable.partition.eof": True,
    # The default pauses fetching for 1 s whenever the local queue is full; measured 3.6x
    # throughput with a short backoff and a deep queue.
    "fetch.queue.backoff.ms": 10,
    "queued.min.messages": 200_000,
    # An offset that vanished (retention, a broker that lost its data) restarts at the oldest
    # message kept: re-reading beats silently skipping.
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
}

_PROPERTY = re.compile(r'property:? "?([A-Za-z0-9._-]+)"?')


def own_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """The ``-X`` settings meant for librdkafka.

    A relay hands one ``-X`` list to both ends: ``redis.*`` names belong to the Redis backend,
    ``kafka.NAME`` is NAME said explicitly, anything else is a librdkafka property.
    """
    own: dict[str, str] = {}
    for name, value in settings.items():
        if name.startswith("kafka."):
            own[name[len("kafka.") :]] = value
        elif not name.startswith("redis."):
            own[name] = value
    return own


def base_config(uri: StreamUri, settings: Mapping[str, str]) -> dict[str, Any]:
    """Bootstrap servers from the URI (credentials as SASL PLAIN), then ``-X`` settings on top."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(str(node) for node in uri.nodes),
    }
    if uri.username is not None:
        config["sasl.username"] = uri.username
        config["sasl.password"] = uri.password or ""
        config.setdefault("sasl.mechanism", "PLAIN")
        config.setdefault("security.protocol", "SASL_PLAINTEXT")
    config.update(own_settings(settings))
    return config


def config_error(text: str, settings: Mapping[str, str]) -> UsageError:
    """Turn librdkafka's complaint about a setting into a UsageError naming the ``-X`` pair."""
    match = _PROPERTY.search(text)
    name = match.group(1) if match else None
    if name is not None and name not in settings:
        # librdkafka names the canonical property; -X may have used an alias.
        aliases = {"queue.buffering.max.ms": "linger.ms", "linger.ms": "queue.buffering.max.ms"}
        name = aliases.get(name, name)
    given = None
    if name is not None:
        given = (
            name if name in settings else f"kafka.{name}" if f"kafka.{name}" in settings else None
        )
    where = f"-X {given}={settings[given]}" if given is not None else "-X"
    return UsageError(f"invalid Kafka setting: {text.strip()}", where)


def describe_kafka_error(error: Any) -> str:
    """``KafkaError`` → its readable text (``str()`` of the object is a repr)."""
    text = error.str() if hasattr(error, "str") else str(error)
    return str(text).strip()


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"kafka: {record.getMessage()}\n")


def kafka_logger(verbose: bool) -> logging.Logger:
    """Where librdkafka's own log lines go: stderr with ``-v``, nowhere otherwise.

    Without this, librdkafka prints connection chatter ("Connect to ... failed") to stderr
    many times a second while a broker is down; the backend reports those conditions itself.
    """
    logger = logging.getLogger("streamkit.kafka.librdkafka")
    logger.propagate = False
    logger.handlers.clear()
    if verbose:
        logger.addHandler(_StderrHandler())
        logger.setLevel(logging.WARNING)
    else:
        logger.addHandler(logging.NullHandler())
        logger.setLevel(logging.CRITICAL + 1)
    return logger
