"""``streamkit collect`` as a real process, driven by a real HTTP client (aiohttp)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.cli.processes import reaped
from tests.servers.kafka_broker import free_port
from tests.servers.redis_server import RedisServer, _make_certificates

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
NDJSON = {"Content-Type": "application/x-ndjson"}
RAW = {"Content-Type": "application/octet-stream"}


class Collector:
    def __init__(self, proc: subprocess.Popen[bytes], base: str) -> None:
        self.proc = proc
        self.base = base

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode()

    @property
    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@contextmanager
def collector(output: str, *args: str, scheme: str = "http") -> Iterator[Collector]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "collect",
         "--listen", f"127.0.0.1:{port}", "--output", output, *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    with reaped(proc):
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()
        assert f"listening on {scheme}://127.0.0.1:{port}" in first, first
        yield Collector(proc, f"{scheme}://127.0.0.1:{port}")


def run(coro: Any, timeout: float = 60) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


def decode(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "decode", str(path), "--format", "ss-ndjson"],
        capture_output=True, env=ENV, timeout=60, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith(b"{")]
    return [r["header"] for r in rows if "header" in r]


def payloads_in(path: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "relay", "--input", f"file://{path}/",
         "--output", "stdio:///", "--output-format", "json"],
        capture_output=True, env=ENV, timeout=60, check=True,
    )  # fmt: skip
    out = []
    for line in done.stdout.splitlines():
        row = json.loads(line)
        payload = row["payload"]
        out.append(
            payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        )
    return out


def one_line_json_error(status: int, text: str, cause: str) -> None:
    assert text.count("\n") == 1, text
    body = json.loads(text)
    assert body["cause"] == cause, body
    assert isinstance(body["error"], str) and body["error"]


def test_single_messages_and_ndjson_batches_land_in_a_file(tmp_path: Path) -> None:
    out = tmp_path / "in.ss"
    lines = (
        b'{"ts":1700000000000,"key":"u1","headers":["h","v"],"payload":{"n":1}}\n'
        b'{"ts":1700000000001,"payload":"two"}\n'
        b'{"topic":"orders","payload":[3]}'  # no final newline: still a line
    )

    async def client(c: Collector) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.post(c.url("/streams/orders"), data=b"raw one", headers=RAW) as r:
                assert (r.status, await r.json()) == (202, {"accepted": 1})
            async with s.post(c.url("/streams/orders?ack=written"), data=lines,
                              headers=NDJSON) as r:  # fmt: skip
                assert (r.status, await r.json()) == (200, {"written": 3})
            async with s.post(c.url("/streams/other"), data=b'{"id":9}',
                              headers={"Content-Type": "application/json"}) as r:  # fmt: skip
                assert r.status == 202
            async with s.get(c.url("/healthz")) as r:
                assert (r.status, await r.json()) == (200, {"status": "ok"})

    with collector(f"file://{out}/") as c:
        run(client(c))
        code, err = c.stop()
    assert code == 143, err
    assert "Traceback" not in err
    assert payloads_in(out) == ["raw one", '{"n":1}', "two", "[3]", '{"id":9}']
    rows = decode(out)
    keys = [r.get("stream_key") for r in rows if r.get("stream_key") != "SEA_STREAMER_INTERNAL"]
    assert keys == ["orders"] * 4 + ["other"]


def test_refusals_are_one_line_json_with_their_status(tmp_path: Path) -> None:
    out = tmp_path / "r.ss"

    async def client(c: Collector) -> None:
        async with aiohttp.ClientSession() as s:
            cases = [
                ("/streams/bad%20key", b"x", RAW, 400, "bad_request"),
                ("/streams/k?ack=sometime", b"x", RAW, 400, "bad_request"),
                ("/streams/k", b'{"payload":1}\nnot json\n', NDJSON, 400, "bad_request"),
                ("/streams/k", b'{"topic":"elsewhere","payload":1}\n', NDJSON, 400,
                 "bad_request"),
                ("/streams/k", b"\n\n", NDJSON, 400, "bad_request"),
                ("/streams/k", b"x" * 2048, RAW, 413, "too_large"),
                ("/streams/k", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"},
                 415, "unsupported_type"),
                ("/nowhere", b"x", RAW, 404, "not_found"),
            ]  # fmt: skip
            for path, body, headers, status, cause in cases:
                async with s.post(c.url(path), data=body, headers=headers) as r:
                    assert r.status == status, (path, await r.text())
                    one_line_json_error(status, await r.text(), cause)
            async with s.get(c.url("/streams/k")) as r:
                assert r.status == 405
            async with s.get(c.url("/metrics")) as r:
                text = await r.text()
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert 'streamkit_collect_rejected_requests_total{cause="bad_request"} 5' in text
            assert 'streamkit_collect_rejected_requests_total{cause="too_large"} 1' in text
            assert "streamkit_collect_received_messages_total 0" in text
            assert "streamkit_collect_request_seconds_count 7" in text

    with collector(f"file://{out}/", "--max-body", "1k") as c:
        run(client(c))
        code, err = c.stop()
    assert code == 143, err
    assert payloads_in(out) == []  # nothing of a refused request was taken


def test_a_token_is_required_when_given(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")

    async def client(c: Collector) -> None:
        async with aiohttp.ClientSession() as s:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                async with s.post(c.url("/streams/k"), data=b"x", headers={**RAW, **headers}) as r:
                    assert r.status == 401
                    assert r.headers["WWW-Authenticate"] == "Bearer"
                    one_line_json_error(401, await r.text(), "unauthorized")
            async with s.get(c.url("/metrics")) as r:
                assert r.status == 401
            good = {**RAW, "Authorization": "Bearer s3cret"}
            async with s.post(c.url("/streams/k"), data=b"ok", headers=good) as r:
                assert r.status == 202
            async with s.get(c.url("/healthz")) as r:  # probes carry no token
                assert r.status == 200

    out = tmp_path / "t.ss"
    with collector(f"file://{out}/", "--token-file", str(secret)) as c:
        run(client(c))
        assert c.stop()[0] == 143
    assert payloads_in(out) == ["ok"]


def test_tls_with_cert_and_key(tmp_path: Path) -> None:
    _make_certificates(tmp_path)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))

    async def client(c: Collector) -> None:
        async with (
            aiohttp.ClientSession() as s,
            s.post(c.url("/streams/k"), data=b"over tls", headers=RAW, ssl=context) as r,
        ):
            assert r.status == 202

    out = tmp_path / "tls.ss"
    with collector(
        f"file://{out}/", "--cert", str(tmp_path / "server.crt"),
        "--key", str(tmp_path / "server.key"), scheme="https",
    ) as c:  # fmt: skip
        run(client(c))
        assert c.stop()[0] == 143
    assert payloads_in(out) == ["over tls"]


def test_stalled_output_gives_503_with_retry_after_and_flat_memory(
    redis_server: RedisServer, unique_key: str
) -> None:
    body = b"y" * 60_000

    async def flood(c: Collector, s: aiohttp.ClientSession, n: int) -> list[int]:
        async def one() -> int:
            # ack=written: answered after a flush, so a stalled output holds every one of them
            # (a plain 202 comes once the producer took the batch into its pipeline)
            url = c.url(f"/streams/{unique_key}?ack=written")
            async with s.post(url, data=body, headers=RAW) as r:
                if r.status == 503:
                    assert r.headers["Retry-After"] == "1"
                    one_line_json_error(503, await r.text(), "busy")
                return r.status

        return list(await asyncio.gather(*(one() for _ in range(n))))

    async def client(c: Collector) -> tuple[list[int], int, int, list[int]]:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as s:
            redis_server.cli("CLIENT", "PAUSE", "8000", "WRITE")  # the output stalls
            pending = asyncio.ensure_future(flood(c, s, 20))  # 20 > --max-in-flight 8
            await asyncio.sleep(1.0)
            before = c.rss_kib
            rejected = await flood(c, s, 600)  # 36 MB offered while stalled
            after = c.rss_kib
            async with s.get(c.url("/metrics")) as r:
                text = await r.text()
            assert "streamkit_collect_in_flight_messages 8\n" in text
            assert 'rejected_requests_total{cause="busy"} 612\n' in text
            first = await pending
            return first, before, after, rejected

    with collector(redis_server.stream_url(""), "--max-in-flight", "8") as c:
        first, before, after, rejected = run(client(c))
        assert c.stop()[0] == 143
    assert set(rejected) == {503}
    assert first.count(200) == 8 and first.count(503) == 12
    assert after - before < 8 * 1024, (before, after)  # KiB: no growth with the offered load
    length = int(redis_server.cli("XLEN", unique_key))
    assert length == 8  # everything answered 202 was written once the server resumed


def test_sigterm_drains_and_everything_answered_is_stored(tmp_path: Path) -> None:
    out = tmp_path / "drain.ss"
    answered: list[str] = []

    async def writer(c: Collector, s: aiohttp.ClientSession, name: int) -> None:
        for i in range(10_000):
            payload = f"w{name}-{i}"
            ack = "?ack=written" if i % 5 == 0 else ""
            try:
                async with s.post(c.url(f"/streams/k{name % 3}{ack}"), data=payload,
                                  headers=RAW) as r:  # fmt: skip
                    if r.status in (200, 202):
                        answered.append(payload)
                    else:
                        assert r.status == 503, await r.text()
                        return
            except aiohttp.ClientError:
                return  # the server stopped listening

    async def client(c: Collector) -> None:
        async with aiohttp.ClientSession() as s:
            tasks = [asyncio.ensure_future(writer(c, s, n)) for n in range(16)]
            while len(answered) < 2000:
                await asyncio.sleep(0.02)
            c.proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*tasks)

    with collector(f"file://{out}/") as c:
        run(client(c), timeout=120)
        _, err = c.proc.communicate(timeout=60)
        assert c.proc.returncode == 143, err
    stored = set(payloads_in(out))
    assert len(answered) >= 2000
    assert not set(answered) - stored  # every answered message is in the file
    assert decode(out)[-1].get("stream_key") == "SEA_STREAMER_INTERNAL"  # closed with EOS


def test_kafka_output_keeps_keys_headers_and_timestamps(kafka_broker: Any) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = kafka_broker.topic()
    kafka_broker.create_topic(topic)
    lines = b"".join(
        b'{"ts":%d,"key":"k%d","headers":["trace","t%d"],"payload":{"i":%d}}\n'
        % (1_700_000_000_000 + i, i, i, i)
        for i in range(5)
    )

    async def client(c: Collector) -> None:
        url = c.url(f"/streams/{topic}?ack=written")
        async with (
            aiohttp.ClientSession() as s,
            s.post(url, data=lines, headers=NDJSON) as r,
        ):
            assert (r.status, await r.json()) == (200, {"written": 5})

    with collector(kafka_broker.uri(topic)) as c:
        run(client(c))
        assert c.stop()[0] == 143
    consumer = Consumer({"bootstrap.servers": kafka_broker.address, "group.id": "check"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 5 and time.monotonic() < deadline:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            got.append((m.timestamp()[1], m.key(), m.headers(), m.value()))
    consumer.close()
    assert got == [
        (1_700_000_000_000 + i, b"k%d" % i, [("trace", b"t%d" % i)], b'{"i":%d}' % i)
        for i in range(5)
    ]


def test_output_keys_limit_the_streams_taken(tmp_path: Path) -> None:
    out = tmp_path / "only.ss"

    async def client(c: Collector) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.post(c.url("/streams/a"), data=b"1", headers=RAW) as r:
                assert r.status == 202
            async with s.post(c.url("/streams/c"), data=b"2", headers=RAW) as r:
                assert r.status == 404
                one_line_json_error(404, await r.text(), "not_found")

    with collector(f"file://{out}/a,b") as c:
        run(client(c))
        assert c.stop()[0] == 143
    assert payloads_in(out) == ["1"]


def test_a_missing_server_library_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None; from streamkit.cli.main import main; "
        f"main(['collect', '--output', 'file://{tmp_path}/x.ss/'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV, timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode().count("\n") == 1
    assert "pip install -e '.[collect]'" in done.stderr.decode()


def test_listen_errors_are_usage_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit.cli.main", "collect", "--listen", "nonsense",
         "--output", "stdio:///"],
        capture_output=True, env=ENV, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert b"--listen" in done.stderr and b"Traceback" not in done.stderr
