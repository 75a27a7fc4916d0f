"""``streamkit stat redis://``: lengths, ids, groups, pending and lag against a private server."""

from __future__ import annotations

import asyncio

from streamkit.backends.base import ConsumerOptions
from streamkit.connect import connect
from tests.cli.test_stat import one_line_error, stat_json, streamkit
from tests.servers.redis_server import RedisCluster, RedisServer


def add(server: RedisServer, key: str, n: int, ms: int = 1_700_000_000_000) -> list[str]:
    return [server.cli("XADD", key, f"{ms + i}-0", "msg", f"m{i}").strip() for i in range(n)]


def group_of(report: dict, key: str, name: str) -> dict:  # type: ignore[type-arg]
    (stream,) = [s for s in report["streams"] if s["key"] == key]
    (group,) = [g for g in stream["groups"] if g["name"] == name]
    return group  # type: ignore[no-any-return]


def test_lengths_ids_and_times_per_shard(redis_server: RedisServer, unique_key: str) -> None:
    ids0 = add(redis_server, unique_key, 12)
    ids3 = add(redis_server, f"{unique_key}:3", 4, ms=1_700_000_100_000)
    report = stat_json(redis_server.stream_url(unique_key))
    (stream,) = report["streams"]
    assert stream["key"] == unique_key and stream["messages"] == 16
    s0, s3 = stream["shards"]
    assert (s0["shard"], s0["messages"]) == (0, 12)
    assert (s0["first_id"], s0["last_id"]) == (ids0[0], ids0[-1])
    assert (s0["first_ts"], s0["last_ts"]) == (1_700_000_000_000, 1_700_000_000_011)
    assert (s3["shard"], s3["messages"]) == (3, 4)
    assert (s3["first_id"], s3["last_id"]) == (ids3[0], ids3[-1])
    assert stream["groups"] == []


def test_lag_is_what_the_group_has_left(redis_server: RedisServer, unique_key: str) -> None:
    n, m, acked = 40, 15, 6
    ids = add(redis_server, unique_key, n)
    redis_server.cli("XGROUP", "CREATE", unique_key, "G", "0")
    redis_server.cli("XREADGROUP", "GROUP", "G", "alice", "COUNT", str(m), "STREAMS", unique_key,
                     ">")  # fmt: skip
    redis_server.cli("XACK", unique_key, "G", *ids[:acked])
    redis_server.cli("XGROUP", "CREATE", unique_key, "fresh", "0")
    report = stat_json(redis_server.stream_url(unique_key))
    g = group_of(report, unique_key, "G")
    assert (g["consumers"], g["members"]) == (1, ["alice"])
    assert (g["pending"], g["lag"]) == (m - acked, n - m)
    assert g["shards"] == [
        {"shard": 0, "committed": None, "last_delivered": ids[m - 1], "pending": m - acked,
         "lag": n - m}
    ]  # fmt: skip
    assert group_of(report, unique_key, "fresh")["lag"] == n
    # What the group has left is exactly what a reader in it gets next.
    left = redis_server.cli("XREADGROUP", "GROUP", "G", "bob", "STREAMS", unique_key, ">")
    assert sum(1 for w in left.split() if w in ids) == n - m


def test_lag_across_shards_from_a_streamkit_group_consumer(
    redis_server: RedisServer, unique_key: str
) -> None:
    add(redis_server, unique_key, 10)
    add(redis_server, f"{unique_key}:1", 10)

    async def consume(m: int) -> None:
        async with connect(redis_server.url, settings={"page": "4"}) as streamer:
            options = ConsumerOptions(mode="resumable", group="work", offset="start")
            consumer = await streamer.consumer([unique_key], options)
            got = []
            while len(got) < m:
                got.extend(await asyncio.wait_for(consumer.next_batch(m - len(got)), 10))
            await consumer.commit(got)
            await consumer.close()

    asyncio.run(consume(4))
    report = stat_json(redis_server.stream_url(unique_key))
    g = group_of(report, unique_key, "work")
    delivered = 20 - g["lag"]
    assert [s["shard"] for s in g["shards"]] == [0, 1]
    assert sum(s["lag"] for s in g["shards"]) == g["lag"]
    # the consumer read pages of 4 per shard; what it did not commit is pending, not lost
    assert delivered >= 4 and g["pending"] == delivered - 4


def test_lag_is_counted_when_the_server_cannot_tell(
    redis_server: RedisServer, unique_key: str
) -> None:
    ids = add(redis_server, unique_key, 20)
    redis_server.cli("XGROUP", "CREATE", unique_key, "G", "0")
    redis_server.cli("XREADGROUP", "GROUP", "G", "c", "COUNT", "5", "STREAMS", unique_key, ">")
    redis_server.cli("XDEL", unique_key, ids[10])  # a tombstone ahead of the group: lag is nil
    report = stat_json(redis_server.stream_url(unique_key))
    assert group_of(report, unique_key, "G")["lag"] == 14
    assert any("counted by XRANGE" in note for note in report["notes"]), report["notes"]


def test_stat_creates_nothing_and_a_missing_key_is_one_line(
    redis_server: RedisServer, unique_key: str
) -> None:
    add(redis_server, unique_key, 3)
    before = redis_server.cli("DBSIZE").strip()
    groups_before = redis_server.cli("XINFO", "GROUPS", unique_key)
    one_line_error(
        streamkit("stat", redis_server.stream_url(f"{unique_key},{unique_key}-nope")),
        1, "no such stream", f"'{unique_key}-nope'",
    )  # fmt: skip
    assert streamkit("stat", redis_server.stream_url(unique_key)).returncode == 0
    assert redis_server.cli("DBSIZE").strip() == before
    assert redis_server.cli("EXISTS", f"{unique_key}-nope").strip() == "0"
    assert redis_server.cli("XINFO", "GROUPS", unique_key) == groups_before


def test_all_streams_without_keys_and_the_table(redis_server: RedisServer, unique_key: str) -> None:
    add(redis_server, unique_key, 2)
    redis_server.cli("SET", f"{unique_key}-plain", "x")  # not a stream: left out
    done = streamkit("stat", redis_server.url)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert f"stream {unique_key}: 2 messages" in text
    assert f"{unique_key}-plain" not in text
    redis_server.cli("SET", f"{unique_key}-str", "x")
    one_line_error(
        streamkit("stat", redis_server.stream_url(f"{unique_key}-str")), 1, "not a stream"
    )


def test_a_cluster_is_described_across_its_masters(
    redis_cluster: RedisCluster, unique_key: str
) -> None:
    from streamkit.message import Message

    items = [Message(unique_key, i % 6, 0, 0, b"%d" % i) for i in range(60)]

    async def write() -> None:
        async with connect(redis_cluster.url) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many(items)
            await producer.close()

    asyncio.run(write())
    seed = redis_cluster.nodes[2]
    report = stat_json(f"redis://{seed.host}:{seed.port}/{unique_key}")
    (stream,) = report["streams"]
    assert [(s["shard"], s["messages"]) for s in stream["shards"]] == [(i, 10) for i in range(6)]


def test_tls_and_a_password_never_printed(redis_tls: RedisServer, unique_key: str) -> None:
    add(redis_tls, unique_key, 3)
    ca = str(redis_tls.directory / "ca.crt")
    report = stat_json(redis_tls.stream_url(unique_key), "-X", f"tls_ca={ca}")
    assert report["streams"][0]["messages"] == 3
    assert report["uri"].startswith("rediss://:***@")
    table = streamkit("stat", redis_tls.stream_url(unique_key), "-X", f"tls_ca={ca}")
    assert table.returncode == 0
    assert redis_tls.password is not None and redis_tls.password.encode() not in table.stdout
