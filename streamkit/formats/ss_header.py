"""The ``.ss`` container's header, constants, items and beacons (layout: ``formats/ss.py``).

What both halves of the codec share: the 128-byte file header, the items a decoder yields
(``FileHeader``, ``Message``, ``Beacon``), the ``NEED_DATA`` sentinel, and the beacon encoding.
The encoder lives in ``ss_encoder.py``, the decoder in ``ss_decoder.py``.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from streamkit.errors import FileFormatError, UsageError
from streamkit.formats.crc16 import crc16_calc
from streamkit.message import INTERNAL_KEY, Message, validate_stream_key

__all__ = [
    "DEFAULT_BEACON_INTERVAL",
    "EOS_PAYLOAD",
    "HEADER_SIZE",
    "MAX_NAME_BYTES",
    "MAX_TIMESTAMP",
    "MIN_BEACON_INTERVAL",
    "NEED_DATA",
    "Beacon",
    "FileHeader",
    "Item",
    "Marker",
    "decode_header",
    "encode_beacon",
    "encode_header",
    "fit_file_name",
    "is_eos",
    "num_markers",
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
