"""Which line codec this process uses, decided once at import.

The compiled one (``line_compiled``, C loops in ``_speedups``) when the extension was built and
``STREAMKIT_PURE_PYTHON`` is not ``1``; otherwise the pure-Python reference (``line``). Both give
the same messages, bytes and errors (tests/formats run every codec test against both).
"""

from __future__ import annotations

import os

from streamkit.formats import line as _pure

__all__ = ["IMPLEMENTATION", "LineDecoder", "encode_lines"]

LineDecoder: type[_pure.LineDecoder] = _pure.LineDecoder
encode_lines = _pure.encode_lines
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
        IMPLEMENTATION = "C"
