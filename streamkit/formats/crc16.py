"""CRC-16/CDMA2000, the checksum of ``.ss`` frames, and the running checksum of beacons.

Parameters: width 16, poly 0xC867, init 0xFFFF, no reflection, xorout 0 (check value of
``b"123456789"`` is 0x4C06). Because there is no reflection and no xorout, a CRC can be continued:
``crc16(b, crc16(a)) == crc16(a + b)``, which is what a beacon's running checksum is — a CRC16
continued, message by message, over the two big-endian bytes of each frame checksum.

``crc16`` uses ``fastcrc`` (a small, typed Rust extension over the catalogued CRC algorithms,
wheels for CPython 3.10+ on x86_64 and aarch64): a 100-byte payload costs about 0.09 µs there,
against 0.43 µs in ``anycrc`` (whose Cython memoryview set-up dominates short payloads; we used
it first) and ~15 µs in a Python table loop (``crc16_python``, kept for the benchmark comparison
in scripts/benches/file.py and as a test oracle). Frame checksums are per payload, so the
per-call cost is what matters.

``running_update`` needs no byte loop at all: feeding 16 bits into a 16-bit CRC register is a
multiplication by x^16 modulo the polynomial, so ``T[crc ^ word]`` with one 65,536-entry table
does it in a single lookup (built on first use, ~3 ms).

When the C codec is in use (the extension is built and ``STREAMKIT_PURE_PYTHON`` is not ``1``,
as ``formats/codec.py`` decides), ``crc16`` is the extension's own ``crc16`` and ``fastcrc`` is not
imported at all: the C frame loops already check every CRC, the few Python-side calls (a
header, ``verify``'s running checksums) are short payloads where its call is cheaper than
fastcrc's (0.22 µs against 0.33 µs for 100 bytes), and importing fastcrc's five modules was
start-up time for every command that reads a ``.ss`` file. The C loop goes byte by byte, so
``crc16`` still hands a payload of 4 KiB or more to fastcrc (imported at the first one). The
pure path uses fastcrc throughout.
"""

from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Callable
from typing import cast

__all__ = [
    "CRC16_INIT",
    "Bytes",
    "crc16",
    "crc16_calc",
    "crc16_python",
    "running_update",
    "word_table",
]

CRC16_INIT = 0xFFFF

Bytes = bytes | bytearray | memoryview
"""Anything with the buffer protocol that the CRC functions take (3.10 has no abc.Buffer)."""
_POLY = 0xC867


def _fastcrc_calc() -> Callable[[Bytes, int], int]:
    from fastcrc import crc16 as fastcrc16

    calc: Callable[[Bytes, int], int] = fastcrc16.cdma2000
    return calc


def _compiled_calc() -> Callable[[Bytes, int], int] | None:
    """The C codec's CRC when it is in use (None: the pure path, which uses fastcrc)."""
    if os.environ.get("STREAMKIT_PURE_PYTHON", "") == "1":
        return None
    try:
        from streamkit.formats._speedups import crc16 as compiled
    except ImportError:
        return None
    # Typed ``bytes`` in _speedups.pyi, but it parses ``y*``: any buffer, like fastcrc.
    return cast("Callable[[Bytes, int], int]", compiled)


_compiled = _compiled_calc()
_calc = crc16_calc = _compiled if _compiled is not None else _fastcrc_calc()
"""The compiled function itself, ``crc16_calc(data, crc)``, for hot loops of short payloads."""

_LARGE = 4096
"""From this many bytes ``crc16`` hands the C codec's byte loop over to fastcrc (imported then):
about 1.5 ns a byte against fastcrc's 0.04, so a 4 KiB payload saves ~5 µs a call, and a file of
small payloads still never imports it."""
_large: list[Callable[[Bytes, int], int]] = []


def crc16(data: Bytes, crc: int = CRC16_INIT) -> int:
    """CRC-16/CDMA2000 of ``data``, continuing from ``crc`` (default: a fresh CRC)."""
    size = len(memoryview(data))
    if not size:
        return crc
    if size >= _LARGE and _compiled is not None:
        if not _large:
            _large.append(_fastcrc_calc())
        large: int = _large[0](data, crc)
        return large
    result: int = _calc(data, crc)
    return result


def _byte_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_TABLE = _byte_table()


def crc16_python(data: Bytes, crc: int = CRC16_INIT) -> int:
    """The same CRC as ``crc16`` in pure Python (one table lookup per byte): the slow reference."""
    table = _TABLE
    for byte in memoryview(data).cast("B"):
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


_word_table: list[int] = []


def _build_word_table() -> list[int]:
    """Feeding a word is linear over GF(2) (no reflection, no xorout), so ``T[hi << 8 | lo] ==
    T[hi << 8] ^ T[lo]``: 512 entries by the byte rule, the other 65,024 by XOR. Each row of 256
    (one ``hi``) is one XOR of two 4,096-bit integers holding the 256 ``lo`` entries and ``T[hi <<
    8]`` repeated as 16-bit lanes, instead of 256 Python XORs: about 40% fewer instructions than
    a list comprehension (callgrind), and this is start-up time for every command that writes
    a ``.ss`` file (the encoder's beacon path) or checks a big one."""
    table = _TABLE

    def feed(word: int) -> int:
        r = ((word << 8) & 0xFFFF) ^ table[word >> 8]
        return ((r << 8) & 0xFFFF) ^ table[r >> 8]

    order = sys.byteorder  # array("H") is native-endian; the integers use the same order
    low = int.from_bytes(array("H", [feed(lo) for lo in range(256)]).tobytes(), order)
    lanes = int.from_bytes(array("H", [1] * 256).tobytes(), order)
    rows = b"".join((low ^ (feed(hi << 8) * lanes)).to_bytes(512, order) for hi in range(256))
    return array("H", rows).tolist()


def word_table() -> list[int]:
    """``T[r ^ w]`` = the CRC register ``r`` after feeding the 16-bit big-endian word ``w``."""
    if not _word_table:
        _word_table.extend(_build_word_table())
    return _word_table


def running_update(running: int, frame_crc: int) -> int:
    """Continue a running checksum over a frame checksum's two big-endian bytes."""
    return word_table()[running ^ frame_crc]
