"""The ``.ss`` decoder: ``SsDecoder.feed(bytes)`` in any chunking, then ``read``/``next_item``.

Frames between two beacon offsets are parsed straight out of the buffer (``_fast``); frames
that cross a beacon offset are spliced (``_slow``). Why the bytes left at the end of the data
are a torn tail or damage is decided in ``ss_tail.py``. Layout: ``formats/ss.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

from streamkit.errors import FileFormatError, UsageError
from streamkit.formats.crc16 import CRC16_INIT, crc16, word_table
from streamkit.formats.ss_header import (
    _BEACON_HEAD,
    _FRAME_HEAD,
    _MARKER_HEAD,
    _U64_U32,
    EOS_PAYLOAD,
    HEADER_SIZE,
    MAX_TIMESTAMP,
    NEED_DATA,
    Beacon,
    FileHeader,
    Item,
    Marker,
    _calc,
    _NeedData,
    decode_header,
)
from streamkit.formats.ss_tail import _TailChecks
from streamkit.message import INTERNAL_KEY, Message, validate_stream_key

__all__ = ["SsDecoder", "parse_beacon"]


def parse_beacon(
    data: bytes, offset: int, header: FileHeader, source: str = "<bytes>"
) -> Beacon | None:
    """The beacon whose bytes start ``data`` (found at ``offset``), or None if ``data`` is short."""
    decoder = SsDecoder(source=source, start=offset, header=header)
    decoder.feed(data)
    return decoder._parse_beacon(offset)


_NO_CHECK, _BATCH_CHECK, _EXACT_CHECK = 0, 1, 2


def _batch_ok(blocks: list[bytes]) -> bool:
    """True when every block (a payload followed by its stored CRC) is intact.

    A CRC register that has consumed a payload and then its own CRC is 0. Feeding it the two
    bytes of ``_reset_word()`` turns 0 into 0xFFFF, the initial value, so the CRC of
    ``sep.join(blocks)`` is 0 exactly when every block's is: one C call checks a whole run of
    frames. (A single damaged frame always shows: multiplying its error by x^k modulo the
    polynomial never gives 0.)
    """
    if not blocks:
        return True
    return _calc(_reset_word().join(blocks), CRC16_INIT) == 0


_reset: list[bytes] = []


def _reset_word() -> bytes:
    if not _reset:
        _reset.append(word_table().index(CRC16_INIT).to_bytes(2, "big"))
    return _reset[0]


class SsDecoder(_TailChecks):
    """Incremental decoder: ``feed`` bytes in any chunking, ``read``/iterate items.

    ``start`` > 0 begins mid-file at a frame boundary (after a seek); ``header`` must then be
    given. ``source`` names the input in errors. Call ``eof()`` when no more bytes will come:
    leftover bytes are then reported as a truncated frame or beacon.

    After an error, the items decoded before the damage are returned first; the error is raised
    by the next ``read`` and by every one after it (the position stays at the damaged item).
    """

    def __init__(
        self,
        *,
        source: str = "<bytes>",
        start: int = 0,
        header: FileHeader | None = None,
        verify: bool = True,
    ) -> None:
        if start and header is None:
            raise ValueError("a decoder that starts mid-file needs the file's header")
        self.source = source
        self.header = header
        self._interval = header.beacon_interval if header else 0
        self._buf = b""
        self._i = 0
        self._base = start
        self._verify = verify
        self._beacon_at = -1
        self._eof = False
        self._error: FileFormatError | None = None
        self._keys: dict[bytes, str] = {}
        self.ended = False
        """True once the EOS frame was read: nothing after it is decoded."""
        self.truncated = False
        """True when ``eof()`` left a partial frame or beacon (a crashed writer's tail)."""
        self.last_message_start = -1
        self.last_message_end = -1
        """Offsets of the last message returned (its first byte; the byte after it)."""

    # ---- feeding ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._eof:
            raise ValueError("feed() after eof()")
        if not data:
            return
        if self._i:
            self._base += self._i
            self._buf = self._buf[self._i :] + data
            self._i = 0
        else:
            self._buf = self._buf + data if self._buf else bytes(data)

    def eof(self) -> None:
        self._eof = True

    def tell(self) -> int:
        """Absolute offset of the next unread byte."""
        return self._base + self._i

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet decoded."""
        return len(self._buf) - self._i

    # ---- reading ----------------------------------------------------------------------------

    def next_item(self) -> Item | _NeedData:
        items = self.read(1)
        return items[0] if items else NEED_DATA

    def __iter__(self) -> Iterator[Item]:
        while True:
            items = self.read(4096)
            if not items:
                return
            yield from items

    def read(self, max_items: int = 4096) -> list[Item]:
        """Up to ``max_items`` complete items (``[]``: need more data, or the stream ended)."""
        if self._error is not None:
            raise self._error
        out: list[Item] = []
        try:
            self._read_into(out, max_items)
        except FileFormatError as exc:
            self._error = exc
            if out:
                return out
            raise
        return out

    def _bad(self, what: str, offset: int) -> FileFormatError:
        return FileFormatError(what, f"{self.source} at byte {offset}", offset=offset)

    def _read_into(self, out: list[Item], limit: int) -> None:
        if self.header is None:
            if len(self._buf) - self._i < HEADER_SIZE:
                if self._eof and self._buf:
                    raise self._bad(
                        f"file is {len(self._buf)} bytes long, too short for the 128-byte .ss "
                        "header",
                        0,
                    )
                return
            self.header = decode_header(self._buf, self.source)
            self._interval = self.header.beacon_interval
            self._i = HEADER_SIZE
            out.append(self.header)
        while len(out) < limit and not self.ended:
            progressed = self._fast(out, limit)
            if len(out) >= limit or self.ended:
                return
            if not self._slow(out) and not progressed:
                if self._eof and self._i < len(self._buf):
                    self._truncated()
                return

    def _fast(self, out: list[Item], limit: int) -> bool:
        """Parse the frames that lie wholly before the next beacon offset.

        Checksums are verified for the whole run at once (``_batch_ok``); only when that fails
        is the run parsed again frame by frame, to name the damaged frame.
        """
        if not self._verify:
            return self._scan(out, limit, _NO_CHECK)
        mark = (len(out), self._i, self.last_message_start, self.last_message_end)
        blocks: list[bytes] = []
        try:
            progressed = self._scan(out, limit, _BATCH_CHECK, blocks)
        except FileFormatError:
            if _batch_ok(blocks):
                raise
            progressed = False
        else:
            if _batch_ok(blocks):
                return progressed
        del out[mark[0] :]
        self._i, self.last_message_start, self.last_message_end = mark[1:]
        self.ended = False
        return self._scan(out, limit, _EXACT_CHECK)

    def _scan(
        self, out: list[Item], limit: int, check: int, blocks: list[bytes] | None = None
    ) -> bool:
        buf = self._buf
        i = start_i = self._i
        base = self._base
        interval = self._interval
        pos = base + i
        if pos % interval == 0 and self._beacon_at != pos:
            return False
        lim = min(len(buf), (pos // interval + 1) * interval - base)
        unpack = _FRAME_HEAD.unpack_from
        keys = self._keys
        append = out.append
        add_block = blocks.append if blocks is not None else None
        calc = _calc
        n = len(out)
        frame_start = -1
        try:
            while n < limit:
                if i >= lim:
                    break
                klen = buf[i]
                h = i + 1 + klen
                if h + 28 > lim:
                    break
                shard, seq, ts, size = unpack(buf, h)
                ps = h + 28
                pe = ps + size
                if pe + 3 > lim:
                    break
                key = keys.get(buf[i + 1 : h])
                if key is None:
                    key = self._new_key(buf[i + 1 : h], base + i)
                payload = buf[ps:pe]
                if check:
                    if buf[pe + 2] != 13 or ts > MAX_TIMESTAMP:
                        self._frame_error(key, shard, seq, ts, payload, buf[pe : pe + 3], base + i)
                    if add_block is not None:
                        add_block(buf[ps : pe + 2])
                    elif (calc(payload, CRC16_INIT) if size else CRC16_INIT) != (
                        buf[pe] << 8 | buf[pe + 1]
                    ):
                        self._frame_error(key, shard, seq, ts, payload, buf[pe : pe + 3], base + i)
                append(Message(key, shard, seq, ts, payload))
                n += 1
                frame_start = i
                i = pe + 3
                if klen == 21 and size == 3 and key == INTERNAL_KEY and payload == EOS_PAYLOAD:
                    self.ended = True
                    break
        finally:
            # Also on damage: the position stays at the bad frame, after the good ones.
            if frame_start >= 0:
                self.last_message_start = base + frame_start
                self.last_message_end = base + i
            self._i = i
        return i != start_i

    def _new_key(self, data: bytes, offset: int) -> str:
        try:
            key = validate_stream_key(data.decode("ascii"))
        except (UnicodeDecodeError, UsageError):
            raise self._bad(f"invalid stream key {data!r} in a message frame", offset) from None
        self._keys[bytes(data)] = key
        return key

    def _frame_error(
        self, key: str, shard: int, seq: int, ts: int, payload: bytes, tail: bytes, offset: int
    ) -> None:
        ident = f"message {key}:{shard}:{seq}"
        if len(tail) < 3 or tail[2] != 13:
            raise self._bad(
                f"{ident} does not end with the 0x0D trailer (the frame is damaged or its "
                "payload size is wrong)",
                offset,
            )
        stored = tail[0] << 8 | tail[1]
        computed = crc16(payload) if payload else CRC16_INIT
        if stored != computed:
            raise self._bad(
                f"payload checksum mismatch in {ident}: stored {stored:#06x}, computed "
                f"{computed:#06x}",
                offset,
            )
        raise self._bad(f"timestamp {ts} of {ident} is out of range", offset)

    # ---- slow path: beacons and spliced frames ----------------------------------------------

    def _parse_beacon(self, at: int) -> Beacon | None:
        """The beacon at absolute offset ``at`` (from the buffer), or None if incomplete."""
        buf = self._buf
        j = at - self._base
        if j + 6 > len(buf):
            return None
        lead, remaining, count = _BEACON_HEAD.unpack_from(buf, j)
        if lead != 13:
            raise self._bad("no beacon where one must be (a beacon starts with 0x0D)", at)
        k = j + 6
        markers = []
        for _ in range(count):
            if k >= len(buf):
                return None
            klen = buf[k]
            if k + 1 + klen + 26 > len(buf):
                return None
            raw = buf[k + 1 : k + 1 + klen]
            key = self._keys.get(raw)
            if key is None:
                key = self._new_key(raw, self._base + k)
            shard, seq, ts, running = _MARKER_HEAD.unpack_from(buf, k + 1 + klen)
            markers.append(Marker(key, shard, seq, ts, running))
            k += 1 + klen + 26
        if k >= len(buf):
            return None
        if buf[k] != 13:
            raise self._bad("beacon does not end with 0x0D (damaged beacon)", at)
        size = k + 1 - j
        return Beacon(at, at // self._interval, remaining, tuple(markers), size)

    def _gather(self, need: int) -> tuple[bytes, int, list[tuple[Beacon, int]]] | None:
        """``need`` logical bytes from the current position with beacons cut out, or None."""
        interval = self._interval
        pos = self.tell()
        end_of_data = self._base + len(self._buf)
        parts: list[bytes] = []
        got = 0
        beacons: list[tuple[Beacon, int]] = []
        while got < need:
            if pos % interval == 0 and pos != self._beacon_at:
                beacon = self._parse_beacon(pos)
                if beacon is None:
                    return None
                beacons.append((beacon, got))
                pos += beacon.size
                continue
            take = min(need - got, (pos // interval + 1) * interval - pos, end_of_data - pos)
            if take <= 0:
                return None
            j = pos - self._base
            parts.append(self._buf[j : j + take])
            got += take
            pos += take
        return b"".join(parts), pos, beacons

    def _slow(self, out: list[Item]) -> bool:
        pos = self.tell()
        interval = self._interval
        if pos % interval == 0 and self._beacon_at != pos:
            beacon = self._parse_beacon(pos)
            if beacon is None:
                return False
            if beacon.remaining != 0:
                raise self._bad(
                    f"beacon {beacon.index} sits at a frame boundary but says "
                    f"{beacon.remaining} bytes of an interrupted frame follow",
                    pos,
                )
            self._beacon_at = pos
            self._i += beacon.size
            out.append(beacon)
            return True
        first = self._gather(1)
        if first is None:
            return False
        klen = first[0][0]
        head = self._gather(1 + klen + 28)
        if head is None:
            return False
        size = _U64_U32.unpack_from(head[0], 1 + klen + 16)[1]
        whole = self._gather(1 + klen + 28 + size + 3)
        if whole is None:
            return False
        frame, end, beacons = whole
        total = len(frame)
        for beacon, before in beacons:
            if beacon.remaining != total - before:
                raise self._bad(
                    f"beacon {beacon.index} says {beacon.remaining} bytes of the interrupted "
                    f"frame follow it, but {total - before} do",
                    beacon.offset,
                )
        # Decode the spliced frame with the fast path over a private buffer.
        saved = (self._buf, self._i, self._base, self._beacon_at)
        self._buf, self._i, self._base, self._beacon_at = frame, 0, pos, pos
        interval_saved = self._interval
        self._interval = 1 << 62  # no beacon offset inside the private buffer
        try:
            got: list[Item] = []
            self._fast(got, 1)
        finally:
            self._buf, self._i, self._base, self._beacon_at = saved
            self._interval = interval_saved
        if not got:  # pragma: no cover - _gather measured the frame; _fast must parse it
            raise self._bad("could not decode a frame that crosses a beacon", pos)
        self._i = end - self._base
        self._beacon_at = beacons[-1][0].offset if beacons else self._beacon_at
        self.last_message_start = pos
        self.last_message_end = end
        out.extend(got)
        out.extend(b for b, _ in beacons)
        return True
