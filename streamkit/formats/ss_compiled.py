"""The compiled ``.ss`` frame decoder: ``SsDecoder`` with its frame loop in C.

Only ``_fast`` (the frames between two beacon offsets) changes: ``_speedups.ss_scan`` parses
them, checks trailer, timestamp and CRC-16 per frame and builds the Message objects. At a frame
that fails a check it stops, and the pure ``_scan`` of ss.py takes over from that frame, so
every error (its text and offset) comes from ss.py. Beacons, spliced frames, seeks and the
header stay in ss.py. Importing this module raises ImportError when the extension was not built.
"""

from __future__ import annotations

from streamkit.formats import _speedups
from streamkit.formats import ss as _ss
from streamkit.formats.ss import Item
from streamkit.message import BROADCAST, Message

__all__ = ["SsDecoder"]

_speedups.configure(Message, BROADCAST)
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
        i, frame_start, ended, stopped = _ss_scan(
            buf, start, lim, limit - len(out), found, self._verify
        )
        if frame_start >= 0:
            self.last_message_start = base + frame_start
            self.last_message_end = base + i
        self._i = i
        if ended:
            self.ended = True
        elif stopped:  # a frame failed a check: ss.py's exact scan names the damage
            self._scan(out, limit, _ss._EXACT_CHECK if self._verify else _ss._NO_CHECK)
            return True
        return i != start
