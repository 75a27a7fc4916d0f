"""The shared stat model: memory's ``stats()``/``stat()`` and the library's ``open_stat_source``."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from streamkit.backends.base import ConsumerOptions
from streamkit.backends.memory.streamer import MemoryStreamer, drop_broker
from streamkit.connect import connect
from streamkit.errors import UsageError
from streamkit.stats import NoSuchStream, StatReport, open_stat_source
from streamkit.uri import parse_streamer_uri


def test_memory_stat_is_the_shared_model_with_group_lag() -> None:
    name = f"stats-{uuid.uuid4().hex[:8]}"

    async def main() -> StatReport:
        async with connect(f"memory://{name}") as streamer:
            assert isinstance(streamer, MemoryStreamer)
            producer = await streamer.producer("orders")
            await producer.send_many([b"%d" % i for i in range(10)])
            consumer = await streamer.consumer(
                "orders", ConsumerOptions(offset="start", mode="resumable", group="G")
            )
            batch = await consumer.next_batch(4)
            await consumer.commit(batch[:3])
            topic = streamer.stats("orders")
            report = streamer.stat()
            assert report.stream("orders") == topic.to_stream()
            source = await open_stat_source(parse_streamer_uri(f"memory://{name}/orders"))
            try:
                assert (await source.collect()).streams == report.streams
            finally:
                await source.close()
            with pytest.raises(NoSuchStream, match="no such stream: 'nope'"):
                streamer.stat(["nope"])
            assert streamer.topics() == ["orders"]  # asking created nothing
            await consumer.close()
            return report

    try:
        report = asyncio.run(main())
    finally:
        drop_broker(name)
    stream = report.stream("orders")
    (shard,) = stream.shards
    assert (shard.messages, shard.first_seq, shard.last_seq, shard.next_seq) == (10, 0, 9, 10)
    assert shard.first_ts is not None and shard.last_ts is not None
    assert shard.first_ts <= shard.last_ts
    (group,) = stream.groups
    assert (group.name, group.lag, group.pending, group.state) == ("G", 7, 1, "resumable")
    assert group.shards[0].committed == 3
    data = json.loads(json.dumps(report.to_json()))
    assert data["backend"] == "memory"
    assert data["streams"][0]["groups"][0]["lag"] == 7


def test_a_scheme_without_stored_state_is_refused() -> None:
    async def main() -> None:
        await open_stat_source(parse_streamer_uri("stdio:///x"))

    with pytest.raises(UsageError, match="no stored state"):
        asyncio.run(main())
