"""Which Redis codec this process uses (XADD packing, XREAD entries → Messages), chosen once.

The compiled one (``resp_compiled``: C loops in ``streamkit.formats._speedups``) when the
extension was built and ``STREAMKIT_PURE_PYTHON`` is not ``1``; otherwise the pure-Python
reference ``resp``. Both give the same bytes and messages (tests/backends/redis run every
codec test against both), as the line and ``.ss`` codecs of ``streamkit.formats.codec`` do.
"""

from __future__ import annotations

import os

from streamkit.backends.redis import resp as _pure

__all__ = ["IMPLEMENTATION", "convert_entries", "pack_xadd", "skip_replies"]

pack_xadd: _pure.Pack = _pure.pack_xadd
convert_entries: _pure.Convert = _pure.convert_entries
skip_replies: _pure.Skip | None = None
"""XADD acks skipped in C (None on the pure path: hiredis parses every reply, as it is faster
than a Python loop)."""
IMPLEMENTATION = "pure Python"

if os.environ.get("STREAMKIT_PURE_PYTHON", "") != "1":
    try:
        from streamkit.backends.redis import resp_compiled as _compiled
    except ImportError:
        IMPLEMENTATION = "pure Python (the C codec is not built)"
    else:
        pack_xadd = _compiled.pack_xadd
        convert_entries = _compiled.convert_entries
        skip_replies = _compiled.skip_replies
        IMPLEMENTATION = "C"
