"""Fixtures of the Kafka backend tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamkit.backends.kafka import librdkafka, producer
from streamkit.formats import _speedups, line_compiled

assert line_compiled  # imported for _speedups.configure(Message)


@pytest.fixture(params=["pure", "C", "librdkafka"])
def produce_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The producer three ways: confluent-kafka's client with the pure-Python column-wise path,
    the same client with the C loop, and librdkafka driven from C (``LibrdkafkaClient``).

    The C ones are used even under ``STREAMKIT_PURE_PYTHON=1`` (the extension is built either
    way), so every implementation is always the one tested."""
    monkeypatch.setattr(
        producer, "_produce_loop", None if request.param == "pure" else _speedups.kafka_produce
    )
    monkeypatch.setattr(librdkafka, "ENABLED", request.param == "librdkafka")
    yield request.param
