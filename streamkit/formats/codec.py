"""Which codec this process uses (line format and ``.ss`` frames), decided once at import.

The compiled one (``line_compiled`` and ``ss_compiled``: C loops in ``_speedups``) when the
extension was built and ``STREAMKIT_PURE_PYTHON`` is not ``1``; otherwise the pure-Python
reference (``line``, ``ss``). Both give the same messages, bytes and errors (tests/formats run
every codec test against both).

The line codec is chosen here at import; the ``.ss`` pair (``SsDecoder``, ``SsEncoder``) on first
use (PEP 562), so that a stdio command never imports the ``.ss`` modules (tests/test_startup.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamkit.formats import line as _pure

if TYPE_CHECKING:
    from streamkit.formats import ss as _pure_ss

    SsDecoder: type[_pure_ss.SsDecoder]
    SsEncoder: type[_pure_ss.SsEncoder]

__all__ = [
    "IMPLEMENTATION",
    "LineDecoder",
    "SsDecoder",
    "SsEncoder",
    "encode_lines",
    "encode_log_lines",
]

LineDecoder: type[_pure.LineDecoder] = _pure.LineDecoder
encode_lines = _pure.encode_lines
encode_log_lines: Callable[[list[Any], Callable[[Any], bytes]], bytes | None] | None = None
"""``decode``'s log lines in C (None on the pure path: decode's own loop formats them)."""
IMPLEMENTATION = "pure Python"
"""``"C"`` or ``"pure Python"``; ``streamkit --version`` prints it."""

if os.environ.get("STREAMKIT_PURE_PYTHON", "") != "1":
    try:
        from streamkit.formats import line_compiled as _compiled
    except ImportError:
        IMPLEMENTATION = "pure Python (the C codec is not built)"
    else:
        LineDecoder = _compiled.LineDecoder
        encode_lines = _compiled.encode_lines
        encode_log_lines = _compiled.encode_log_lines
        IMPLEMENTATION = "C"


def __getattr__(name: str) -> Any:
    """``SsDecoder`` and ``SsEncoder`` of the implementation chosen above, imported on first use."""
    if name not in ("SsDecoder", "SsEncoder"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if IMPLEMENTATION == "C":
        from streamkit.formats import ss_compiled as chosen
    else:
        from streamkit.formats import ss as chosen  # type: ignore[no-redef]
    value = getattr(chosen, name)
    globals()[name] = value
    return value
