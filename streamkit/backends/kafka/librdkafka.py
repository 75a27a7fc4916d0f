"""The producer's client: librdkafka driven from C where it can be, confluent-kafka's otherwise.

``LibrdkafkaClient`` is ``_speedups.LibrdkafkaProducer`` (see _speedups_librdkafka.c): the same
librdkafka that confluent-kafka loaded, driven through its C API as kcat does, so a record costs
librdkafka's own work and not also confluent-kafka's argument parsing and a Python delivery
report per message (stdio → Kafka: docs/benchmarks.md). It offers the calls ``KafkaProducer``
makes of confluent-kafka's ``Producer`` (``produce``, ``poll``, ``flush``, ``list_topics``), with
failed deliveries collected in C (``failures()``) instead of a Python callback, and
``produce_messages`` (a batch of Messages) and ``produce_spans`` (a relay's lines, no Message
each: ``stdin_relay``).

confluent-kafka's ``Producer`` is used instead on the pure-Python codec
(``STREAMKIT_PURE_PYTHON=1``), when the extension finds no usable librdkafka in the process (it
looks on Linux only), and when the configuration holds a Python object (a callback only
confluent-kafka can take). The extension module is imported either way, as the Kafka tests run
this client also under ``STREAMKIT_PURE_PYTHON=1``; only ``ENABLED`` puts it to use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException

from streamkit.formats import codec

__all__ = ["ENABLED", "LibrdkafkaClient", "direct_client"]

ENABLED = codec.IMPLEMENTATION == "C"
"""Whether producers take this client: with the C codec (the tests switch it both ways)."""

_PYTHON_SIDE = frozenset({"logger", "on_delivery"})
"""Settings for confluent-kafka's Python layer that this client handles itself."""


class _Topic(NamedTuple):
    error: str | None
    partitions: dict[int, None]


class _Listing(NamedTuple):
    topics: dict[str, _Topic]


def _make_error(code: int, text: str) -> KafkaException:
    """What a refused record or failed request raises: what confluent-kafka would raise."""
    return KafkaException(KafkaError(code, text))


_Base: Any = object
try:
    from streamkit.formats import _speedups
except ImportError:  # the C codec is not built
    pass
else:
    _Base = _speedups.LibrdkafkaProducer


class LibrdkafkaClient(_Base):  # type: ignore[misc]
    """``_speedups.LibrdkafkaProducer`` with confluent-kafka's ``list_topics`` for one topic."""

    __slots__ = ()

    def list_topics(self, topic: str, timeout: float) -> _Listing:
        """The topic's metadata in the shape ``positions.list_partitions`` reads; asking
        creates the topic where the broker creates topics on first use, as producing would."""
        code, text, partitions = self.topic_partitions(topic, timeout)
        return _Listing({topic: _Topic(text if code else None, dict.fromkeys(partitions))})


def direct_client(config: Mapping[str, Any]) -> LibrdkafkaClient | None:
    """A ``LibrdkafkaClient`` for ``config`` (confluent-kafka's dictionary), or None where
    confluent-kafka's ``Producer`` must serve (see the module's docstring).

    A setting librdkafka refuses raises ValueError with librdkafka's own text, the text
    confluent-kafka would have put in its KafkaException.
    """
    if not ENABLED or _Base is object:
        return None
    settings: dict[str, str] = {}
    for name, value in config.items():
        if name in _PYTHON_SIDE:
            continue
        if isinstance(value, bool):
            settings[name] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            settings[name] = str(value)
        else:
            return None
    try:
        _speedups.librdkafka_version()
    except ImportError:
        return None
    logger = config.get("logger")
    return LibrdkafkaClient(settings, logger.log if logger is not None else None, _make_error)
