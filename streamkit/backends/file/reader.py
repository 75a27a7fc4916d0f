"""Reading a ``.ss`` file: replay, snapshot or follow reads, and seeks by beacon bisection.

Synchronous on purpose: reads of a local file take microseconds, so the async consumer
(``file/streamer.py``) calls this directly and only sleeps between polls when following; the
``decode`` and ``verify`` commands use it without an event loop at all.

Every byte taken from the file goes through ``_read``, which counts it in ``bytes_read``: the
proof that a seek on a large file reads a few beacons and one interval, not the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from streamkit.errors import FileFormatError, UsageError
from streamkit.formats.codec import SsDecoder  # the C frame loop when built
from streamkit.formats.ss import (
    HEADER_SIZE,
    Beacon,
    FileHeader,
    Item,
    Marker,
    decode_header,
    num_markers,
    parse_beacon,
)
from streamkit.message import INTERNAL_KEY
from streamkit.uri import _redact_text, parse_stream_uri

__all__ = ["DIRECTORY_HINT", "READ_CHUNK", "SeekTarget", "SsFileReader", "ss_path"]

READ_CHUNK = 1 << 20

DIRECTORY_HINT = (
    "is a directory, not a .ss file (in a file:// URI the part after the last '/' lists stream "
    "keys: write file:///dir/name.ss/ or file:///dir/name.ss/KEY)"
)
_BEACON_PEEK = 4096

_EOS_HEAD = bytes((len(INTERNAL_KEY),)) + INTERNAL_KEY.encode("ascii") + bytes(16)
_EOS_TAIL = b"\x00\x00\x00\x03EOS\xed\x7c\x0d"
_EOS_FRAME_SIZE = len(_EOS_HEAD) + 8 + len(_EOS_TAIL)

_LEFT, _RIGHT, _UNDECIDED = 0, 1, 2
_PROBES = 8
"""Beacons looked at past an undecided one (no marker for the wanted streams) in a bisection."""


@dataclass(frozen=True)
class SeekTarget:
    """Where a consumer starts: the first wanted message with ``seq >= seq`` and ``ts >= since``.

    ``keys`` None means every stream except SeaStreamer's internal one.
    """

    keys: frozenset[str] | None = None
    seq: int | None = None
    since: int | None = None

    def wants(self, key: str) -> bool:
        return key != INTERNAL_KEY if self.keys is None else key in self.keys

    def before(self, marker: Marker) -> bool:
        """True when every message a marker covers comes before the target."""
        return (self.since is not None and marker.timestamp < self.since) or (
            self.seq is not None and marker.seq < self.seq
        )


class SsFileReader:
    """One open ``.ss`` file, read forward from a frame boundary.

    ``limit`` None follows the file as it grows; otherwise reading stops at ``limit`` bytes
    (the size at open, for ``--no-follow``; with ``before_eos``, a final EOS excluded: what a
    consumer wants), extended only to finish a frame a writer is still writing past it.
    """

    def __init__(
        self,
        path: str,
        *,
        follow: bool = False,
        before_eos: bool = False,
        chunk_size: int = READ_CHUNK,
    ) -> None:
        self.path = path
        try:
            self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise UsageError("no such file", path) from None
        except IsADirectoryError:
            raise UsageError(DIRECTORY_HINT, path) from None
        except OSError as exc:
            raise UsageError(f"cannot open: {exc.strerror}", path) from None
        self.follow = follow
        self.chunk_size = chunk_size
        self.bytes_read = 0
        self.limit: int | None = None
        if not follow:
            self.limit = self._end_at_open() if before_eos else self.size()
        self.header: FileHeader | None = None
        self.decoder = SsDecoder(source=path)
        self._fed = 0
        self._done = False
        self.ends_with_eos = False
        """Set by ``seek_end``: the position is the start of the EOS a clean close left."""
        self.eos_end = 0
        self._park: tuple[int, int, bytes] | None = None

    def close(self) -> None:
        self._file.close()

    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def _end_at_open(self) -> int:
        """Where a non-following reader stops: the file's end now, before a final EOS.

        The next writer resumes the file on top of that EOS, so bytes from its first one on may
        be new messages by the time they are read. (A lookalike tail that is not an EOS is
        harmless: a frame that crosses the limit is finished before the reader stops.)
        """
        size = self.size()
        if size >= HEADER_SIZE + _EOS_FRAME_SIZE:
            tail = os.pread(self._file.fileno(), _EOS_FRAME_SIZE, size - _EOS_FRAME_SIZE)
            if tail.startswith(_EOS_HEAD) and tail.endswith(_EOS_TAIL):
                return size - _EOS_FRAME_SIZE
        return size

    def park(self, start: int, end: int) -> None:
        """Wait on the EOS frame at ``start``..``end`` (the file's end) instead of ending.

        A follower treats a clean close as a pause: the next writer resumes the file on top of
        that EOS, so the reader goes back to its first byte and reads again once it changed.
        """
        self._park = (start, end, self._read(start, end - start))
        self.start_at(start)

    def parked(self) -> bool:
        """True while the file still ends with the EOS given to ``park``."""
        if self._park is None:
            return False
        start, end, frame = self._park
        if self.size() == end and self._read(start, end - start) == frame:
            return True
        self._park = None
        return False

    def peek(self, offset: int, n: int) -> bytes:
        """Bytes at ``offset`` for bookkeeping (position fingerprints), not counted as read."""
        return os.pread(self._file.fileno(), n, offset)

    def _read(self, offset: int, n: int) -> bytes:
        data = os.pread(self._file.fileno(), n, offset)
        self.bytes_read += len(data)
        return data

    # ---- the header and positioning ---------------------------------------------------------

    def read_header(self) -> FileHeader | None:
        """The header, or None while the file is shorter than one (empty, or being created)."""
        if self.header is None:
            data = self._read(0, HEADER_SIZE)
            if len(data) < HEADER_SIZE:
                return None
            self.header = decode_header(data, self.path)
        return self.header

    def start_at(self, offset: int) -> None:
        """Decode from ``offset``, a frame boundary (or a beacon offset) found by a seek."""
        header = self.read_header()
        assert header is not None
        if offset <= HEADER_SIZE:
            self.decoder = SsDecoder(source=self.path)
            self._fed = 0
            return
        self.decoder = SsDecoder(source=self.path, start=offset, header=header)
        self._fed = offset

    def read_beacon(self, offset: int) -> Beacon | None:
        """The beacon at a multiple of the interval, or None if it is not wholly written yet."""
        header = self.header
        assert header is not None
        peek = _BEACON_PEEK
        while True:
            data = self._read(offset, peek)
            beacon = parse_beacon(data, offset, header, self.path)
            if beacon is not None or len(data) < peek:
                return beacon
            peek *= 4

    def beacon_landing(self, index: int) -> int:
        """The first frame boundary at or after beacon ``index`` (SeaStreamer's rewind)."""
        header = self.header
        assert header is not None
        interval = header.beacon_interval
        offset = index * interval
        size = self.size()
        while offset > 0 and offset % interval == 0 and offset < size:
            beacon = self.read_beacon(offset)
            if beacon is None:
                break
            offset += beacon.size + min(beacon.remaining, interval - beacon.size)
        return offset

    def seek(self, target: SeekTarget) -> int:
        """Position before the first message that may satisfy ``target``; returns the offset.

        Bisection over beacons (O(log(size / I)) beacon reads): beacon k is *left* when its
        markers prove every wanted message up to it comes before the target. A beacon that holds
        fewer markers than it has room for lists every stream written so far, so a wanted stream
        missing there has no messages yet; a full beacon (streams rotate through its slots) that
        lacks a wanted stream proves nothing and the search looks a few beacons further. Landing
        on the highest left beacon found is always safe: the forward scan filters exactly.
        """
        header = self.read_header()
        if header is None:
            return 0
        interval = header.beacon_interval
        size = self.size()
        count = (size - 1) // interval if size > interval else 0
        cap = num_markers(interval)

        def judge(index: int) -> int:
            beacon = self.read_beacon(index * interval)
            if beacon is None:
                return _UNDECIDED
            wanted = [m for m in beacon.markers if target.wants(m.stream_key)]
            if any(not target.before(m) for m in wanted):
                return _RIGHT
            if len(beacon.markers) < cap:
                return _LEFT
            return _UNDECIDED

        lo, hi = 0, count + 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            verdict = judge(mid)
            probe = mid
            while verdict == _UNDECIDED and probe + 1 < hi and probe - mid < _PROBES:
                probe += 1
                verdict = judge(probe)
            if verdict == _LEFT:
                lo = probe
            elif verdict == _RIGHT:
                hi = probe if probe > mid else mid
            else:
                hi = mid
        offset = self.beacon_landing(lo) if lo else HEADER_SIZE
        self.start_at(offset)
        return offset

    def seek_end(self) -> int:
        """Position after the last complete frame (on a final EOS), for live consumers."""
        header = self.read_header()
        if header is None:
            return 0
        interval = header.beacon_interval
        last_index = self.size() // interval
        start = self.beacon_landing(last_index) if last_index else 0
        probe = SsDecoder(source=self.path, start=start, header=header) if start else None
        probe = probe or SsDecoder(source=self.path)
        position = max(start, HEADER_SIZE)
        fed = start
        while not probe.ended:
            chunk = self._read(fed, self.chunk_size)
            if not chunk:
                break
            fed += len(chunk)
            probe.feed(chunk)
            try:
                for _ in probe:
                    pass
            except FileFormatError:
                break
            finally:
                if probe.last_message_end > 0:
                    position = probe.last_message_start if probe.ended else probe.last_message_end
        self.ends_with_eos = probe.ended
        self.eos_end = probe.last_message_end if probe.ended else 0
        self.start_at(position)
        return position

    # ---- reading forward --------------------------------------------------------------------

    def read_items(self, max_items: int = 4096) -> list[Item]:
        """Items decoded from what the file holds now; ``[]`` when nothing more is available.

        Raises FileFormatError on damage (after the items before it were returned), and for a
        frame cut short at the end of a non-followed file. A non-followed file is read up to its
        size at open; a frame a writer is still writing across that point is finished, then the
        reader stops.
        """
        decoder = self.decoder
        limit = self.limit
        while not self._done:
            finishing = limit is not None and self._fed > limit
            items = decoder.read(1 if finishing else max_items)
            if items or decoder.ended:
                if finishing and limit is not None and decoder.tell() >= limit:
                    self._done = True
                return items
            want = self.chunk_size
            if limit is not None and self._fed >= limit:
                if not decoder.buffered or self.size() <= self._fed:
                    self._done = True
                    decoder.eof()
                    return decoder.read(max_items)
            elif limit is not None:
                want = min(want, limit - self._fed)
            chunk = self._read(self._fed, want)
            if not chunk:
                return []
            self._fed += len(chunk)
            decoder.feed(chunk)
        return []


def ss_path(text: str, command: str) -> str:
    """The file a ``decode``/``verify`` argument names: a path, or a ``file://`` URI's path.

    Any other URI is refused with its password hidden: these commands read files, and a
    ``redis://user:secret@host`` given by mistake must not be echoed back (nor looked up as a
    file name, which would print it in "no such file").
    """
    if "://" not in text:
        return text
    scheme = text.partition("://")[0].lower()
    if scheme == "file":
        return parse_stream_uri(text).path
    raise UsageError(
        f"{command} reads .ss files (a path or file://PATH), not {scheme}:// streams; "
        f"to read this one: streamkit relay --input {_redact_text(text)} -e",
        "FILE",
    )


def scan(path: str, on_items: Callable[[list[Item]], None]) -> SsFileReader:
    """Read a whole file once, handing each batch of items to ``on_items`` (verify, append)."""
    reader = SsFileReader(path)
    try:
        while True:
            items = reader.read_items()
            if not items:
                return reader
            on_items(items)
    finally:
        reader.close()
