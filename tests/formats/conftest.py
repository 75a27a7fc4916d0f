"""Fixtures that run every codec test against both implementations.

``line_codec`` (parametrised ``pure`` / ``C``) puts the chosen ``LineDecoder`` and
``encode_lines`` into the test module's namespace, ``ss_codec`` the chosen ``SsDecoder`` and
``SsEncoder``, so a test written once checks both. The C implementation must be built
(``pip install -e .``): a missing extension fails these tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from streamkit.formats import line as pure
from streamkit.formats import ss as pure_ss


def compiled() -> ModuleType:
    try:
        from streamkit.formats import line_compiled
    except ImportError as error:  # pragma: no cover - a broken install
        raise AssertionError(f"the C codec is not built ({error}); run pip install -e .") from None
    return line_compiled


def compiled_ss() -> ModuleType:
    try:
        from streamkit.formats import ss_compiled
    except ImportError as error:  # pragma: no cover - a broken install
        raise AssertionError(f"the C codec is not built ({error}); run pip install -e .") from None
    return ss_compiled


IMPLEMENTATIONS = ["pure", "C"]


def implementation(name: str) -> ModuleType:
    return pure if name == "pure" else compiled()


@pytest.fixture(params=IMPLEMENTATIONS)
def line_codec(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    chosen = implementation(request.param)
    module = request.module
    saved = {name: getattr(module, name) for name in ("LineDecoder", "encode_lines")}
    module.LineDecoder = chosen.LineDecoder
    module.encode_lines = chosen.encode_lines
    try:
        yield chosen
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


@pytest.fixture(params=IMPLEMENTATIONS)
def ss_codec(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    chosen = pure_ss if request.param == "pure" else compiled_ss()
    module = request.module
    names = [name for name in ("SsDecoder", "SsEncoder") if hasattr(module, name)]
    saved = {name: getattr(module, name) for name in names}
    for name in names:
        setattr(module, name, getattr(chosen, name))
    try:
        yield chosen
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
