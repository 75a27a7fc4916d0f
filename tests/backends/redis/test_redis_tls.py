"""rediss:// against a private TLS server whose certificate the fixture made with openssl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streamkit.connect import connect
from tests.backends.redis.helpers import drain, one_line_connect_error, payloads, run
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


def test_tls_files_that_are_missing_or_unusable_are_one_usage_line(
    redis_tls: RedisServer, tmp_path: Path
) -> None:
    """-X tls_ca/tls_cert/tls_key naming a bad file: exit 2 with the setting and the file."""
    missing = str(tmp_path / "nonexistent.pem")
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    url = redis_tls.stream_url("k")
    cases = [
        (["-X", f"tls_ca={missing}"], f"-X tls_ca={missing}: no such file"),
        (["-X", f"tls_cert={missing}"], f"-X tls_cert={missing}: no such file"),
        (["-X", f"redis.tls_key={missing}"], f"-X tls_key={missing}: no such file"),
        (["-X", f"tls_ca={not_pem}"], f"-X tls_ca={not_pem}: not a PEM CA certificate"),
        (["-X", f"tls_cert={not_pem}"], f"-X tls_cert={not_pem}: not a PEM certificate"),
        (["-X", f"tls_ca={tmp_path}"], f"-X tls_ca={tmp_path}: not a file"),
    ]
    for args, words in cases:
        done = subprocess.run(
            [sys.executable, "-m", "streamkit", "relay", "--input", url, *args, "-e"],
            capture_output=True, timeout=30,
        )  # fmt: skip
        err = done.stderr.decode().strip()
        assert done.returncode == 2, err
        assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
