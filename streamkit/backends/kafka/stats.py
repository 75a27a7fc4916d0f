"""``stat`` for Kafka: partitions, offsets, time range, and every consumer group on the topics.

Reads only: metadata, ListOffsets, a probe consumer that is *assigned* (never subscribed, never
commits, so it joins and creates no group), and the admin group APIs. Topic lookups never
auto-create (``allow.auto.create.topics=false``, and topics are picked from the full list).

Where the end of a partition comes from: ``fetch_ends`` (a Fetch response's high watermark), not
ListOffsets, because the tansu broker answers ListOffsets with the base offset of the last record
batch plus one (DESIGN §4). When the two differ, the report uses the fetch figure and says so in
``notes``. Lag is end minus the group's committed offset; a partition the group never committed
has unknown lag (``None``), as kafka-consumer-groups shows ``-``. Time range: the timestamps of
the first and last message of each partition, read with the probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer as RdConsumer
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from streamkit.backends.base import ConnectOptions
from streamkit.backends.kafka.config import (
    CONSUMER_DEFAULTS,
    base_config,
    config_error,
    describe_kafka_error,
    kafka_logger,
)
from streamkit.backends.kafka.positions import TP, fetch_ends, take, watermarks
from streamkit.errors import ConnectError
from streamkit.message import now_ms
from streamkit.stats import GroupShardStat, GroupStat, ShardStat, StatReport, StreamStat, missing
from streamkit.uri import StreamUri

__all__ = ["KafkaStatSource", "open_stat_source"]

_PROBE_GROUP = "streamkit-stat-probe"
"""Only so librdkafka accepts the probe; assign() without commits never registers it."""


class KafkaStatSource:
    def __init__(self, uri: StreamUri, options: ConnectOptions) -> None:
        self.uri = uri
        self.where = uri.redacted()
        self.timeout = options.connect_timeout
        config = base_config(uri, options.settings)
        config["logger"] = kafka_logger(options.verbose)
        config["allow.auto.create.topics"] = False
        self.config = config
        try:
            self.admin = AdminClient(config)
        except (KafkaException, TypeError, ValueError) as exc:
            text = describe_kafka_error(exc.args[0]) if isinstance(exc, KafkaException) else exc
            raise config_error(str(text), options.settings) from None

    async def collect(self) -> StatReport:
        return await asyncio.to_thread(self._collect)

    async def close(self) -> None:
        return None  # the admin client holds no state worth flushing; it closes when dropped

    def _call(self, what: str, future: Any) -> Any:
        try:
            return future.result(timeout=self.timeout)
        except KafkaException as exc:
            raise ConnectError(
                f"{what} failed: {describe_kafka_error(exc.args[0])}", self.where
            ) from None

    def _collect(self) -> StatReport:
        taken = now_ms()
        try:
            metadata = self.admin.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise ConnectError(
                f"no Kafka broker answered at {self.config['bootstrap.servers']} within "
                f"{self.timeout:g}s ({describe_kafka_error(exc.args[0])})",
                self.where,
            ) from None
        existing = {
            name: sorted(info.partitions)
            for name, info in metadata.topics.items()
            if not name.startswith("__") and info.error is None
        }
        topics = list(self.uri.keys) or sorted(existing)
        missing(topics, list(existing), "no Kafka topic by that name", self.where)
        partitions: list[TP] = [(t, p) for t in topics for p in existing[t]]
        notes: list[str] = []
        shards = self._shards(partitions, notes)
        groups = self._groups(topics, shards, notes)
        streams = tuple(
            StreamStat(
                topic,
                tuple(shards[tp] for tp in partitions if tp[0] == topic),
                tuple(groups.get(topic, ())),
            )
            for topic in topics
        )
        return StatReport(self.where, "kafka", taken, streams, notes=tuple(notes))

    # ----- partitions -----------------------------------------------------------------------

    def _shards(self, partitions: list[TP], notes: list[str]) -> dict[TP, ShardStat]:
        ends = fetch_ends(self.config, partitions, self.timeout)
        probe = RdConsumer(
            {
                **CONSUMER_DEFAULTS,
                **self.config,
                "group.id": _PROBE_GROUP,
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 10,
            }
        )
        try:
            marks = watermarks(probe, partitions, self.timeout)
            for tp, (_, high) in marks.items():
                if high != ends[tp]:
                    notes.append(
                        f"{tp[0]}[{tp[1]}]: the broker's ListOffsets high watermark is {high}, "
                        f"a fetch says the end is {ends[tp]}; the figures use {ends[tp]}"
                    )
            filled = [tp for tp in partitions if ends[tp] > marks[tp][0]]
            first = self._timestamps(probe, {tp: marks[tp][0] for tp in filled})
            last = self._timestamps(probe, {tp: ends[tp] - 1 for tp in filled})
        finally:
            probe.close()
        out: dict[TP, ShardStat] = {}
        for tp in partitions:
            low, end = marks[tp][0], ends[tp]
            held = end > low
            out[tp] = ShardStat(
                shard=tp[1],
                messages=max(0, end - low),
                first_seq=low if held else None,
                last_seq=end - 1 if held else None,
                first_ts=first.get(tp),
                last_ts=last.get(tp),
                next_seq=end,
            )
        return out

    def _timestamps(self, probe: Any, at: dict[TP, int]) -> dict[TP, int]:
        """The timestamp of the message at each given offset (missing if it cannot be read)."""
        if not at:
            return {}
        probe.assign([TopicPartition(t, p, offset) for (t, p), offset in at.items()])
        found: dict[TP, int] = {}
        pending = set(at)
        deadline = time.monotonic() + self.timeout
        while pending and time.monotonic() < deadline:
            for message in take(probe, 1000, 0.2):
                tp = (message.topic(), message.partition())
                if tp not in pending:
                    continue
                if message.error() is not None:
                    pending.discard(tp)  # end of partition (trimmed meanwhile): leave it unknown
                elif message.offset() >= at[tp]:
                    kind, ts = message.timestamp()
                    if kind != 0 and ts >= 0:  # 0 = TIMESTAMP_NOT_AVAILABLE
                        found[tp] = ts
                    pending.discard(tp)
        probe.unassign()
        return found

    # ----- groups ---------------------------------------------------------------------------

    def _groups(
        self, topics: Sequence[str], shards: dict[TP, ShardStat], notes: list[str]
    ) -> dict[str, list[GroupStat]]:
        listing = self._call("listing consumer groups", self.admin.list_consumer_groups())
        names = sorted(g.group_id for g in listing.valid)
        if not names:
            return {}
        described: dict[str, Any] = {}
        for name, future in self.admin.describe_consumer_groups(names).items():
            described[name] = self._call(f"describing consumer group {name!r}", future)
        out: dict[str, list[GroupStat]] = {}
        wanted = set(topics)
        for name in names:
            (future,) = self.admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(name)]
            ).values()
            answer = self._call(f"offsets of consumer group {name!r}", future)
            committed: dict[TP, int] = {
                (tp.topic, tp.partition): tp.offset
                for tp in answer.topic_partitions or ()
                if tp.topic in wanted and tp.error is None
            }
            description = described[name]
            members = list(description.members or ())
            assigned: dict[str, set[str]] = {}
            for m in members:
                for tp in m.assignment.topic_partitions if m.assignment else ():
                    assigned.setdefault(tp.topic, set()).add(_member_name(m))
            state = str(description.state).rsplit(".", 1)[-1]
            for topic in topics:
                mine = {tp: c for tp, c in committed.items() if tp[0] == topic}
                if not mine and topic not in assigned:
                    continue
                out.setdefault(topic, []).append(
                    _group(name, topic, state, mine, assigned, members, shards, notes)
                )
        return out


def _member_name(member: Any) -> str:
    return f"{member.client_id}@{member.host}" if member.host else str(member.client_id)


def _group(
    name: str,
    topic: str,
    state: str,
    committed: dict[TP, int],
    assigned: dict[str, set[str]],
    members: list[Any],
    shards: dict[TP, ShardStat],
    notes: list[str],
) -> GroupStat:
    per_shard = []
    for tp, shard in sorted(shards.items()):
        if tp[0] != topic:
            continue
        offset = committed.get(tp, -1)
        end = shard.next_seq if shard.next_seq is not None else 0
        known = offset >= 0
        per_shard.append(
            GroupShardStat(
                shard=tp[1],
                committed=offset if known else None,
                lag=max(0, end - offset) if known else None,
            )
        )
    lags = [s.lag for s in per_shard if s.lag is not None]
    names = tuple(sorted(assigned.get(topic, set())))
    consumers: int | None = len(names)
    if state == "STABLE" and not members:
        consumers = None
        notes.append(
            f"group {name}: the broker says STABLE but reports no members (tansu does this); "
            "member count unknown"
        )
    return GroupStat(
        name=name,
        consumers=consumers,
        members=names if consumers is not None else None,
        lag=sum(lags) if lags else None,
        state=state,
        shards=tuple(per_shard),
    )


async def open_stat_source(uri: StreamUri, options: ConnectOptions) -> KafkaStatSource:
    return KafkaStatSource(uri, options)
