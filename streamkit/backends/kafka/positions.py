"""Where a Kafka consumer starts and where ``--no-follow`` stops: partitions, ends, times.

``ConsumerPositions`` holds the state every part of the consumer shares and the start-up half
(ends, start positions, assign or subscribe, the group callbacks); ``consumer.py`` adds the
reading, converting and committing on top.

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

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamkit.backends import base
from streamkit.backends.base import ConsumerOptions
from streamkit.backends.kafka.config import describe_kafka_error
from streamkit.backends.kafka.identity import topic_ids
from streamkit.errors import BackendError, ConnectError
from streamkit.timeutil import format_ms

__all__ = [
    "TP",
    "ConsumerPositions",
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


_OUTAGE = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
}
"""Conditions after which the topic may have come back as a new topic (identity)."""


def _name(tp: TP) -> str:
    return f"{tp[0]}[{tp[1]}]"


class ConsumerPositions(base.Consumer):
    """The shared state and the start-up half of ``KafkaConsumer``: ends, start positions,
    assign or subscribe, the group callbacks (see ``consumer.py`` for reading)."""

    def __init__(
        self,
        options: ConsumerOptions,
        config: dict[str, Any],
        topics: Sequence[str],
        partitions: Sequence[TP],
        where: str,
        timeout: float,
        verbose: bool,
        admin: Any = None,
    ) -> None:
        super().__init__(options)
        self._admin = admin
        self._topic_ids: dict[str, str] | None = None
        self._suspect = False
        self._last_check = 0.0
        self._fatal: str | None = None
        self._config = config
        self._topics = list(topics)
        self._partitions = list(partitions)
        self._where = where
        self._timeout = timeout
        self._verbose = verbose
        self._group_mode = options.mode != "realtime"
        self._follow = True if options.follow is None else options.follow
        self._offset = options.start_offset("end")
        """Where to start: the option, ``start`` with -e and no --offset, else the end."""
        self._since = options.since
        self._until = options.until
        self._ends: dict[TP, int] | None = None
        self._last: dict[Any, int] | None = None
        self._done: set[TP] = set()
        self._assigned: set[TP] | None = None
        self._positioned: set[TP] = set()
        self._pending: asyncio.Future[list[Any]] | None = None
        self._commits: dict[TP, int] = {}
        self._reported: set[int] = set()
        self._closed = False
        self._client: Any = None

    def _log(self, text: str) -> None:
        if self._verbose:
            sys.stderr.write(f"kafka: {text}\n")

    # -- starting -------------------------------------------------------------------------

    def start(self) -> None:
        """Blocking setup (run in a thread): ends, positions, assign or subscribe."""
        if not self._follow:
            self._ends = fetch_ends(self._config, self._partitions, self._timeout)
            for tp, end in sorted(self._ends.items()):
                self._log(f"{_name(tp)} ends at offset {end} for this run")
        if self._admin is not None:
            self._topic_ids = topic_ids(self._admin, self._topics, self._timeout)
        config = {**self._config, "error_cb": self._on_error}
        if self._group_mode:
            # A group without a committed position starts where --offset says (default: end);
            # --offset N and --since are applied on assignment instead.
            config["auto.offset.reset"] = "earliest" if self._offset == "start" else "latest"
        self._client = Consumer(config)
        if self._group_mode:
            self._client.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_lose)
        else:
            starts = self._start_positions(self._partitions)
            self._assigned = set(self._partitions)
            self._client.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in starts])
            self._finish_empty(self._partitions, starts)

    def _start_positions(self, partitions: Sequence[TP]) -> dict[TP, int]:
        offset = self._offset
        if self._since is not None:
            starts = offsets_for_time(
                self._client, partitions, self._since, self._timeout, self._where
            )
            why = f"since {format_ms(self._since)}"
        elif offset == "start":
            marks = watermarks(self._client, partitions, self._timeout)
            starts, why = {tp: marks[tp][0] for tp in partitions}, "start"
        elif isinstance(offset, int) and offset < 0:
            starts, why = self._last_n_starts(partitions, -offset), f"the last {-offset}"
        elif isinstance(offset, int):
            starts, why = dict.fromkeys(partitions, offset), f"offset {offset}"
        else:
            ends = self._ends
            if ends is None:
                ends = fetch_ends(self._config, partitions, self._timeout)
            starts, why = {tp: ends[tp] for tp in partitions}, "end"
        for tp in partitions:
            self._log(f"{_name(tp)} starts at offset {starts[tp]} ({why})")
        return starts

    def _last_n_starts(self, partitions: Sequence[TP], n: int) -> dict[TP, int]:
        """``--offset -N``: N before each partition's end, not below its first offset.

        The end comes from a fetch (``fetch_ends``), not ListOffsets: tansu's high watermark
        can be a whole batch short (positions), which would give fewer than N."""
        ends = self._ends
        if ends is None or any(tp not in ends for tp in partitions):
            ends = fetch_ends(self._config, partitions, self._timeout)
        marks = watermarks(self._client, partitions, self._timeout)
        return {tp: max(marks[tp][0], ends[tp] - n) for tp in partitions}

    def _finish_empty(self, partitions: Sequence[TP], starts: dict[TP, int]) -> None:
        """With --no-follow, a partition starting at or past its end has nothing to give."""
        if self._ends is None:
            return
        for tp in partitions:
            if self._ends[tp] == 0 or starts[tp] >= self._ends[tp]:
                self._finish(tp)

    def _on_assign(self, client: Any, assigned: list[Any]) -> None:
        """Group callback: remember what this member owns; apply --offset N/--since once."""
        tps = [(tp.topic, tp.partition) for tp in assigned]
        self._assigned = set(tps)
        fresh = [tp for tp in tps if tp not in self._positioned]
        self._positioned.update(fresh)
        explicit = isinstance(self._offset, int) or self._since is not None
        if fresh and explicit:
            starts = self._start_positions(fresh)
            for tp in assigned:
                position = starts.get((tp.topic, tp.partition))
                if position is not None:
                    tp.offset = position
            client.assign(assigned)
        elif fresh:
            self._log(f"assigned {', '.join(_name(tp) for tp in fresh)} (group position)")
        if self._ends is not None:
            for tp in tps:
                if self._ends.get(tp, 0) == 0:
                    self._finish(tp)

    def _on_lose(self, client: Any, revoked: list[Any]) -> None:
        """Group callback: partitions taken away. Taking all of them is the first half of a
        rebalance: the member owns nothing only until the assignment that follows, and must
        not end in between (``_all_done`` on an empty set) while its partitions are unread."""
        if self._assigned is not None:
            self._assigned.difference_update((tp.topic, tp.partition) for tp in revoked)
            if not self._assigned:
                self._assigned = None

    def _finish(self, tp: TP) -> None:
        if tp in self._done:
            return
        self._done.add(tp)
        self._client.pause([TopicPartition(*tp)])

    def _on_error(self, error: Any) -> None:
        """librdkafka's client-level errors (broker down, ...); called inside consume()."""
        code = error.code()
        if code in _OUTAGE:
            self._suspect = True
        if error.fatal():
            self._fatal = f"Kafka consumer failed: {describe_kafka_error(error)}"
        elif code not in self._reported:
            self._reported.add(code)
            self._log(f"{describe_kafka_error(error)} (retrying)")
