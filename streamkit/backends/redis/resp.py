"""The Redis path's per-message work in pure Python: XADD packing and XREAD entries → Messages.

This is the readable reference and the fallback; ``resp_compiled`` does the same in C and
``codec`` picks one at import (``STREAMKIT_PURE_PYTHON=1`` forces this one). Both take and give
the same values: tests/backends/redis run every test of this module against both, and
hypothesis compares them on random input.

Packing: an *entry* is ``(Redis key, payload, prefix, ms)``; ``prefix`` is the RESP head of the
command up to the id (``XADD key [MAXLEN ~ n]``, from the producer's cache) and ``ms`` the
millisecond of the id ``<ms>-*`` the producer chose, or ``-1`` for ``*`` (the server picks).
The producer keeps the entries (not only the bytes) because a batch may be split by cluster
node and sent again after a lost connection.

Acks: the producer needs only the error replies of a batch of XADDs, not the ids. ``skip_replies``
walks the plain replies (``$n`` bulk strings, ``+`` and ``:`` lines) in the bytes read from the
socket and stops at anything else (an error, an array, a null) for hiredis to parse. The pure
path does not use it (hiredis reads every reply there, as before); it is the reference that
the C one is tested against.

Reading: ``convert_entries`` turns the *plain* entries of one stream's reply into Messages,
from ``start`` on, and stops at the first one that is not plain (an id ``MS-N`` with
N ≥ 65535 or MS ≥ 2^48, a deleted pending entry, a payload field that is not the first field),
or at the first one past the shard's end or ``--until``. ``reading.read_entries`` handles the
entries it stops at, one at a time, with the full rules, and calls it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streamkit.backends.redis.ids import MAX_SUB
from streamkit.message import Message

__all__ = [
    "AUTO",
    "MAX_MS",
    "MORE",
    "OTHER",
    "Convert",
    "Entry",
    "Pack",
    "Skip",
    "convert_entries",
    "pack_xadd",
    "skip_replies",
]

AUTO = -1
"""The ``ms`` of an entry whose id the server picks (``*``)."""
MAX_MS = 1 << 48
"""The first millisecond that no sequence number can hold (``MS << 16`` past 64 bits)."""

Entry = tuple[str, bytes, bytes, int]
"""(Redis key, payload, the RESP prefix of its XADD, the id's millisecond or AUTO)."""

Pack = Callable[[Sequence[Entry]], bytes]
"""The type of ``pack_xadd`` (either implementation)."""
Convert = Callable[[Sequence[Any], int, str, int, int, int, bytes, list[Message]], tuple[int, bool]]
"""The type of ``convert_entries`` (either implementation)."""
Skip = Callable[[bytes, int, int], tuple[int, int, int]]
"""The type of ``skip_replies`` (either implementation)."""

_AUTO_ID = b"$1\r\n*\r\n$3\r\nmsg\r\n"


def _ts_id(ms: int) -> bytes:
    text = b"%d-*" % ms
    return b"$%d\r\n%s\r\n$3\r\nmsg\r\n" % (len(text), text)


def pack_xadd(entries: Sequence[Entry]) -> bytes:
    """One buffer with the XADD command of every entry: ``prefix``, id, ``msg``, payload."""
    out: list[bytes] = []
    append = out.append
    id_ms, id_bytes = AUTO, _AUTO_ID
    for _key, payload, prefix, ms in entries:
        if ms != id_ms:
            id_ms, id_bytes = ms, _AUTO_ID if ms == AUTO else _ts_id(ms)
        append(b"%s%s$%d\r\n%s\r\n" % (prefix, id_bytes, len(payload), payload))
    return b"".join(out)


def convert_entries(
    entries: Sequence[Any],
    start: int,
    stream_key: str,
    shard_id: int,
    end_seq: int,
    until_ms: int,
    field_name: bytes,
    out: list[Message],
) -> tuple[int, bool]:
    """Append a Message for each plain entry from ``entries[start]`` on; returns the index of
    the first entry not converted and whether it is past ``end_seq`` (a sequence number) or
    ``until_ms`` (a millisecond), which ends the shard's read."""
    append = out.append
    for index in range(start, len(entries)):
        entry_id, fields = entries[index]
        ms_text, _, sub_text = entry_id.partition(b"-")
        ms, sub = int(ms_text), int(sub_text)
        if sub >= MAX_SUB or ms >= MAX_MS:
            return index, False
        seq = (ms << 16) | sub
        if seq > end_seq or ms > until_ms:  # before the fields, as reading.py's rules
            return index, True
        if fields is None or fields[0] != field_name:
            return index, False
        append(Message(stream_key, shard_id, seq, ms, fields[1]))
    return len(entries), False


DONE, MORE, OTHER = 0, 1, 2
"""``skip_replies`` stopped because: ``count`` replies were skipped; the data ends within a
reply; the reply at ``pos`` is not a plain one (hiredis parses it)."""
_LONGEST_HEADER = 32


def skip_replies(buf: bytes, pos: int, count: int) -> tuple[int, int, int]:
    """Skip up to ``count`` plain replies of ``buf`` from ``pos``; returns the position after
    the last one skipped, how many, and why it stopped (DONE, MORE or OTHER)."""
    skipped, end = 0, len(buf)
    while skipped < count:
        if pos >= end:
            return pos, skipped, MORE
        kind = buf[pos]
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if kind == 0x24 and end - pos >= _LONGEST_HEADER:
                return pos, skipped, OTHER
            return pos, skipped, MORE if kind in b"$+:" else OTHER
        if kind == 0x24:  # $<length>\r\n<bytes>\r\n
            digits = buf[pos + 1 : eol]
            if not digits.isdigit() or len(digits) > 18:
                return pos, skipped, OTHER
            stop = eol + 4 + int(digits)
            if stop > end:
                return pos, skipped, MORE
            if buf[stop - 2 : stop] != b"\r\n":
                return pos, skipped, OTHER
            pos = stop
        elif kind == 0x2B or kind == 0x3A:  # +line, :number
            pos = eol + 2
        else:
            return pos, skipped, OTHER
        skipped += 1
    return pos, skipped, DONE
