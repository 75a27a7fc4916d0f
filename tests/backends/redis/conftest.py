"""``redis_codec``: runs a test against both Redis codecs (pure resp.py and compiled C).

It puts the chosen ``pack_xadd``, ``convert_entries`` and ``skip_replies`` into
``streamkit.backends.redis.codec``, which the producer, the reader and the connection call
through, so a backend test against the real server checks both; codec tests take the module
it yields. The C codec must be built (``python3 setup.py build_ext --inplace``): a missing
extension fails these tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from streamkit.backends.redis import codec
from streamkit.backends.redis import resp as pure


def compiled() -> ModuleType:
    try:
        from streamkit.backends.redis import resp_compiled
    except ImportError as error:  # pragma: no cover - a broken install
        raise AssertionError(f"the C codec is not built ({error}); run pip install -e .") from None
    return resp_compiled


def implementation(name: str) -> ModuleType:
    return pure if name == "pure" else compiled()


@pytest.fixture(params=["pure", "C"])
def redis_codec(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    chosen = implementation(request.param)
    saved = codec.pack_xadd, codec.convert_entries, codec.skip_replies
    codec.pack_xadd, codec.convert_entries = chosen.pack_xadd, chosen.convert_entries
    codec.skip_replies = None if chosen is pure else chosen.skip_replies  # as codec.py does
    try:
        yield chosen
    finally:
        codec.pack_xadd, codec.convert_entries, codec.skip_replies = saved
