"""The compiled Redis codec: ``pack_xadd`` and ``convert_entries`` of resp.py, in C.

``_speedups.redis_pack_xadd`` packs a batch of entries into one buffer; it returns None for a
batch it does not judge (an item that is not ``(str, bytes, bytes, int)``, a millisecond below
``AUTO`` or past 64 bits), which resp.py then packs, raising what it raises.
``_speedups.redis_convert_entries`` builds the Messages without a Python loop or ``__init__``;
it stops where resp.py stops, and also at any id that is not ``digits-digits`` or anything
else it does not judge: reading.py's per-entry rules (the same ``int()`` calls) take those, so
the result and any error are the pure code's. ``_speedups.redis_skip_replies`` is
resp.skip_replies. Importing this module raises ImportError when
the extension was not built.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamkit.backends.redis import resp as _resp
from streamkit.backends.redis.resp import Entry
from streamkit.formats import _speedups
from streamkit.message import BROADCAST, Message, ReadTime

__all__ = ["convert_entries", "pack_xadd", "skip_replies"]

_speedups.configure(Message, BROADCAST, ReadTime)
_pack = _speedups.redis_pack_xadd
convert_entries = _speedups.redis_convert_entries
skip_replies = _speedups.redis_skip_replies


def pack_xadd(entries: Sequence[Entry]) -> bytes:
    """resp.pack_xadd in C; the pure one for a batch the C code leaves to it."""
    data = _pack(entries)
    return data if data is not None else _resp.pack_xadd(entries)
