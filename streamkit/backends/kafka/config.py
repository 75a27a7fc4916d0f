"""librdkafka configuration for the Kafka backend: defaults, ``-X`` pass-through, error wording.

Every client (admin, producer, consumer) is built from one base dictionary so that ``-X``
settings reach all of them; a setting librdkafka refuses becomes one UsageError line naming the
setting instead of kcat's "Invalid argument or configuration".
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

from streamkit.errors import UsageError
from streamkit.uri import StreamUri

__all__ = [
    "CLIENT_DEFAULTS",
    "CONSUMER_DEFAULTS",
    "PRODUCER_DEFAULTS",
    "base_config",
    "config_error",
    "describe_kafka_error",
    "kafka_logger",
    "own_settings",
]

CLIENT_DEFAULTS: dict[str, Any] = {
    # librdkafka drops its bootstrap connection once metadata names the broker, failing the
    # request in flight on it, and waits before connecting to that broker: measured 50 ms at
    # the default backoff of 100 ms, 10 ms at 10, paid by every client's first request. The
    # backoff still doubles on each failed attempt up to reconnect.backoff.max.ms (10 s), so
    # a broker that is down is not hammered.
    "reconnect.backoff.ms": 10,
}

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
    # are not trustworthy on every broker, see positions).
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
        **CLIENT_DEFAULTS,
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


_LOG_LINE = re.compile(r"^(?P<facility>\S+) \[(?P<client>[^\]]*)\] (?P<rest>.*)$", re.S)
_BROKER = re.compile(
    r"\]: (?:GroupCoordinator: )?(?P<broker>\[?[^\s/]+\]?:\d+)(?:/\S+)?: (?P<what>.*)$", re.S
)
_REASON = re.compile(r"(?:failed: )?(?P<reason>[^:(]+?)\s*\(after \d+ms")

OUTAGE_QUIET = 60.0
"""Seconds without a failure from a broker after which its next failure is a new outage."""

REPEAT_QUIET = 10.0
"""-v: seconds before the same librdkafka line is printed again (it repeats every retry)."""


class _LibrdkafkaHandler(logging.Handler):
    """librdkafka's log lines, said the streamkit way.

    Without a handler librdkafka prints every connection attempt ("FAIL [rdkafka#producer-2]
    ... Connect to ... failed") to stderr, many times a second while a broker is down. Here a
    broker failure becomes ONE line per outage, ``streamkit: kafka broker H:P down (...);
    retrying``; with ``-v`` the details follow, each distinct line at most every 10 s.
    """

    def __init__(self, verbose: bool) -> None:
        super().__init__(logging.DEBUG)
        self.verbose = verbose
        self._down: dict[str, float] = {}
        self._said: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        now = time.monotonic()
        match = _LOG_LINE.match(text)
        if match is not None and match.group("facility") == "FAIL":
            broker = _BROKER.search(match.group("rest"))
            if broker is not None:
                name = broker.group("broker")
                last = self._down.get(name)
                self._down[name] = now
                if last is None or now - last > OUTAGE_QUIET:
                    reason = _REASON.search(broker.group("what"))
                    why = f" ({reason.group('reason').strip().lower()})" if reason else ""
                    sys.stderr.write(f"streamkit: kafka broker {name} down{why}; retrying\n")
        if not self.verbose or record.levelno < logging.WARNING:
            return
        detail = _BROKER.sub("]: ", text) if match is not None else text
        said = self._said.get(detail)
        if said is not None and now - said < REPEAT_QUIET:
            return
        self._said[detail] = now
        sys.stderr.write(f"kafka: {text}\n")


def kafka_logger(verbose: bool) -> logging.Logger:
    """Where librdkafka's own log lines go: through ``_LibrdkafkaHandler``, never raw."""
    logger = logging.getLogger("streamkit.kafka.librdkafka")
    logger.propagate = False
    logger.handlers.clear()
    logger.addHandler(_LibrdkafkaHandler(verbose))
    logger.setLevel(logging.WARNING)
    return logger
