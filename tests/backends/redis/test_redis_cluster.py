"""Redis Cluster (3 masters, private): detection, slot routing of shards, groups across nodes."""

from __future__ import annotations

from streamkit.connect import connect
from streamkit.message import Message
from tests.backends.redis.helpers import drain, run, take
from tests.servers.redis_server import RedisCluster


def test_cluster_detected_and_shards_spread_over_nodes(
    redis_cluster: RedisCluster, unique_key: str
) -> None:
    items = [Message(unique_key, i % 6, 0, 0, b"%d" % i) for i in range(600)]

    async def main() -> tuple[bool, list[Message]]:
        # one seed is enough: the rest of the cluster is learnt from CLUSTER SLOTS
        seed = redis_cluster.nodes[1]
        async with connect(f"redis://{seed.host}:{seed.port}") as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many(items)
            await producer.close()
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            return streamer.cluster, await drain(consumer)  # type: ignore[attr-defined]

    cluster, got = run(main())
    assert cluster is True
    by_shard: dict[int, list[bytes]] = {}
    for message in got:
        by_shard.setdefault(message.shard_id, []).append(message.payload)
    expected: dict[int, list[bytes]] = {}
    for item in items:
        expected.setdefault(item.shard_id, []).append(item.payload)
    assert by_shard == expected
    holders = [
        node for node in redis_cluster.nodes
        if any(node.cli("EXISTS", f"{unique_key}:{s}").strip() == "1" for s in range(1, 6))
    ]  # fmt: skip
    assert len(holders) >= 2  # the shards really live on different nodes


def test_cluster_group_consumer_follows_and_acks(
    redis_cluster: RedisCluster, unique_key: str
) -> None:
    async def main() -> list[Message]:
        async with connect(redis_cluster.url, settings={"scan_interval": "0.2"}) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many([Message(unique_key, s, 0, 0, b"first") for s in range(4)])
            await producer.flush()
            consumer = await streamer.consumer(unique_key, mode="resumable", group="g")
            await producer.send_many([Message(unique_key, s, 0, 0, b"x%d" % s) for s in range(4)])
            await producer.close()
            got = await take(consumer, 4)
            await consumer.commit(got)
            return got

    got = run(main())
    assert sorted(m.payload for m in got) == [b"x0", b"x1", b"x2", b"x3"]
    total = answered = 0
    for s in range(4):
        key = unique_key if s == 0 else f"{unique_key}:{s}"
        for node in redis_cluster.nodes:
            reply = node.cli("XPENDING", key, "g").split()
            if reply and reply[0].isdigit():
                total += int(reply[0])
                answered += 1
    assert answered == 4 and total == 0
