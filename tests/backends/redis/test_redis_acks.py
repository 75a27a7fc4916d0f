"""XADD acks: ``skip_replies`` (pure reference and C) and ``RedisConnection.read_acks`` against
the real private server, with both codecs (the pure path reads every reply with hiredis)."""

from __future__ import annotations

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.backends.redis import resp as pure
from streamkit.backends.redis.resp import DONE, MORE, OTHER
from streamkit.backends.redis.wire import RedisConfig, RedisConnection, encode_command
from streamkit.uri import Node
from tests.backends.redis.conftest import compiled
from tests.backends.redis.helpers import run
from tests.servers.redis_server import RedisServer

ACK = b"$15\r\n1700000000000-0\r\n"


@pytest.mark.parametrize("impl", ["pure", "C"])
@pytest.mark.parametrize(
    "buf,pos,count,expected",
    [
        (ACK * 3, 0, 3, (len(ACK) * 3, 3, DONE)),
        (ACK * 3, 0, 2, (len(ACK) * 2, 2, DONE)),
        (ACK * 3, len(ACK), 5, (len(ACK) * 3, 2, MORE)),
        (ACK + ACK[:7], 0, 5, (len(ACK), 1, MORE)),  # within the bulk
        (ACK + b"$15", 0, 5, (len(ACK), 1, MORE)),  # within the header
        (ACK + b"-ERR no\r\n" + ACK, 0, 5, (len(ACK), 1, OTHER)),
        (ACK + b"-ERR", 0, 5, (len(ACK), 1, OTHER)),
        (b"+OK\r\n:12\r\n" + ACK, 0, 5, (5 + 5 + len(ACK), 3, MORE)),
        (b"$-1\r\n", 0, 1, (0, 0, OTHER)),  # null: hiredis's
        (b"*2\r\n" + ACK + ACK, 0, 3, (0, 0, OTHER)),
        (b"$3\r\nabcd\r\n", 0, 1, (0, 0, OTHER)),  # a length that lies
        (b"$" + b"1" * 19 + b"\r\n", 0, 1, (0, 0, OTHER)),
        (b"$" + b"1" * 40, 0, 1, (0, 0, OTHER)),  # a header line that never ends
        (b"$0\r\n\r\n", 0, 1, (6, 1, DONE)),
        (b"", 0, 0, (0, 0, DONE)),
        (ACK, 99, 1, (99, 0, MORE)),
    ],
)
def test_skip_replies(
    impl: str, buf: bytes, pos: int, count: int, expected: tuple[int, ...]
) -> None:
    skip = pure.skip_replies if impl == "pure" else compiled().skip_replies
    assert skip(buf, pos, count) == expected


reply = st.one_of(
    st.builds(lambda b: b"$%d\r\n%s\r\n" % (len(b), b), st.binary(max_size=40)),
    st.sampled_from([b"+OK\r\n", b":1\r\n", b"-ERR x\r\n", b"$-1\r\n", b"*1\r\n:1\r\n"]),
    st.binary(max_size=6),  # junk
)


@settings(max_examples=500, deadline=None)
@given(st.lists(reply, max_size=12), st.integers(0, 12), st.integers(0, 40))
def test_skip_replies_differential(replies: list[bytes], count: int, cut: int) -> None:
    buf = b"".join(replies)
    buf = buf[: max(0, len(buf) - cut)]
    expected = pure.skip_replies(buf, 0, count)
    assert compiled().skip_replies(buf, 0, count) == expected
    pos, skipped, _why = expected
    # what was skipped is exactly ``skipped`` whole replies as hiredis reads them
    reader = hiredis.Reader()
    reader.feed(buf[:pos])
    got = []
    while (item := reader.gets()) is not False:
        got.append(item)
    assert len(got) == skipped and not reader.has_data()


def connect_node(server: RedisServer) -> Node:
    return Node("127.0.0.1", server.port)


@pytest.mark.usefixtures("redis_codec")
@pytest.mark.parametrize("n", [10, 120_000])  # 120k acks: several reads, cut anywhere
def test_read_acks_finds_the_errors(redis_server: RedisServer, unique_key: str, n: int) -> None:
    async def main() -> tuple[list[tuple[int, str]], list[object]]:
        connection = await RedisConnection.open(connect_node(redis_server), RedisConfig(), "t")
        try:
            await connection.call("SET", f"{unique_key}:s", "x")
            commands = [
                encode_command("XADD", unique_key, "*", "msg", b"p%d" % i) for i in range(n)
            ]
            commands[3] = encode_command("XADD", f"{unique_key}:s", "*", "msg", "v")  # WRONGTYPE
            commands[5] = encode_command("INCR", f"{unique_key}:n")  # :1
            commands[6] = encode_command("GET", f"{unique_key}:none")  # null
            commands[-1] = encode_command("XADD", unique_key, "1-1", "msg", "old")  # id too small
            connection.write(b"".join(commands))
            await connection.drain()
            failed = await connection.read_acks(n)
            # the connection is still in step: the next reply is the next command's
            after = await connection.pipeline([("PING",), ("XLEN", unique_key)])
            return [(i, str(e).split(" ")[0]) for i, e in failed], after
        finally:
            await connection.close()

    failed, after = run(main())
    assert failed == [(3, "WRONGTYPE"), (n - 1, "ERR")]
    assert after == [b"PONG", n - 4]
