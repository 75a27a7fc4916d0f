"""The compiled ``.ss`` codec: ``SsDecoder`` and ``SsEncoder`` with their frame loops in C.

Only ``_fast`` (the frames between two beacon offsets) changes: ``_speedups.ss_scan`` parses
them, checks trailer, timestamp and CRC-16 per frame and builds the Message objects. At a frame
that fails a check it stops, and the pure ``_scan`` of ss_decoder.py takes over from that frame, so
every error (its text and offset) comes from ss.py. Beacons, spliced frames, seeks and the
header stay in ss.py. Importing this module raises ImportError when the extension was not built.
"""

from __future__ import annotations

from collections.abc import Iterable

from streamkit.formats import _speedups
from streamkit.formats import ss as _ss
from streamkit.formats.ss import Item
from streamkit.formats.ss_decoder import _EXACT_CHECK, _NO_CHECK
from streamkit.message import BROADCAST, Message

__all__ = ["SsDecoder", "SsEncoder"]

_speedups.configure(Message, BROADCAST)
_ss_scan = _speedups.ss_scan
_ss_encode = _speedups.ss_encode


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


class SsEncoder(_ss.SsEncoder):
    """``SsEncoder`` of ss.py whose Message path (``encode_messages``) formats frames in C.

    ``_speedups.ss_encode`` writes frames back to back and keeps each stream's state; a frame
    that meets a beacon offset, and anything the C code does not judge (an invalid key, a
    number out of range), goes through ss.py's ``encode`` one frame at a time, which splices,
    writes beacons and sets ``failed`` exactly as the pure encoder does.
    """

    def encode_messages(self, messages: Iterable[Message], key: str | None = None) -> bytes:
        self.failed = None
        batch = messages if isinstance(messages, list) else list(messages)
        out: list[bytes] = []
        index, count = 0, len(batch)
        while index < count:
            data, index, self.position, new_streams = _ss_encode(
                batch, index, key, self.position, self.interval, self.streams, _ss.StreamState
            )
            if new_streams:
                self._order = None
            out.append(data)
            if index < count:
                out.append(self._encode_loop(batch[index : index + 1], key))
                if self.failed is not None:
                    break
                index += 1
        return b"".join(out)
