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

The code is split along those concepts: ``ss_header.py`` (constants, header, items, beacons),
``ss_encoder.py`` (``SsEncoder``), ``ss_decoder.py`` (``SsDecoder``) and ``ss_tail.py`` (torn
tail or damage at the end of the data). This module is the public face: import from here.
``SsEncoder`` and ``StreamState`` load on first use (PEP 562): a command that only reads a file
(``decode``, ``verify``, ``stat``, a file → stdout relay) never imports the encoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamkit.lazy as lazy
from streamkit.formats.ss_decoder import SsDecoder, parse_beacon
from streamkit.formats.ss_header import (
    DEFAULT_BEACON_INTERVAL,
    EOS_PAYLOAD,
    HEADER_SIZE,
    MAX_NAME_BYTES,
    MAX_TIMESTAMP,
    MIN_BEACON_INTERVAL,
    NEED_DATA,
    Beacon,
    FileHeader,
    Item,
    Marker,
    decode_header,
    encode_beacon,
    encode_header,
    fit_file_name,
    is_eos,
    num_markers,
    validate_beacon_interval,
)
from streamkit.message import Message as Message

if TYPE_CHECKING:
    from streamkit.formats.ss_encoder import SsEncoder, StreamState

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


_LAZY = {
    "SsEncoder": "streamkit.formats.ss_encoder",
    "StreamState": "streamkit.formats.ss_encoder",
}


def __getattr__(name: str) -> Any:
    """``SsEncoder`` and ``StreamState``, imported from ss_encoder.py on first use."""
    return lazy.load(__name__, _LAZY, name)
