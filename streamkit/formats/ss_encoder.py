"""The ``.ss`` encoder: batches of messages to the bytes to append, beacons placed, frames spliced.

Sans-IO like the decoder: it returns bytes and keeps the per-stream marker state
(``StreamState``) a writer needs to resume an existing file. Layout: ``formats/ss.py``.
"""

from __future__ import annotations

import struct
from array import array as _array
from bisect import bisect_left as _bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate as _accumulate
from itertools import repeat as _repeat

from streamkit.errors import UsageError
from streamkit.formats.crc16 import CRC16_INIT, word_table
from streamkit.formats.ss_header import (
    _FRAME_HEAD,
    _FRAME_TAIL,
    _LITTLE_ENDIAN,
    _SEQ_TS_SIZE,
    _U64,
    DEFAULT_BEACON_INTERVAL,
    EOS_PAYLOAD,
    HEADER_SIZE,
    MAX_TIMESTAMP,
    Marker,
    _calc,
    _key_prefix,
    _payload_of,
    _seq_of,
    _shard_of,
    _stream_key_of,
    _timestamp_of,
    encode_beacon,
    encode_header,
    num_markers,
    validate_beacon_interval,
)
from streamkit.message import INTERNAL_KEY, Message

__all__ = ["SsEncoder", "StreamState"]

_tails: list[bytes] = []


def _frame_tails() -> list[bytes]:
    """Every possible frame tail (checksum + 0x0D), indexed by checksum: a lookup instead of a
    ``pack`` call per frame (65,536 of 3 bytes each, built on first use)."""
    if not _tails:
        _tails.extend(map(_FRAME_TAIL.pack, range(65536), _repeat(13)))
    return _tails


_TABLE_AFTER_CALLS = 4
"""Calls of the frame-by-frame loop an encoder makes before it builds the checksum-step table."""


def _too_late(timestamp: int) -> str:
    return (
        f"timestamp {timestamp} is after 9999-12-31T23:59:59.999, which .ss readers "
        "(SeaStreamer's and ours) refuse"
    )


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
        self._loop_calls = 0

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
        # The 65,536-entry table of running-checksum steps is worth building only for a writer
        # that keeps coming through this loop; a one-off (the EOS frame of a short relay, a
        # small append) steps the checksum by a CRC of two bytes, the same value.
        self._loop_calls += 1
        table = word_table() if self._loop_calls > _TABLE_AFTER_CALLS else None
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
                if table is not None:
                    state.running = table[state.running ^ crc]
                else:
                    state.running = _calc(crc.to_bytes(2, "big"), state.running)
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
