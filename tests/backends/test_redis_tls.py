"""rediss:// against a private TLS server whose certificate the fixture made with openssl."""

from __future__ import annotations

from streamkit.connect import connect
from tests.backends.redis_helpers import drain, one_line_connect_error, payloads, run
from tests.servers.redis_server import RedisServer


def test_tls_round_trip_with_password(redis_tls: RedisServer, unique_key: str) -> None:
    ca = str(redis_tls.directory / "ca.crt")

    async def main() -> list[bytes]:
        async with connect(redis_tls.url, settings={"tls_ca": ca}) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send_many([b"secret-1", b"secret-2"])
            await producer.close()
            consumer = await streamer.consumer(unique_key, offset="start", follow=False)
            return payloads(await drain(consumer))

    assert run(main()) == [b"secret-1", b"secret-2"]
    assert "secret-2" in redis_tls.cli("XRANGE", unique_key, "-", "+")


def test_untrusted_certificate_and_opt_out(redis_tls: RedisServer, unique_key: str) -> None:
    error = one_line_connect_error(redis_tls.url)
    assert "not trusted" in str(error) and "tls_ca" in str(error)
    assert "tls-secret" not in str(error)

    async def insecure() -> int:
        async with connect(redis_tls.url, settings={"tls_verify": "false"}) as streamer:
            producer = await streamer.producer(unique_key)
            await producer.send(b"x")
            await producer.close()
            return producer.acknowledged  # type: ignore[attr-defined,no-any-return]

    assert run(insecure()) == 1


def test_missing_password_and_plain_to_tls_port(redis_tls: RedisServer) -> None:
    ca = str(redis_tls.directory / "ca.crt")
    host = f"{redis_tls.host}:{redis_tls.port}"
    error = one_line_connect_error(f"rediss://{host}", tls_ca=ca)
    assert "requires a password" in str(error)
    error = one_line_connect_error(f"redis://{host}")
    assert "rediss://" in str(error)
