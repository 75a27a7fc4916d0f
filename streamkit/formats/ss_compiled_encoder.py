"""The compiled ``.ss`` encoder: ``SsEncoder`` of ss.py with its Message path in C.

Split from ss_compiled.py (which keeps the decoder) so that a command that only reads a file
never imports an encoder; ``ss_compiled.SsEncoder`` and ``codec.SsEncoder`` load this module on
first use. Importing it imports ss_compiled first, which configures ``_speedups``.
"""

from __future__ import annotations

from collections.abc import Iterable

from streamkit.formats import _speedups
from streamkit.formats import ss_compiled as _ss_compiled  # noqa: F401  configures _speedups
from streamkit.formats.ss_encoder import SsEncoder as _PureSsEncoder
from streamkit.formats.ss_encoder import StreamState
from streamkit.message import Message

__all__ = ["SsEncoder"]

_ss_encode = _speedups.ss_encode


class SsEncoder(_PureSsEncoder):
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
                batch, index, key, self.position, self.interval, self.streams, StreamState
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
