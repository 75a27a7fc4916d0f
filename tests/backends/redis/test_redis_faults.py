"""Faults against real servers: restarts mid-stream, bad credentials, TLS mismatch, dead hosts."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.connect import connect
from streamkit.message import Message
from tests.backends.redis.helpers import one_line_connect_error, payloads, run, take
from tests.servers.redis_server import RedisServer, free_port


def test_wrong_password(redis_server: RedisServer, unique_key: str) -> None:
    redis_server.cli("ACL", "SETUSER", unique_key, "on", ">right-pw", "~*", "&*", "+@all")
    host = f"{redis_server.host}:{redis_server.port}"
    error = one_line_connect_error(f"redis://{unique_key}:wrong-pw@{host}")
    assert "authentication failed" in str(error)
    assert "wrong-pw" not in str(error) and f"{unique_key}:***@" in str(error)

    async def good() -> bytes:
        async with connect(f"redis://{unique_key}:right-pw@{host}/{unique_key}") as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send(b"authenticated")
            await producer.close()
        return b"authenticated"

    run(good())
    assert "authenticated" in redis_server.cli("XRANGE", unique_key, "-", "+")


def test_tls_to_a_plain_port(redis_server: RedisServer) -> None:
    error = one_line_connect_error(f"rediss://{redis_server.host}:{redis_server.port}")
    assert "TLS" in str(error) and "redis://" in str(error)


def test_dead_host() -> None:
    port = free_port()
    error = one_line_connect_error(f"redis://127.0.0.1:{port}/x")
    assert "refused" in str(error) and str(port) in str(error)


def test_realtime_consumer_survives_restart(
    redis_restartable: RedisServer, unique_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = redis_restartable
    first = [b"a%d" % i for i in range(100)]
    second = [b"b%d" % i for i in range(100)]

    async def main() -> list[Message]:
        async with connect(server.url, settings={"block_ms": "500"}) as streamer:
            consumer = await streamer.consumer(unique_key, offset="start")
            async with connect(server.url) as writer_side:
                producer = await writer_side.producer(unique_key)
                await producer.send_many(first)
                await producer.close()
            got = await take(consumer, 100)
            reading = asyncio.ensure_future(take(consumer, 100, timeout=20))
            await asyncio.sleep(0.2)  # the consumer is inside a blocking XREAD now
            await asyncio.to_thread(server.restart, keep_data=True, downtime=0.5)
            async with connect(server.url) as writer_side:
                producer = await writer_side.producer(unique_key)
                await producer.send_many(second)
                await producer.close()
            return got + await reading

    assert payloads(run(main())) == first + second
    err = capsys.readouterr().err
    assert err.count("reconnecting with backoff") == 1


def test_producer_survives_restart(redis_restartable: RedisServer, unique_key: str) -> None:
    server = redis_restartable
    batches = [[b"%d-%d" % (b, i) for i in range(500)] for b in range(20)]

    async def main() -> int:
        async with connect(server.url) as streamer:
            producer = await streamer.producer(unique_key)
            for number, batch in enumerate(batches):
                if number == 10:
                    await asyncio.to_thread(server.restart, keep_data=True, downtime=0.3)
                await producer.send_many(batch)
            await producer.close()
            return producer.resent  # type: ignore[attr-defined,no-any-return]

    resent = run(main())
    stored = server.cli("XRANGE", unique_key, "-", "+").split()
    sent = {p.decode() for batch in batches for p in batch}
    assert sent <= set(stored)  # nothing lost
    length = int(server.cli("XLEN", unique_key))
    assert len(sent) <= length <= len(sent) + resent  # duplicates only where resent (counted)


def test_group_consumer_after_restart_without_data(
    redis_restartable: RedisServer, unique_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = redis_restartable

    async def main() -> list[Message]:
        async with connect(server.url, settings={"block_ms": "300"}) as streamer:
            consumer = await streamer.consumer(unique_key, mode="resumable", group="g")
            got = await take(consumer, 0)
            await asyncio.to_thread(server.restart, keep_data=False)
            reading = asyncio.ensure_future(take(consumer, 3, timeout=20))
            await asyncio.sleep(1.0)
            async with connect(server.url) as writer_side:
                producer = await writer_side.producer(unique_key)
                await producer.send_many([b"x", b"y", b"z"])
                await producer.close()
            got += await reading
            await consumer.commit(got)
            return got

    assert payloads(run(main())) == [b"x", b"y", b"z"]
    err = capsys.readouterr().err
    assert "is gone; recreating it" in err
    assert int(server.cli("XPENDING", unique_key, "g").split()[0]) == 0


def test_group_consumer_survives_restart_keeping_data(
    redis_restartable: RedisServer, unique_key: str
) -> None:
    server = redis_restartable
    first = [b"a%d" % i for i in range(50)]
    second = [b"b%d" % i for i in range(50)]

    async def produce(items: list[bytes]) -> None:
        async with connect(server.url) as writer_side:
            producer = await writer_side.producer(unique_key)
            await producer.send_many(items)
            await producer.close()

    async def main() -> list[Message]:
        async with connect(server.url, settings={"block_ms": "500"}) as streamer:
            consumer = await streamer.consumer(unique_key, mode="resumable", group="g")
            await produce(first)
            got = await take(consumer, 30)
            await consumer.commit(got[:25])  # 5 read but unacked entries stay pending
            wanted = set(first + second)

            async def until_complete() -> list[Message]:
                rest: list[Message] = []
                while not wanted <= {m.payload for m in got + rest}:
                    batch = await consumer.next_batch(1000)
                    rest += batch
                    await consumer.commit(batch)
                return rest

            reading = asyncio.ensure_future(asyncio.wait_for(until_complete(), 20))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(server.restart, keep_data=True, downtime=0.3)
            await produce(second)
            return got + await reading

    got = payloads(run(main()))
    assert set(got) == set(first + second)  # nothing lost
    assert len(got) - len(set(got)) <= 5  # duplicates only among the unacked ones
    assert int(server.cli("XPENDING", unique_key, "g").split()[0]) == 0
