"""Fixtures of the Kafka backend tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamkit.backends.kafka import producer
from streamkit.formats import _speedups, line_compiled

assert line_compiled  # imported for _speedups.configure(Message)


@pytest.fixture(params=["pure", "C"])
def produce_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The producer with its pure-Python column-wise path, then with the C loop.

    The C loop is used even under ``STREAMKIT_PURE_PYTHON=1`` (the extension is built either
    way), so both implementations are always the ones tested."""
    monkeypatch.setattr(
        producer, "_produce_loop", None if request.param == "pure" else _speedups.kafka_produce
    )
    yield request.param
