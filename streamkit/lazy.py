"""Names a module hands out without importing their modules up front (PEP 562).

Start-up is measured (docs/benchmarks.md): ``import streamkit``, the ``.ss`` codec and the file
backend each expose names whose modules pull in asyncio, the encoder or the C twin, which most
commands never use. Such a module keeps a table ``{name: module}`` and a two-line
``__getattr__`` that calls ``load``; the first use imports the module and keeps the value as an
ordinary attribute, so later uses cost nothing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["load"]


def load(module: str, table: Mapping[str, str], name: str) -> Any:
    """``name`` of module ``module``, imported from ``table[name]`` and kept there."""
    source = table.get(name)
    if source is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    setattr(sys.modules[module], name, value)
    return value
