"""The compiled ``.ss`` codec: ``SsDecoder`` and ``SsEncoder`` with their frame loops in C.

Only ``_fast`` (the frames between two beacon offsets) changes: ``_speedups.ss_scan`` parses
them, checks trailer, timestamp and CRC-16 per frame and builds the Message objects. At a frame
that fails a check it stops, and the pure ``_scan`` of ss_decoder.py takes over from that frame, so
every error (its text and offset) comes from ss.py. Beacons, spliced frames, seeks and the
header stay in ss.py. Importing this module raises ImportError when the extension was not built.

``SsEncoder`` lives in ss_compiled_encoder.py and loads on first use (PEP 562), so that reading a
file never imports the encoder (nor ss_encoder.py under it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamkit.lazy as lazy
from streamkit.formats import _speedups
from streamkit.formats import ss as _ss
from streamkit.formats.ss import Item
from streamkit.formats.ss_decoder import _EXACT_CHECK, _NO_CHECK
from streamkit.message import BROADCAST, Message, ReadTime

if TYPE_CHECKING:
    from streamkit.formats.ss_compiled_encoder import SsEncoder

__all__ = ["SsDecoder", "SsEncoder"]

_speedups.configure(Message, BROADCAST, ReadTime)
_ss_scan = _speedups.ss_scan


class SsDecoder(_ss.SsDecoder):
    """``SsDecoder`` of ss.py, decoding runs of frames in C."""

    def _fast(self, out: list[Item], limit: int) -> bool:
        buf = self._buf
        if type(buf) is not bytes:
            return super()._fast(out, limit)
        start = self._i
        base = self._base
        interval = self._interval
        pos = base + start
        if pos % interval == 0 and self._beacon_at != pos:
            return False
        lim = min(len(buf), (pos // interval + 1) * interval - base)
        found: list[object] = out  # type: ignore[assignment]  # ss_scan appends Messages
        first = len(out)
        i, frame_start, ended, stopped = _ss_scan(
            buf, start, lim, limit - len(out), found, self._verify
        )
        if len(out) > first:
            # ss.py's damage checks look for intact frames of the streams seen so far: record
            # the keys of what C decoded, as ss.py's own scan does (one set per run of frames).
            keys = self._keys
            for key in {m.stream_key for m in out[first:] if isinstance(m, Message)}:
                raw = key.encode("utf-8")
                if raw not in keys:
                    keys[raw] = key
        if frame_start >= 0:
            self.last_message_start = base + frame_start
            self.last_message_end = base + i
        self._i = i
        if ended:
            self.ended = True
        elif stopped:  # a frame failed a check: ss.py's exact scan names the damage
            self._scan(out, limit, _EXACT_CHECK if self._verify else _NO_CHECK)
            return True
        return i != start


def __getattr__(name: str) -> Any:
    """``SsEncoder``, imported from ss_compiled_encoder.py on first use."""
    return lazy.load(__name__, {"SsEncoder": "streamkit.formats.ss_compiled_encoder"}, name)
