"""Which codec this process uses (line format and ``.ss`` frames), decided once at import.

The compiled one (``line_compiled`` and ``ss_compiled``: C loops in ``_speedups``) when the
extension was built and ``STREAMKIT_PURE_PYTHON`` is not ``1``; otherwise the pure-Python
reference (``line``, ``ss``). Both give the same messages, bytes and errors (tests/formats run
every codec test against both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from streamkit.formats import line as _pure
from streamkit.formats import ss as _pure_ss

__all__ = [
    "IMPLEMENTATION",
    "LineDecoder",
    "SsDecoder",
    "SsEncoder",
    "encode_lines",
    "encode_log_lines",
]

LineDecoder: type[_pure.LineDecoder] = _pure.LineDecoder
SsDecoder: type[_pure_ss.SsDecoder] = _pure_ss.SsDecoder
SsEncoder: type[_pure_ss.SsEncoder] = _pure_ss.SsEncoder
encode_lines = _pure.encode_lines
encode_log_lines: Callable[[list[Any], Callable[[Any], bytes]], bytes | None] | None = None
"""``decode``'s log lines in C (None on the pure path: decode's own loop formats them)."""
IMPLEMENTATION = "pure Python"
"""``"C"`` or ``"pure Python"``; ``streamkit --version`` prints it."""

if os.environ.get("STREAMKIT_PURE_PYTHON", "") != "1":
    try:
        from streamkit.formats import line_compiled as _compiled
        from streamkit.formats import ss_compiled as _compiled_ss
    except ImportError:
        IMPLEMENTATION = "pure Python (the C codec is not built)"
    else:
        LineDecoder = _compiled.LineDecoder
        SsDecoder = _compiled_ss.SsDecoder
        SsEncoder = _compiled_ss.SsEncoder
        encode_lines = _compiled.encode_lines
        encode_log_lines = _compiled.encode_log_lines
        IMPLEMENTATION = "C"
