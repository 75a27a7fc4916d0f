"""Where a Kafka consumer starts and where ``--no-follow`` stops: partitions, ends, times.

The end of a partition is NOT taken from ListOffsets (the "high watermark" query): the tansu
broker answers it with the base offset of the last record batch plus one, so "end" would replay
part of the last batch and ``--no-follow`` would stop early. The high watermark inside a Fetch
response is right on every broker we tried, so ``fetch_ends`` reads it the way a consumer sees
it: assign at the (possibly low) watermark, fetch until end-of-partition or the first records,
then take the end from the partition-EOF event or librdkafka's fetch-cached watermark. On a
correct broker this costs one empty fetch; on tansu it reads at most one batch per partition.

``offsets_for_times`` is batch-granular on tansu too (it returns a batch's base offset), so the
consumer also filters ``timestamp >= since`` itself; on Kafka that filter is a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamkit.backends.kafka.config import describe_kafka_error
from streamkit.errors import BackendError, ConnectError

__all__ = [
    "TP",
    "all_topics",
    "fetch_ends",
    "list_partitions",
    "offsets_for_time",
    "take",
    "watermarks",
]

TP = tuple[str, int]
"""(topic, partition)"""


def take(consumer: Any, max_messages: int, timeout: float) -> list[Any]:
    """Wait up to ``timeout`` for one message, then take whatever else is ready (no waiting).

    ``consume(n, timeout)`` alone waits for all ``n`` or the timeout, which adds the timeout
    to the latency of a slow stream; this returns as soon as something is there.
    """
    first: list[Any] = consumer.consume(1, timeout)
    if first and max_messages > 1:
        first.extend(consumer.consume(max_messages - 1, 0))
    return first


def list_partitions(client: Any, topics: Sequence[str], timeout: float, where: str) -> list[TP]:
    """Every partition of ``topics``; a missing topic is one clear error naming it."""
    partitions: list[TP] = []
    for topic in topics:
        try:
            metadata = client.list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            raise ConnectError(
                f"no metadata for Kafka topic {topic!r} within {timeout:g}s: "
                f"{describe_kafka_error(exc.args[0])}",
                where,
            ) from None
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            reason = describe_kafka_error(info.error) if info is not None and info.error else ""
            raise BackendError(
                f"Kafka topic {topic!r} does not exist" + (f" ({reason})" if reason else ""),
                where,
            )
        partitions.extend((topic, p) for p in sorted(info.partitions))
    return partitions


def all_topics(client: Any, timeout: float) -> list[str]:
    """The user topics of the cluster (internal ``__*`` topics left out)."""
    metadata = client.list_topics(timeout=timeout)
    return sorted(t for t in metadata.topics if not t.startswith("__"))


def watermarks(client: Any, partitions: Sequence[TP], timeout: float) -> dict[TP, tuple[int, int]]:
    """ListOffsets (low, high) per partition: low is reliable; high only a lower bound on tansu.

    Positions are always given to librdkafka as numbers: a logical start/end offset costs a
    fixed ~0.5 s before the first fetch, a number does not.
    """
    result: dict[TP, tuple[int, int]] = {}
    for tp in partitions:
        try:
            low, high = client.get_watermark_offsets(TopicPartition(*tp), timeout=timeout)
        except KafkaException as exc:
            raise ConnectError(
                f"no offsets for {tp[0]}[{tp[1]}] within {timeout:g}s: "
                f"{describe_kafka_error(exc.args[0])}",
                None,
            ) from None
        result[tp] = (low, high)
    return result


def fetch_ends(config: dict[str, Any], partitions: Sequence[TP], timeout: float) -> dict[TP, int]:
    """The offset one past the last message of each partition, as a Fetch response reports it."""
    if not partitions:
        return {}
    probe = Consumer(
        {
            **config,
            "group.id": "streamkit-probe",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        marks = watermarks(probe, partitions, timeout)
        probe.assign([TopicPartition(t, p, marks[(t, p)][1]) for t, p in partitions])
        pending = set(partitions)
        ends: dict[TP, int] = {}
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(f"{t}[{p}]" for t, p in sorted(pending))
                raise ConnectError(
                    f"could not find the end of {names} within {timeout:g}s",
                    config.get("bootstrap.servers"),
                )
            for message in take(probe, 10000, min(left, 0.2)):
                tp = (message.topic(), message.partition())
                if tp not in pending:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        ends[tp] = message.offset()
                        pending.discard(tp)
                    continue
                # Records arrived, so a Fetch response was processed: its watermark is known.
                _, high = probe.get_watermark_offsets(TopicPartition(*tp), cached=True)
                if high >= 0:
                    ends[tp] = high
                    pending.discard(tp)
        return ends
    finally:
        probe.close()


def offsets_for_time(
    consumer: Any, partitions: Sequence[TP], timestamp: int, timeout: float, where: str
) -> dict[TP, int]:
    """First offset with a timestamp >= ``timestamp`` per partition (the high mark when none)."""
    query = [TopicPartition(t, p, timestamp) for t, p in partitions]
    try:
        answer = consumer.offsets_for_times(query, timeout=timeout)
    except KafkaException as exc:
        raise BackendError(
            f"offsets-for-times failed: {describe_kafka_error(exc.args[0])}", where
        ) from None
    result: dict[TP, int] = {}
    for tp in answer:
        if tp.error is not None:
            raise BackendError(
                f"offsets-for-times failed for {tp.topic}[{tp.partition}]: "
                f"{describe_kafka_error(tp.error)}",
                where,
            )
        result[(tp.topic, tp.partition)] = tp.offset
    missing = [tp for tp, offset in result.items() if offset < 0]
    for tp, (_, high) in watermarks(consumer, missing, timeout).items():
        result[tp] = high
    return result
