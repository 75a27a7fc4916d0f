"""Notice a topic that was re-created under a running consumer, so its new messages are read.

A consumer keeps its position across a broker outage, which is right when the broker keeps its
log (Kafka does). When the log comes back as a NEW topic — deleted and re-created, or a
memory-only broker such as the tests' tansu restarting — offsets restart at 0 and the old
position skips, or waits past, messages nobody has read. The topic id (KIP-516) tells the two
cases apart: after connection trouble the consumer compares ids and reads a re-created topic
from its first offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException, TopicCollection

__all__ = ["topic_ids"]


def topic_ids(admin: Any, topics: Sequence[str], timeout: float) -> dict[str, str] | None:
    """Topic name → id, or None while any topic cannot be described (broker down, not yet
    re-created)."""
    try:
        futures = admin.describe_topics(TopicCollection(list(topics)), request_timeout=timeout)
        return {name: str(future.result().topic_id) for name, future in futures.items()}
    except KafkaException:
        return None
