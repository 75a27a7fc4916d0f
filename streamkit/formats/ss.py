"""The ``.ss`` container (SeaStreamer file format, version 1) — sans-IO encoder and decoder.

Byte layout (all integers big-endian; spec/ss-format.md and §4 of seastreamer-reference.md)::

    File       := Header Frame* ; a Beacon at every absolute offset k*I (k >= 1), wherever
                  that falls -- between frames or inside one ("splicing": the frame's bytes
                  stop at k*I, the beacon follows, then the rest of the frame)

    Header     := 128 bytes
                  0      2   magic b"Ss"
                  2      1   version 0x01
                  3    1+n   file name: u8 n, n bytes UTF-8 (n <= 111)
                  4+n    8   created_at: u64 ms since the epoch, UTC
                  12+n   4   beacon interval I: u32 (>= 128)
                  16+n  ...  0x00 padding up to byte 126
                  127    1   0x0D

    Frame      := key_len u8 | key key_len bytes | shard u64 | seq u64 | timestamp u64 |
                  payload_size u32 | payload | crc16 u16 | 0x0D
                  frame size = key_len + payload_size + 32; crc16 covers the payload only

    Beacon     := 0x0D | remaining u32 | count u8 | Marker*count | 0x0D
                  remaining = bytes of the interrupted frame that follow the beacon (0 at a
                  frame boundary)
    Marker     := key_len u8 | key | shard u64 | seq u64 | timestamp u64 | running_crc u16
                  per (key, shard): the highest seq and timestamp written so far and the CRC16
                  continued over the big-endian checksum of every frame of that stream

    EOS        := a Frame with key SEA_STREAMER_INTERNAL, shard 0, seq 0, payload b"EOS";
                  readers stop there

CRC16 is CRC-16/CDMA2000 (``streamkit.formats.crc16``).

Shape (the msgpack ``Unpacker`` / h11 model): ``SsDecoder.feed(bytes)`` in any chunking, then
``read(n)`` for a batch of items or iterate; ``next_item()`` returns ``NEED_DATA`` when the bytes
so far hold no complete item. Items are a ``FileHeader`` (first), ``Message`` (EOS included, see
``is_eos``) and ``Beacon``, in file order: a beacon that interrupts a frame comes right after
that frame's message. ``tell()`` is the absolute file offset of the next unread byte, and every
``FileFormatError`` carries the absolute offset of the damaged item, so a caller that starts
mid-file (a seek) still names true offsets.

Speed: between two beacon offsets frames are contiguous, so the decoder parses them straight out
of its buffer with ``struct.unpack_from`` and one C CRC call each; only a frame that crosses a
beacon offset takes the slower splicing path (once per interval, 1 MiB by default). The encoder
likewise builds a whole batch as a list of parts joined once, and splices only at boundaries.

Decisions beyond the reference (DESIGN §6): the 0x0D trailer of frames and beacons and a beacon's
``remaining`` count are checked (SeaStreamer always writes them right; checking names damage
sooner and keeps seeks, which trust ``remaining``, honest); empty stream keys are refused; a file
name longer than 111 bytes is cut at a UTF-8 boundary instead of crashing.
"""

from __future__ import annotations

import re
import struct
import sys
from array import array as _array
from bisect import bisect_left as _bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate as _accumulate
from itertools import repeat as _repeat
from operator import attrgetter

from streamkit.errors import FileFormatError, UsageError
from streamkit.formats.crc16 import CRC16_INIT, crc16, crc16_calc, word_table
from streamkit.message import INTERNAL_KEY, Message, validate_stream_key

__all__ = [
    "DEFAULT_BEACON_INTERVAL",
    "EOS_PAYLOAD",
    "HEADER_SIZE",
    "MAX_NAME_BYTES",
    "MIN_BEACON_INTERVAL",
    "NEED_DATA",
    "Beacon",
    "FileHeader",
    "Item",
    "Marker",
    "SsDecoder",
    "SsEncoder",
    "StreamState",
    "decode_header",
    "encode_beacon",
    "encode_header",
    "fit_file_name",
    "is_eos",
    "num_markers",
    "parse_beacon",
    "validate_beacon_interval",
]

HEADER_SIZE = 128
MAGIC = b"Ss"
VERSION = 1
DEFAULT_BEACON_INTERVAL = 1 << 20
MIN_BEACON_INTERVAL = 128
MAX_BEACON_INTERVAL = 0xFFFFFFFF
MAX_NAME_BYTES = 111
MAX_PAYLOAD = 0xFFFFFFFF
EOS_PAYLOAD = b"EOS"
MAX_TIMESTAMP = 253402300799999
"""9999-12-31T23:59:59.999: the last instant the canonical timestamp text can show."""

_INTERNAL_BYTES = INTERNAL_KEY.encode("ascii")
_KEY_BYTES = re.compile(rb"[A-Za-z0-9._-]{1,249}")
_calc = crc16_calc
_MARKER_MAX = 282  # the largest possible marker: 1 + 255 + 8 + 8 + 8 + 2
_FRAME_HEAD = struct.Struct(">QQQI")
_FRAME_TAIL = struct.Struct(">HB")
_U64 = struct.Struct(">Q")
_SEQ_TS_SIZE = struct.Struct(">QQI")  # a frame head after its key and shard
_LITTLE_ENDIAN = sys.byteorder == "little"
_shard_of = attrgetter("shard_id")
_stream_key_of = attrgetter("stream_key")
_payload_of = attrgetter("payload")
_seq_of = attrgetter("seq")
_timestamp_of = attrgetter("timestamp")
_MARKER_HEAD = struct.Struct(">QQQH")
_BEACON_HEAD = struct.Struct(">BIB")
_U64_U32 = struct.Struct(">QI")


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
"""``next_item()``'s answer when the bytes fed so far hold no complete item."""


@dataclass(frozen=True, slots=True)
class FileHeader:
    file_name: str
    created_at: int
    """Milliseconds since the epoch, UTC."""
    beacon_interval: int


@dataclass(frozen=True, slots=True)
class Marker:
    stream_key: str
    shard_id: int
    seq: int
    timestamp: int
    running_checksum: int


@dataclass(frozen=True, slots=True)
class Beacon:
    offset: int
    """Absolute file offset: a multiple of the beacon interval."""
    index: int
    """``offset // beacon_interval`` (the first beacon is 1)."""
    remaining: int
    markers: tuple[Marker, ...]
    size: int


Item = FileHeader | Message | Beacon


def is_eos(message: Message) -> bool:
    """True for SeaStreamer's end-of-stream frame, where readers stop."""
    return message.stream_key == INTERNAL_KEY and message.payload == EOS_PAYLOAD


def num_markers(beacon_interval: int) -> int:
    """How many markers a beacon holds at most (SeaStreamer's rule, half of what would fit)."""
    return min(255, (beacon_interval - 7) // _MARKER_MAX) // 2


def validate_beacon_interval(interval: int, where: str = "--beacon-interval") -> int:
    if not MIN_BEACON_INTERVAL <= interval <= MAX_BEACON_INTERVAL:
        raise UsageError(
            f"beacon interval {interval} is out of range: use {MIN_BEACON_INTERVAL} to "
            f"{MAX_BEACON_INTERVAL} bytes (default {DEFAULT_BEACON_INTERVAL})",
            where,
        )
    return interval


def fit_file_name(name: str) -> str:
    """``name`` cut (at a character boundary) to the 111 UTF-8 bytes the header has room for."""
    data = name.encode("utf-8")
    if len(data) <= MAX_NAME_BYTES:
        return name
    return data[:MAX_NAME_BYTES].decode("utf-8", errors="ignore")


def encode_header(file_name: str, created_at: int, beacon_interval: int) -> bytes:
    validate_beacon_interval(beacon_interval)
    name = fit_file_name(file_name).encode("utf-8")
    head = MAGIC + bytes((VERSION, len(name))) + name + _U64_U32.pack(created_at, beacon_interval)
    return head + bytes(HEADER_SIZE - 1 - len(head)) + b"\r"


def decode_header(data: bytes, where: str = "<bytes>") -> FileHeader:
    """Parse the first 128 bytes of a file (``data`` must hold at least that many)."""

    def bad(what: str, offset: int) -> FileFormatError:
        return FileFormatError(what, f"{where} at byte {offset}", offset=offset)

    if data[:2] != MAGIC:
        raise bad(
            f"not a .ss file: it starts with {bytes(data[:2])!r}, not the magic bytes b'Ss'", 0
        )
    if data[2] != VERSION:
        raise bad(f"unsupported .ss version {data[2]} (streamkit reads version 1)", 2)
    length = data[3]
    if length > MAX_NAME_BYTES:
        raise bad(f"header file name length {length} exceeds the 111 bytes a header holds", 3)
    try:
        name = bytes(data[4 : 4 + length]).decode("utf-8")
    except UnicodeDecodeError:
        raise bad("header file name is not UTF-8", 4) from None
    created_at, interval = _U64_U32.unpack_from(data, 4 + length)
    if interval < MIN_BEACON_INTERVAL:
        raise bad(f"header beacon interval {interval} is below the minimum of 128", 12 + length)
    return FileHeader(name, created_at, interval)


_tails: list[bytes] = []


def _frame_tails() -> list[bytes]:
    """Every possible frame tail (checksum + 0x0D), indexed by checksum: a lookup instead of a
    ``pack`` call per frame (65,536 of 3 bytes each, built on first use)."""
    if not _tails:
        _tails.extend(map(_FRAME_TAIL.pack, range(65536), _repeat(13)))
    return _tails


def _too_late(timestamp: int) -> str:
    return (
        f"timestamp {timestamp} is after 9999-12-31T23:59:59.999, which .ss readers "
        "(SeaStreamer's and ours) refuse"
    )


def _key_prefix(key: str) -> bytes:
    data = validate_stream_key(key).encode("ascii")
    return bytes((len(data),)) + data


def _encode_markers(markers: Iterable[Marker]) -> bytes:
    parts = []
    for m in markers:
        parts.append(_key_prefix(m.stream_key))
        parts.append(_MARKER_HEAD.pack(m.shard_id, m.seq, m.timestamp, m.running_checksum))
    return b"".join(parts)


def encode_beacon(remaining: int, markers: Sequence[Marker]) -> bytes:
    if len(markers) > 255:
        raise UsageError(f"a beacon holds at most 255 markers, not {len(markers)}")
    return _BEACON_HEAD.pack(13, remaining, len(markers)) + _encode_markers(markers) + b"\r"


def parse_beacon(
    data: bytes, offset: int, header: FileHeader, source: str = "<bytes>"
) -> Beacon | None:
    """The beacon whose bytes start ``data`` (found at ``offset``), or None if ``data`` is short."""
    decoder = SsDecoder(source=source, start=offset, header=header)
    decoder.feed(data)
    return decoder._parse_beacon(offset)


class StreamState:
    """What a beacon marker says about one (key, shard): highest seq and ts, running CRC."""

    __slots__ = ("running", "seq", "timestamp")

    def __init__(self, seq: int, timestamp: int, running: int = CRC16_INIT) -> None:
        self.seq = seq
        self.timestamp = timestamp
        self.running = running

    def __repr__(self) -> str:
        return (
            f"StreamState(seq={self.seq}, timestamp={self.timestamp}, running={self.running:#06x})"
        )


class SsEncoder:
    """Turns batches of frames into the bytes to append, beacons placed and frames spliced.

    ``position`` is the file size the output will be appended at. ``streams`` is the marker
    state per (key, shard), rebuilt by scanning when appending to an existing file; it also gives
    the next sequence number of each stream.
    """

    def __init__(
        self,
        beacon_interval: int = DEFAULT_BEACON_INTERVAL,
        *,
        position: int = 0,
        streams: dict[tuple[str, int], StreamState] | None = None,
    ) -> None:
        self.interval = validate_beacon_interval(beacon_interval)
        self.position = position
        self.streams: dict[tuple[str, int], StreamState] = streams if streams is not None else {}
        self.markers_written = 0
        self.failed: ValueError | None = None
        self._order: list[tuple[str, int]] | None = None
        self._prefixes: dict[str, bytes] = {}

    def header(self, file_name: str, created_at: int) -> bytes:
        """The header of a new file (and the empty beacon at 128 when I is 128)."""
        if self.position != 0:
            raise ValueError("a header goes at offset 0")
        data = encode_header(file_name, created_at, self.interval)
        self.position = HEADER_SIZE
        return data + self.resume()

    def resume(self) -> bytes:
        """The beacon due when the write position sits exactly on a multiple of I (else b"")."""
        if self.position > 0 and self.position % self.interval == 0:
            beacon = self._beacon(0)
            self.position += len(beacon)
            return beacon
        return b""

    def next_seq(self, key: str, shard: int = 0) -> int:
        """The sequence number a producer gives the next message of a stream (first: 1)."""
        state = self.streams.get((key, shard))
        return 1 if state is None else state.seq + 1

    def encode_messages(self, messages: Iterable[Message], key: str | None = None) -> bytes:
        """Like ``encode`` for Messages (their seq, shard and timestamp are kept); ``key``
        replaces every message's stream key. The relay path: no tuples built per message, and
        a batch of one stream is encoded column-wise in C (``_encode_run``)."""
        self.failed = None
        batch = messages if isinstance(messages, (list, tuple)) else list(messages)
        if len(batch) >= 16:
            fast = self._encode_run(batch, key)
            if fast is not None:
                return fast
        return self._encode_loop(batch, key)

    def _encode_run(self, messages: Sequence[Message], key: str | None) -> bytes | None:
        """All messages of one (key, shard) with non-empty payloads, in a few C-level passes.

        Column maps build every frame's head, tail and CRC; the stream's running checksum is one
        CRC over the packed frame checksums; only a frame that crosses a beacon offset goes
        through ``_encode_loop`` (which splices it). Returns None, with no state changed, when
        the batch does not qualify or a field is out of range (the loop then names the frame).
        """
        shards = set(map(_shard_of, messages))
        if len(shards) != 1:
            return None
        if key is None:
            names = set(map(_stream_key_of, messages))
            if len(names) != 1:
                return None
            key = names.pop()
        shard = shards.pop()
        payloads = list(map(_payload_of, messages))
        sizes = list(map(len, payloads))
        if 0 in sizes:
            return None
        prefix = self._prefixes.get(key)
        if prefix is None:
            try:
                prefix = self._prefixes[key] = _key_prefix(key)
            except UsageError:
                return None
        seqs = list(map(_seq_of, messages))
        stamps = list(map(_timestamp_of, messages))
        if max(stamps) > MAX_TIMESTAMP:
            return None
        try:
            lead = prefix + _U64.pack(shard)  # key and shard: the same bytes in every frame
            heads = list(map(_SEQ_TS_SIZE.pack, seqs, stamps, sizes))
        except struct.error:
            return None
        crcs = list(map(_calc, payloads, _repeat(CRC16_INIT, len(sizes))))
        tails = list(map(_frame_tails().__getitem__, crcs))
        overhead = len(prefix) + _FRAME_HEAD.size + _FRAME_TAIL.size
        stream = (key, shard)
        state = self.streams.get(stream)
        if state is None:
            state = self.streams[stream] = StreamState(seqs[0], stamps[0])
            self._order = None
        out: list[bytes] = []
        # offsets[i]: bytes of frames [0, i) once encoded back to back
        offsets = list(_accumulate(map(overhead.__add__, sizes), initial=0))
        first, count = 0, len(messages)
        while first < count:
            base = self.position - offsets[first]
            boundary = (self.position // self.interval + 1) * self.interval
            # frames [first, stop) end before the next beacon offset
            stop = _bisect_left(offsets, boundary - base, first + 1) - 1
            if stop > first:
                state.seq = max(state.seq, max(seqs[first:stop]))
                state.timestamp = max(state.timestamp, max(stamps[first:stop]))
                words = _array("H", crcs[first:stop])
                if _LITTLE_ENDIAN:
                    words.byteswap()
                state.running = _calc(words.tobytes(), state.running)
                parts = [lead] * (4 * (stop - first))  # lead, head, payload, tail per frame
                parts[1::4] = heads[first:stop]
                parts[2::4] = payloads[first:stop]
                parts[3::4] = tails[first:stop]
                out.append(b"".join(parts))
                self.position = base + offsets[stop]
            if stop < count:  # this frame reaches the beacon offset: the loop splices it
                out.append(self._encode_loop(messages[stop : stop + 1], key))
                stop += 1
            first = stop
        return b"".join(out)

    def _encode_loop(self, messages: Iterable[Message], key: str | None) -> bytes:
        """The frame-by-frame path (several streams in a batch, a frame that meets a beacon)."""
        return self.encode(
            (key or m.stream_key, m.shard_id, m.seq, m.timestamp, m.payload) for m in messages
        )

    def eos(self, timestamp: int) -> bytes:
        return self.encode(((INTERNAL_KEY, 0, 0, timestamp, EOS_PAYLOAD),))

    def encode(self, frames: Iterable[tuple[str, int, int, int, bytes]]) -> bytes:
        """Frames as ``(key, shard, seq, timestamp, payload)`` → the bytes to append.

        Keys must already be valid stream keys. Numbers must fit their fields: at the first
        frame that does not, encoding stops, the bytes of the frames before it are returned and
        ``failed`` holds the ValueError to raise after writing them.
        """
        self.failed = None
        parts: list[bytes] = []
        append = parts.append
        pos = self.position
        interval = self.interval
        boundary = (pos // interval + 1) * interval
        streams = self.streams
        prefixes = self._prefixes
        table = word_table()
        head_pack = _FRAME_HEAD.pack
        tail_pack = _FRAME_TAIL.pack
        try:
            for key, shard, seq, ts, payload in frames:
                if ts > MAX_TIMESTAMP:
                    raise UsageError(_too_late(ts), f"message {key}:{shard}:{seq}")
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = _key_prefix(key)
                crc = _calc(payload, CRC16_INIT) if payload else CRC16_INIT
                head = prefix + head_pack(shard, seq, ts, len(payload))
                tail = tail_pack(crc, 13)
                state = streams.get((key, shard))
                if state is None:
                    state = streams[(key, shard)] = StreamState(seq, ts)
                    self._order = None
                else:
                    if seq > state.seq:
                        state.seq = seq
                    if ts > state.timestamp:
                        state.timestamp = ts
                state.running = table[state.running ^ crc]
                end = pos + len(head) + len(payload) + 3
                if end < boundary:
                    append(head)
                    append(payload)
                    append(tail)
                    pos = end
                else:
                    pos = self._splice(head + payload + tail, pos, append)
                    boundary = (pos // interval + 1) * interval
        except (struct.error, UsageError) as exc:
            # The frames before the bad one are encoded and already in the stream state: return
            # them, and leave the error for the caller to raise once they are written.
            self.failed = ValueError(f"cannot encode a frame: {exc}")
        self.position = pos
        return b"".join(parts)

    def _splice(self, frame: bytes, pos: int, append: object) -> int:
        assert callable(append)
        interval = self.interval
        done = 0
        while done < len(frame):
            take = min(len(frame) - done, interval - pos % interval)
            append(frame[done : done + take])
            done += take
            pos += take
            if pos % interval == 0:
                beacon = self._beacon(len(frame) - done)
                append(beacon)
                pos += len(beacon)
        return pos

    def _beacon(self, remaining: int) -> bytes:
        """A beacon from the current state, rotating through streams when they outnumber slots."""
        if self._order is None:
            self._order = sorted(self.streams, key=lambda ks: (ks[0].encode("ascii"), ks[1]))
        order = self._order
        count = min(len(order), num_markers(self.interval))
        chosen: list[Marker] = []
        if count:
            start = self.markers_written % len(order)
            for i in range(count):
                key, shard = order[(start + i) % len(order)]
                s = self.streams[(key, shard)]
                chosen.append(Marker(key, shard, s.seq, s.timestamp, s.running))
            self.markers_written += count
        return encode_beacon(remaining, chosen)


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


class SsDecoder:
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
