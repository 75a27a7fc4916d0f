"""Private Redis servers for the tests: plain, restartable, TLS and a 3-node cluster.

Every server is a real ``redis-server`` started here on a free 127.0.0.1 port (never 6379) with
``--save "" --appendonly no`` and stopped at the end. ``STREAMKIT_TEST_REDIS_URL`` points the
plain ``redis_server`` fixture at an external server instead; the restart, TLS and cluster
fixtures always start their own, since they must control the process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REDIS_SERVER = shutil.which("redis-server") or "redis-server"
REDIS_CLI = shutil.which("redis-cli") or "redis-cli"


def free_port(also_free: int = 0) -> int:
    """A port free on 127.0.0.1 (and ``port + also_free`` too, for the cluster bus)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not also_free:
            return port
        if port + also_free > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + also_free))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


@dataclass
class RedisServer:
    """One private ``redis-server``; ``restart`` keeps the port (and, if asked, the data)."""

    directory: Path
    port: int = 0
    host: str = "127.0.0.1"
    extra: tuple[str, ...] = ()
    tls: bool = False
    password: str | None = None
    external_url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` (``rediss://:PASSWORD@...`` for the TLS server)."""
        if self.external_url:
            return self.external_url.rstrip("/")
        scheme = "rediss" if self.tls else "redis"
        cred = f":{self.password}@" if self.password else ""
        return f"{scheme}://{cred}{self.host}:{self.port}"

    def stream_url(self, key: str) -> str:
        return f"{self.url}/{key}"

    def start(self) -> None:
        if not self.port:
            self.port = free_port(10000 if "--cluster-enabled" in self.extra else 0)
        port_args = ["--port", "0", "--tls-port", str(self.port)] if self.tls else []
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
            "--protected-mode",
            "no",
            *port_args,
            *(("--requirepass", self.password) if self.password else ()),
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited: {log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    if self.tls or self.cli("PING").strip() == "PONG":
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def cli(self, *args: str) -> str:
        """Run one command with ``redis-cli`` against this server; its stdout."""
        if self.external_url:
            target = ["-u", self.external_url]
        else:
            target = ["-h", self.host, "-p", str(self.port)]
            if self.tls:
                target += ["--tls", "--cacert", str(self.directory / "ca.crt")]
            if self.password:
                target += ["-a", self.password, "--no-auth-warning"]
        result = subprocess.run(
            [REDIS_CLI, *target, *args], capture_output=True, check=True, timeout=20
        )
        return result.stdout.decode()

    def stop(self, *, save: bool = False) -> None:
        """Stop the server; ``save=True`` writes dump.rdb first so a restart keeps the data."""
        if self.process is None:
            return
        if save:
            self.cli("SHUTDOWN", "SAVE")
        else:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)
        self.process = None

    def restart(self, *, keep_data: bool = True, downtime: float = 0.0) -> None:
        """Stop and start again on the same port, keeping the data (via RDB) unless told not to."""
        if not keep_data:
            (self.directory / "dump.rdb").unlink(missing_ok=True)
        self.stop(save=keep_data)
        if downtime:
            time.sleep(downtime)
        self.start()


def _start(tmp: Path, **kwargs: object) -> RedisServer:
    tmp.mkdir(parents=True, exist_ok=True)
    server = RedisServer(tmp, **kwargs)  # type: ignore[arg-type]
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The shared private server (or STREAMKIT_TEST_REDIS_URL). Tests use unique keys."""
    external = os.environ.get("STREAMKIT_TEST_REDIS_URL")
    if external:
        parts = urlsplit(external)
        yield RedisServer(
            Path("."), port=parts.port or 6379, host=parts.hostname or "127.0.0.1",
            external_url=external,
        )  # fmt: skip
        return
    server = _start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_restartable(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, which the test may ``restart()`` on the same port."""
    server = _start(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def unique_key() -> str:
    """A stream key no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


def _make_certificates(directory: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=streamkit test CA")  # fmt: skip
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A TLS-only server with a password; its CA certificate is ``directory / "ca.crt"``."""
    directory = tmp_path_factory.mktemp("redis-tls")
    _make_certificates(directory)
    server = _start(
        directory,
        tls=True,
        password="tls-secret",
        extra=(
            "--tls-cert-file",
            str(directory / "server.crt"),
            "--tls-key-file",
            str(directory / "server.key"),
            "--tls-ca-cert-file",
            str(directory / "ca.crt"),
            "--tls-auth-clients",
            "no",
        ),
    )
    yield server
    server.stop()


@dataclass
class RedisCluster:
    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """All nodes in the URI (``redis://a:1,b:2,c:3``)."""
        return "redis://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    def stream_url(self, key: str) -> str:
        return f"{self.url}/{key}"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster (no replicas) on free ports, made by ``redis-cli --cluster``."""
    base = tmp_path_factory.mktemp("redis-cluster")
    nodes = [
        _start(base / f"node{i}", extra=("--cluster-enabled", "yes", "--cluster-node-timeout",
                                          "5000", "--cluster-config-file", "nodes.conf"))
        for i in range(3)
    ]  # fmt: skip
    try:
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield RedisCluster(nodes)
    finally:
        for node in nodes:
            node.stop()
