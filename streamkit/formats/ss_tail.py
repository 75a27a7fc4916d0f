"""Why bytes cut off by the end of a ``.ss`` file's data are a torn tail or damage.

A crashed writer leaves a half-written last frame or beacon, which ``verify --repair`` may cut
off; a damaged size field looks the same at first sight but has good data after it, which must
never be cut. ``SsDecoder`` inherits these checks; they run once, when ``eof()`` leaves bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamkit.errors import FileFormatError
from streamkit.formats.crc16 import CRC16_INIT
from streamkit.formats.ss_header import (
    _FRAME_HEAD,
    _INTERNAL_BYTES,
    _KEY_BYTES,
    MAX_TIMESTAMP,
    Beacon,
    _calc,
)

__all__: list[str] = []


class _TailChecks:
    """The end-of-data checks of ``SsDecoder`` (which provides the state they read)."""

    _buf: bytes
    _i: int
    _base: int
    _interval: int
    _beacon_at: int
    _keys: dict[bytes, str]
    truncated: bool

    if TYPE_CHECKING:

        def tell(self) -> int: ...

        def _bad(self, what: str, offset: int) -> FileFormatError: ...

        def _parse_beacon(self, at: int) -> Beacon | None: ...

    def _truncated(self) -> None:
        """The bytes fed end inside a frame or beacon: a writer's torn tail, or damage.

        Only an item that really is the last one can be a half-written tail: when its head is
        impossible, a beacon inside it disagrees with its size, or an intact frame starts
        inside the bytes it claims, its size field is damaged and the rest of the file is good
        data -- calling that a tail would let an append or a repair cut it off.
        """
        pos = self.tell()
        left = len(self._buf) - self._i
        at_beacon = pos % self._interval == 0 and pos != self._beacon_at
        damage = self._tail_damage(pos, at_beacon)
        if damage is not None:
            raise self._bad(damage, pos)
        self.truncated = True
        if at_beacon:
            raise self._bad(f"file ends in the middle of a beacon ({left} bytes of it)", pos)
        raise self._bad(
            f"file ends in the middle of a message ({left} bytes after the last complete "
            "frame; a writer may have crashed: `streamkit verify --repair` truncates the tail)",
            pos,
        )

    def _tail_damage(self, pos: int, at_beacon: bool) -> str | None:
        """Why the item at ``pos``, cut off by the end of the data, cannot be a torn tail."""
        end = self._base + len(self._buf)
        if at_beacon:
            found = self._intact_frame(pos + 6, b"")
            if found is None:
                return None
            return (
                f"the beacon at byte {pos} claims more bytes than the file holds, but an intact "
                f"message ({found[1]}) starts at byte {found[0]} after it: the beacon is "
                "damaged (this is not a half-written tail)"
            )
        logical, beacons = self._gather_available()
        klen = logical[0]
        if klen == 0:
            return (
                f"a frame with an empty stream key runs past the end of the file ({end - pos} "
                "bytes): damage, not a half-written message"
            )
        raw_key = logical[1 : 1 + klen]
        if raw_key and not _KEY_BYTES.fullmatch(raw_key):
            return (
                f"a frame with the invalid stream key {bytes(raw_key)!r} runs past the end of "
                f"the file ({end - pos} bytes): damage, not a half-written message"
            )
        if len(logical) < 1 + klen + 28:
            return None
        shard, seq, ts, size = _FRAME_HEAD.unpack_from(logical, 1 + klen)
        ident = f"message {raw_key.decode('ascii')}:{shard}:{seq}"
        if ts > MAX_TIMESTAMP:
            return f"{ident} runs past the end of the file and its timestamp {ts} is impossible"
        total = 1 + klen + 28 + size + 3
        for beacon, before in beacons:
            if beacon.remaining != total - before:
                return (
                    f"{ident} claims {size} payload bytes, but the beacon at byte "
                    f"{beacon.offset} inside it says {beacon.remaining} bytes of it follow, "
                    f"not {total - before}: the frame's size field is damaged (this is not a "
                    "half-written tail)"
                )
        found = self._intact_frame(pos + 1, bytes((klen,)) + raw_key)
        if found is None:
            return None
        return (
            f"{ident} claims {size} payload bytes, running past the end of the file, but an "
            f"intact message ({found[1]}) starts at byte {found[0]} inside it: the frame's size "
            "field is damaged (this is not a half-written tail)"
        )

    def _gather_available(self) -> tuple[bytes, list[tuple[Beacon, int]]]:
        """The logical bytes from the current position to the end of the data, beacons cut out."""
        interval = self._interval
        pos = self.tell()
        end = self._base + len(self._buf)
        parts: list[bytes] = []
        got = 0
        beacons: list[tuple[Beacon, int]] = []
        while pos < end:
            if pos % interval == 0 and pos != self._beacon_at:
                beacon = self._parse_beacon(pos)
                if beacon is None:
                    break
                beacons.append((beacon, got))
                pos += beacon.size
                continue
            take = min((pos // interval + 1) * interval - pos, end - pos)
            j = pos - self._base
            parts.append(self._buf[j : j + take])
            got += take
            pos += take
        return b"".join(parts), beacons

    def _intact_frame(self, start: int, own_prefix: bytes) -> tuple[int, str] | None:
        """The first intact frame (trailer and CRC right) of a known stream at or after
        absolute offset ``start``: ``(offset, "key:shard:seq")``, or None.

        Candidates are found by the key prefixes of the streams seen so far (``bytes.find``, C
        speed), so a torn payload of arbitrary bytes costs a few probes, not one per byte.
        """
        buf = self._buf
        base = self._base
        prefixes = {bytes((len(raw),)) + raw for raw in self._keys}
        prefixes.add(bytes((len(_INTERNAL_BYTES),)) + _INTERNAL_BYTES)
        if own_prefix:
            prefixes.add(own_prefix)
        best: tuple[int, str] | None = None
        budget = 100_000
        for prefix in prefixes:
            j = max(start - base, 0)
            limit = len(buf) if best is None else best[0] - base
            while budget > 0:
                j = buf.find(prefix, j, limit)
                if j < 0:
                    break
                budget -= 1
                found = self._frame_at(j)
                if found is not None:
                    best = (base + j, found)
                    break
                j += 1
        return best

    def _frame_at(self, j: int) -> str | None:
        """``"key:shard:seq"`` when an intact frame starts at buffer index ``j``."""
        buf = self._buf
        klen = buf[j]
        h = j + 1 + klen
        if h + 28 > len(buf):
            return None
        shard, seq, ts, size = _FRAME_HEAD.unpack_from(buf, h)
        pe = h + 28 + size
        if pe + 3 > len(buf) or buf[pe + 2] != 13 or ts > MAX_TIMESTAMP:
            return None
        crc = _calc(buf[h + 28 : pe], CRC16_INIT) if size else CRC16_INIT
        if crc != buf[pe] << 8 | buf[pe + 1]:
            return None
        return f"{buf[j + 1 : h].decode('ascii', 'replace')}:{shard}:{seq}"
