"""Redis consumer groups: resumable and load-balanced modes, acks, claims, lost groups."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.connect import connect
from streamkit.message import Message
from tests.backends.redis.helpers import drain, payloads, run, take
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.usefixtures("redis_codec")  # every test with both Redis codecs


def pending_count(server: RedisServer, key: str, group: str) -> int:
    return int(server.cli("XPENDING", key, group).split()[0])


def pending_owners(server: RedisServer, key: str, group: str) -> list[str]:
    words = server.cli("XPENDING", key, group, "-", "+", "100").split()
    return words[1::4]


async def _produce(url: str, key: str, items: list[bytes]) -> None:
    async with connect(url) as streamer:
        producer = await streamer.producer(key)
        await producer.send_many(items)
        await producer.close()


def test_group_consumer_started_before_producer(redis_server: RedisServer, unique_key: str) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            consumer = await streamer.consumer(unique_key, mode="resumable", group="g")
            await _produce(redis_server.url, unique_key, [b"a", b"b", b"c"])
            return await take(consumer, 3)

    assert payloads(run(main())) == [b"a", b"b", b"c"]


def test_resumable_continues_where_acks_stopped(redis_server: RedisServer, unique_key: str) -> None:
    items = [b"%d" % i for i in range(10)]
    run(_produce(redis_server.url, unique_key, items))

    async def first_run() -> None:
        async with connect(redis_server.url) as streamer:
            consumer = await streamer.consumer(
                unique_key, mode="resumable", group="g", offset="start"
            )
            got = await take(consumer, 5)
            assert payloads(got) == items[:5]
            await consumer.commit(got[:3])  # 3 and 4 were read but never written downstream

    async def second_run() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            consumer = await streamer.consumer(
                unique_key, mode="resumable", group="g", follow=False
            )
            got = await drain(consumer)
            await consumer.commit(got)
            return got

    run(first_run())
    assert pending_count(redis_server, unique_key, "g") == 2
    assert payloads(run(second_run())) == items[3:]
    assert pending_count(redis_server, unique_key, "g") == 0
    # a third run finds nothing left: acked entries are never delivered again
    assert run(second_run()) == []


def test_load_balanced_members_share_the_stream(redis_server: RedisServer, unique_key: str) -> None:
    items = [b"%d" % i for i in range(200)]

    async def main() -> tuple[list[Message], list[Message]]:
        async with connect(redis_server.url, settings={"page": "10"}) as streamer:
            alpha = await streamer.consumer(
                unique_key, mode="load-balanced", group="lb", consumer_name="alpha", offset="start"
            )
            beta = await streamer.consumer(
                unique_key, mode="load-balanced", group="lb", consumer_name="beta", offset="start"
            )
            await _produce(redis_server.url, unique_key, items)
            got_a: list[Message] = []
            got_b: list[Message] = []
            while len(got_a) + len(got_b) < len(items):
                for consumer, sink in ((alpha, got_a), (beta, got_b)):
                    try:
                        batch = await asyncio.wait_for(consumer.next_batch(10), 0.3)
                    except asyncio.TimeoutError:
                        continue
                    sink.extend(batch)
                    await consumer.commit(batch)
            return got_a, got_b

    got_a, got_b = run(main())
    assert got_a and got_b
    assert sorted(payloads(got_a + got_b), key=int) == items
    assert not set(payloads(got_a)) & set(payloads(got_b))
    assert pending_count(redis_server, unique_key, "lb") == 0


def test_dead_member_entries_are_claimed_under_own_name(
    redis_server: RedisServer, unique_key: str
) -> None:
    items = [b"%d" % i for i in range(10)]
    run(_produce(redis_server.url, unique_key, items))

    async def alpha_dies() -> None:
        async with connect(redis_server.url) as streamer:
            alpha = await streamer.consumer(
                unique_key, mode="load-balanced", group="lb", consumer_name="alpha", offset="start"
            )
            assert payloads(await take(alpha, 10)) == items  # never acked

    async def beta_takes_over() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            beta = await streamer.consumer(
                unique_key, mode="load-balanced", group="lb", consumer_name="beta", claim_idle=0.3
            )
            got = await take(beta, 10)
            assert pending_owners(redis_server, unique_key, "lb") == ["beta"] * 10
            await beta.commit(got)
            return got

    run(alpha_dies())
    assert pending_owners(redis_server, unique_key, "lb") == ["alpha"] * 10
    assert payloads(run(beta_takes_over())) == items
    assert pending_count(redis_server, unique_key, "lb") == 0


def test_seek_on_existing_group_keeps_acking(redis_server: RedisServer, unique_key: str) -> None:
    items = [b"%d" % i for i in range(10)]
    run(_produce(redis_server.url, unique_key, items))

    async def main() -> list[Message]:
        async with connect(redis_server.url) as streamer:
            first = await streamer.consumer(
                unique_key, mode="resumable", group="g", offset="start", follow=False
            )
            everything = await drain(first)
            await first.commit(everything)
            await first.close()
            again = await streamer.consumer(
                unique_key, mode="resumable", group="g", offset=everything[6].seq, follow=False
            )
            got = await drain(again)
            assert pending_count(redis_server, unique_key, "g") == 4
            await again.commit(got)
            return got

    assert payloads(run(main())) == items[6:]
    assert pending_count(redis_server, unique_key, "g") == 0


def test_lost_group_is_recreated(
    redis_server: RedisServer, unique_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def main() -> list[Message]:
        async with connect(redis_server.url, settings={"block_ms": "200"}) as streamer:
            consumer = await streamer.consumer(unique_key, mode="resumable", group="g")
            await _produce(redis_server.url, unique_key, [b"before"])
            got = await take(consumer, 1)
            await consumer.commit(got)
            redis_server.cli("DEL", unique_key)  # the stream and its group are gone
            await asyncio.sleep(0.5)
            await _produce(redis_server.url, unique_key, [b"after1", b"after2"])
            return got + await take(consumer, 2)

    assert payloads(run(main())) == [b"before", b"after1", b"after2"]
    err = capsys.readouterr().err
    assert err.count("consumer group 'g' is gone") == 1
