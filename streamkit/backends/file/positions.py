"""Committed positions of resumable file consumers: ``FILE.GROUP.pos`` beside the ``.ss`` file.

A ``.ss`` file has no server to keep a consumer group's offset, so ``--mode resumable --group G``
keeps it in a small JSON file next to the data: ``ticks.ss`` read by group ``audit`` commits to
``ticks.ss.audit.pos``. One file per group, so groups are independent, and removing the file
resets the group. Each commit writes it atomically (temp file, fsync, rename, fsync of the
directory): after a crash the position is the old one or the new one, never a torn mix.

A position is a byte offset (the first byte after the last committed message, a frame boundary)
plus what is needed to know it still belongs to the same bytes: a hash of the 128-byte header
(which names the file and its creation time) and a hash of the bytes just before the offset (the
end of the last committed frame). A file replaced by another recording, truncated, or rewritten
no longer matches, and the consumer refuses to start (``DataError``, exit 3) instead of reading
from a wrong place or silently from the start. An appender resumes the file on top of its EOS
frame, which lies after the offset, so appending never invalidates a position.

Each commit also records the sizes of the ``.ss`` files the process is writing (``outputs``):
a relay killed between writing a batch and committing it left that batch in its output file,
and its restart recognises it there (``messages_after``) instead of writing it twice.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import re
import time
from dataclasses import dataclass

from streamkit.backends.file.reader import SsFileReader
from streamkit.errors import BackendError, DataError, FileFormatError, UsageError
from streamkit.formats.ss import HEADER_SIZE
from streamkit.message import INTERNAL_KEY, Message

__all__ = [
    "TAIL_BYTES",
    "GroupState",
    "OutputMark",
    "Position",
    "PositionStore",
    "fingerprint",
    "group_states",
    "messages_after",
    "output_closed",
    "output_marks",
    "output_opened",
    "position_path",
    "writing",
]

TAIL_BYTES = 64
"""Bytes before the offset whose hash ties a position to its file (at least the last frame's
trailer and checksum)."""
_VERSION = 1
_GROUP = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def fingerprint(data: bytes) -> str:
    import hashlib  # here: a relay that only registers its output (stdio → file) never hashes

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def position_path(data_path: str, group: str) -> str:
    """Where group ``group`` of ``data_path`` keeps its position; the group name is checked
    because it becomes part of a file name."""
    if not _GROUP.fullmatch(group):
        raise UsageError(
            f"group name {group!r} cannot name a position file beside a .ss file: use letters, "
            "digits, '.', '_' and '-' (at most 128, not starting with '.' or '-')",
            "--group",
        )
    return f"{data_path}.{group}.pos"


OutputMark = tuple[int, str]
"""An output file at a commit: its size and its header's fingerprint."""


@dataclass(frozen=True)
class Position:
    offset: int
    """The first byte after the last committed message."""
    header: str
    """Fingerprint of the file's 128-byte header."""
    tail: str
    """Fingerprint of the ``TAIL_BYTES`` bytes before ``offset``."""
    keys: tuple[str, ...] | None
    """The stream keys the group reads (None: every stream)."""
    streams: dict[tuple[str, int], int]
    """The seq of the last committed message of each stream and shard."""
    outputs: dict[str, OutputMark]
    """The ``.ss`` files the committing process was writing (real paths): size at commit and
    header fingerprint."""


def _parse(raw: bytes) -> Position:
    doc = json.loads(raw)
    if doc.get("version") != _VERSION:
        raise ValueError(f"version {doc.get('version')!r}")
    keys = doc["keys"]
    position = Position(
        offset=int(doc["offset"]),
        header=str(doc["header"]),
        tail=str(doc["tail"]),
        keys=tuple(keys) if keys is not None else None,
        streams={(str(k), int(s)): int(q) for k, s, q in doc["streams"]},
        outputs={str(p): (int(n), str(h)) for p, n, h in doc.get("outputs", [])},
    )
    if position.offset < 128:
        raise ValueError(f"offset {position.offset} is inside the .ss header")
    return position


@dataclass(frozen=True)
class GroupState:
    """What ``stat`` says about one group of a file, read without taking anything."""

    group: str
    position: Position | None
    """None when the position file cannot be read or parsed."""
    live: bool
    """A consumer of the group holds its lock now."""
    fits: bool
    """The position still fits the file (``PositionStore.check`` would pass)."""


def group_states(data_path: str) -> list[GroupState]:
    """Every group with a position beside ``data_path``, for ``stat`` (read-only)."""
    prefix = data_path + "."
    out: list[GroupState] = []
    import glob  # here: only ``stat`` lists the positions beside a file

    for pos in sorted(glob.glob(glob.escape(prefix) + "*.pos")):
        group = pos[len(prefix) : -len(".pos")]
        if not _GROUP.fullmatch(group):
            continue
        try:
            with open(pos, "rb") as f:
                position: Position | None = _parse(f.read())
        except (OSError, ValueError, KeyError, TypeError):
            position = None
        fits = position is not None and _fits(data_path, group, position)
        out.append(GroupState(group, position, _locked(pos + ".lock"), fits))
    return out


def _fits(data_path: str, group: str, position: Position) -> bool:
    store = PositionStore(data_path, group, position.keys)
    try:
        with open(data_path, "rb") as f:
            header = f.read(HEADER_SIZE)
            size = os.fstat(f.fileno()).st_size
            offset = position.offset
            tail = os.pread(f.fileno(), TAIL_BYTES, offset - TAIL_BYTES)
        store.check(position, header if len(header) == HEADER_SIZE else None, size, tail)
    except (OSError, DataError):
        return False
    return True


def _locked(lock_path: str) -> bool:
    """True when a live consumer holds the lock (tested with a lock of our own, let go at once)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class PositionStore:
    """Loads, checks and atomically replaces one group's position file."""

    def __init__(self, data_path: str, group: str, keys: tuple[str, ...] | None) -> None:
        self.data_path = data_path
        self.group = group
        self.keys = tuple(sorted(keys)) if keys else None
        self.path = position_path(data_path, group)
        self._dir = os.path.dirname(os.path.abspath(self.path))
        self._dir_fd: int | None = None
        self._lock_fd: int | None = None

    def mismatch(self, why: str) -> DataError:
        return DataError(
            f"the committed position of group {self.group} in {self.path} no longer fits the "
            f"file: {why}; remove {self.path} to read the file again as a new group",
            self.data_path,
        )

    def load(self) -> Position | None:
        """The committed position, or None when the group has none yet."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendError(f"cannot read position: {exc.strerror}", self.path) from None
        try:
            position = _parse(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"not a streamkit position file ({exc}); remove it to start group "
                f"{self.group} again",
                self.path,
            ) from None
        if position.keys != self.keys:
            given = ", ".join(self.keys) if self.keys else "every stream"
            held = ", ".join(position.keys) if position.keys else "every stream"
            raise UsageError(
                f"group {self.group} of {self.data_path} committed reading {held}, not {given}: "
                f"its position would skip messages of the other streams; use another --group "
                f"or remove {self.path}",
                "--group",
            )
        return position

    def check(self, position: Position, header: bytes | None, size: int, tail: bytes) -> None:
        """Raise DataError unless the file still holds the bytes the position was taken on.

        ``header`` is the file's first 128 bytes (None: it has none), ``tail`` the
        ``TAIL_BYTES`` before ``position.offset``.
        """
        if header is None:
            raise self.mismatch(f"the file is {size} bytes long, shorter than its header")
        if fingerprint(header) != position.header:
            raise self.mismatch("the file has another header (it was replaced)")
        if size < position.offset:
            raise self.mismatch(
                f"the position is byte {position.offset} but the file ends at {size} "
                "(it was truncated or replaced)"
            )
        if fingerprint(tail) != position.tail:
            raise self.mismatch(
                f"the bytes before byte {position.offset} changed (the file was rewritten)"
            )

    def writable(self) -> None:
        """Refuse at open, not after the first batch, when positions cannot be written."""
        if not os.access(self._dir, os.W_OK):
            raise BackendError(
                f"cannot write group {self.group}'s position beside the file: the directory is "
                "not writable",
                self.path,
            )

    def lock(self) -> None:
        """Hold ``FILE.G.pos.lock`` while consuming: a second live consumer of the group would
        read everything again and overwrite the first one's position. The kernel releases the
        lock when the process ends, however it ends."""
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BackendError(
                f"cannot create the group's lock: {exc.strerror}", lock_path
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BackendError(
                f"group {self.group} of {self.data_path} is in use by another consumer "
                "(a file's group has one consumer at a time)",
                lock_path,
            ) from None
        self._lock_fd = fd

    def save(
        self,
        offset: int,
        header: bytes,
        tail: bytes,
        streams: dict[tuple[str, int], int],
        outputs: dict[str, OutputMark],
    ) -> None:
        """Replace the position atomically: temp file, fsync, rename, fsync the directory."""
        doc = {
            "version": _VERSION,
            "file": os.path.basename(self.data_path),
            "group": self.group,
            "keys": list(self.keys) if self.keys is not None else None,
            "offset": offset,
            "header": fingerprint(header),
            "tail": fingerprint(tail),
            "streams": [[k, s, q] for (k, s), q in sorted(streams.items())],
            "outputs": [[p, n, h] for p, (n, h) in sorted(outputs.items())],
            "committed_at": int(time.time() * 1000),
        }
        data = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        tmp = self.path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            if self._dir_fd is None:
                self._dir_fd = os.open(self._dir, os.O_RDONLY)
            os.fsync(self._dir_fd)
        except OSError as exc:
            raise BackendError(f"cannot commit position: {exc.strerror}", self.path) from None

    def close(self) -> None:
        for name in ("_dir_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)


# ---- outputs: what a killed relay already wrote -----------------------------------------------

_open_outputs: collections.Counter[str] = collections.Counter()
"""``.ss`` files this process writes now (real paths, with their writer counts). A resumable
consumer records their sizes with each commit, so a relay restarted into the same file knows
which messages its killed run wrote there after the last commit (``FileConsumer._fence``)."""

_FENCE_MAX = 100_000
"""More messages than this after an output's committed size are not one killed batch."""


_headers: dict[str, str] = {}
"""Header fingerprints of the open outputs (a header never changes under its writer)."""


def output_opened(path: str) -> None:
    real = os.path.realpath(path)
    _open_outputs[real] += 1
    _headers.pop(real, None)


def output_closed(path: str) -> None:
    real = os.path.realpath(path)
    _open_outputs[real] -= 1
    if _open_outputs[real] <= 0:
        del _open_outputs[real]
        _headers.pop(real, None)


def writing(real_path: str) -> bool:
    """True while this process has a writer open on ``real_path``."""
    return real_path in _open_outputs


def output_marks(exclude: str) -> dict[str, OutputMark]:
    """Size and header fingerprint of each file this process writes now, for a commit (one
    ``stat`` per file; the header is read once per writer)."""
    out: dict[str, OutputMark] = {}
    for path in _open_outputs:
        if path == exclude:
            continue
        try:
            size = os.path.getsize(path)
            header = _headers.get(path)
            if header is None:
                header = _header_of(path)
                if header is None:
                    continue
                _headers[path] = header
        except OSError:
            continue
        out[path] = (size, header)
    return out


def _header_of(path: str) -> str | None:
    with open(path, "rb") as f:
        data = f.read(HEADER_SIZE)
    return fingerprint(data) if len(data) == HEADER_SIZE else None


def messages_after(path: str, mark: OutputMark) -> list[tuple[bytes, int]]:
    """(payload, timestamp) of the complete messages in ``path`` after the size in ``mark``;
    ``[]`` when there are none, more than one batch could hold, the file has another header
    (it was replaced) or it cannot be read."""
    size, header_mark = mark
    try:
        reader = SsFileReader(path, follow=False, before_eos=True)
    except UsageError:
        return []
    try:
        if reader.read_header() is None or size < HEADER_SIZE or reader.size() < size:
            return []
        if fingerprint(reader.peek(0, HEADER_SIZE)) != header_mark:
            return []
        reader.start_at(size)
        out: list[tuple[bytes, int]] = []
        while len(out) <= _FENCE_MAX:
            try:
                items = reader.read_items()
            except FileFormatError:
                break
            if not items:
                break
            out.extend(
                (m.payload, m.timestamp)
                for m in items
                if isinstance(m, Message) and m.stream_key != INTERNAL_KEY
            )
        return out if len(out) <= _FENCE_MAX else []
    finally:
        reader.close()
