"""The line format's reader: ``LineDecoder.feed(bytes)`` in any chunking → messages.

The canonical fast path (one pattern match per line, cached timestamps and keys), the plain
payload path, and the general parser of ``spec/line-format.md`` (``parse_line``) for every
other line. ``LineBuffer`` is the line splitting that ``jsonl.py`` shares. Overview: ``line.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import repeat as _repeat
from operator import add as _add
from operator import attrgetter

from streamkit.errors import LineFormatError
from streamkit.message import BROADCAST, MAX_U64, Message, now_ms, read_time_clock
from streamkit.timeutil import utc_seconds

__all__ = ["LineBuffer", "LineDecoder", "is_utf8", "parse_line"]

# One canonical line, as the stdio producer writes it (the whole line is the first group).
# The seconds are only shaped here ([0-9T:-]{19}, cheaper to match): every distinct text goes
# through the calendar check of _epoch_seconds before a chunk is accepted.
_CANONICAL = re.compile(
    rb"^(\[([0-9T:-]{19})\.([0-9]{3}) \| ([A-Za-z0-9._-]{1,249}) \| "
    rb"(0|[1-9][0-9]{0,19}) \| (0|[1-9][0-9]{0,19})\] ([\x21-\x7f].*))$",
    re.MULTILINE,
)
# ASCII digits only: str patterns would otherwise take any Unicode digit (int() accepts them).
_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?", re.ASCII)
_KEY = re.compile(r"[A-Za-z0-9._-]{1,249}")
_NUMBER = re.compile(r"\+?\d+", re.ASCII)

_seconds_cache: dict[bytes, int] = {}
# "YYYY-MM-DDTHH:MM:SS" → epoch milliseconds of that second (the bulk path adds the .fff part).
_base_millis_cache: dict[bytes, int] = {}
_shard_of = attrgetter("shard_id")
_MILLIS = {b"%03d" % n: n for n in range(1000)}


def _epoch_seconds(text: bytes) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS`` → epoch seconds, or None if not a real UTC calendar time."""
    cached = _seconds_cache.get(text)
    if cached is not None:
        return cached
    match = _TIMESTAMP.fullmatch(text.decode("ascii"))
    if not match:
        return None
    value = utc_seconds(*(int(g) for g in match.groups()[:6]))
    if value is None:
        return None
    if len(_seconds_cache) > 65536:
        _seconds_cache.clear()
    _seconds_cache[text] = value
    return value


def _parse_timestamp(part: str) -> int | None:
    """The timestamp rule of the line format → ms, or None if the part is not a timestamp."""
    if not _TIMESTAMP.fullmatch(part):
        return None
    seconds = _epoch_seconds(part[:19].encode("ascii"))
    if seconds is None:
        return None
    fraction = part[20:]
    return seconds * 1000 + (int((fraction + "00")[:3]) if fraction else 0)


class _Counters:
    """Per (key, shard) sequence numbers for lines that carry none."""

    __slots__ = ("next",)

    def __init__(self) -> None:
        self.next: dict[tuple[str, int], int] = {}

    def take(self, key: str, shard: int, explicit: int | None) -> int:
        if explicit is not None:
            self.next[(key, shard)] = explicit + 1
            return explicit
        seq = self.next.get((key, shard), 0)
        self.next[(key, shard)] = seq + 1
        return seq


def parse_line(
    line: str, *, now: int, counters: _Counters | None = None, no_meta: bool = False
) -> tuple[Message, bool]:
    """Parse one line (without terminator) by the general rules.

    Returns the message and whether it is a broadcast (no key in the prefix). Raises ValueError
    with the offending part as its argument when a prefix part is not accepted by any field.
    """
    counters = counters if counters is not None else _Counters()
    end = line.find("]") if line.startswith("[") and not no_meta else -1
    if end <= 1:  # not a meta line ("[]" is a plain line too)
        seq = counters.take(BROADCAST, 0, None)
        return Message(BROADCAST, 0, seq, now, line.encode("utf-8")), True
    timestamp: int | None = None
    key: str | None = None
    seq_value: int | None = None
    shard: int | None = None
    for index, raw_part in enumerate(line[1:end].split("|")):
        part = raw_part.strip()
        if index == 0 and (ts := _parse_timestamp(part)) is not None:
            timestamp = ts
        elif key is None and _KEY.fullmatch(part):
            key = part
        elif key is not None and shard is None and _NUMBER.fullmatch(part) and int(part) <= MAX_U64:
            if seq_value is None:
                seq_value = int(part)
            else:
                shard = int(part)
        else:
            raise ValueError(raw_part)
    rest = line[end + 1 :]
    payload = rest.lstrip() if rest.strip() else rest
    broadcast = key is None
    stream_key = BROADCAST if key is None else key
    shard_id = shard or 0
    seq = counters.take(stream_key, shard_id, seq_value)
    return (
        Message(
            stream_key,
            shard_id,
            seq,
            now if timestamp is None else timestamp,
            payload.encode("utf-8"),
        ),
        broadcast,
    )


class LineBuffer:
    """What every line-based decoder shares: bytes in any chunking, whole lines out.

    ``feed`` keeps a partial last line for the next call and hands the complete ones, as one
    bytes object without its final ``\n``, to ``_decode``; ``finish`` decodes what is left.
    After an invalid line under ``on_invalid="fail"`` (``self.error`` set) every call raises it.
    """

    def __init__(
        self,
        source: str,
        on_invalid: str,
        clock: Callable[[], int],
        warn: Callable[[str], None] | None,
    ) -> None:
        self.source = source
        self.on_invalid = on_invalid
        self.clock = read_time_clock(clock)
        """The time of lines that carry none, typed ``ReadTime`` so outputs can tell."""
        self.warn = warn
        self.line_number = 0
        self.skipped = 0
        self.broadcast: list[bool] = []
        """One flag per message of the last call: True when its line named no stream."""
        self.error: LineFormatError | None = None
        self._partial = b""

    def feed(self, data: bytes) -> list[Message]:
        """Messages of every complete line now buffered (a partial last line is kept).

        Under ``on_invalid="fail"`` an invalid line ends decoding: the messages before it are
        returned, ``self.error`` is set, and every later call raises it.
        """
        lines = self._complete_lines(data)
        return self._decode(lines) if lines is not None else []

    def finish(self) -> list[Message]:
        """End of input: decode a last line that had no ``\\n``."""
        rest = self._last_line()
        return self._decode(rest) if rest else []

    def _complete_lines(self, data: bytes) -> bytes | None:
        """The complete lines buffered with ``data`` (without the last ``\\n``), the partial
        last line kept for later; None when there is none yet. Raises a failed line's error."""
        if self.error is not None:
            raise self.error
        if self._partial:
            data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return None
        self._partial = data[cut + 1 :]
        return data[:cut]

    def _last_line(self) -> bytes:
        """At the end of input: the line that had no ``\\n`` (maybe empty)."""
        if self.error is not None:
            raise self.error
        data, self._partial = self._partial, b""
        return data

    def _decode(self, chunk: bytes) -> list[Message]:
        raise NotImplementedError


class LineDecoder(LineBuffer):
    """Incremental decoder of the line format: ``feed(chunk)`` → messages of the complete lines.

    ``on_invalid``: ``fail`` returns the messages before the bad line, sets ``self.error`` and
    raises it on every later call; ``skip`` counts the line in ``skipped`` and reports it
    through ``warn``; ``raw`` keeps the whole line as a broadcast payload.
    """

    def __init__(
        self,
        source: str = "<stdin>",
        *,
        on_invalid: str = "fail",
        no_meta: bool = False,
        clock: Callable[[], int] = now_ms,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(source, on_invalid, clock, warn)
        self.no_meta = no_meta
        self._counters = _Counters()
        self._keys: dict[bytes, str] = {}

    def _decode(self, chunk: bytes) -> list[Message]:
        out: list[Message] = []
        try:
            self._decode_into(chunk, out)
        except _Invalid as invalid:
            self.error = invalid.error
        return out

    def _decode_into(self, chunk: bytes, out: list[Message]) -> None:
        check_utf8 = False
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                check_utf8 = True
        self.broadcast = []
        if not check_utf8 and (
            self._decode_plain(chunk, out)
            or (not self.no_meta and self._decode_canonical(chunk, out))
        ):
            return
        lines = chunk.split(b"\n")
        append = out.append
        flags = self.broadcast
        canonical = not self.no_meta
        keys = self._keys
        counters = self._counters.next
        broadcast_key = (BROADCAST, 0)
        seconds = _seconds_cache
        now = -1
        number = self.line_number
        for line in lines:
            number += 1
            if line[-1:] == b"\r":
                line = line[:-1]
            if not line:
                continue
            if line[:1] != b"[" or not canonical:
                # A plain line (or --no-meta): the whole line is a broadcast payload.
                if not check_utf8 or is_utf8(line):
                    seq = counters.get(broadcast_key, 0)
                    counters[broadcast_key] = seq + 1
                    if now < 0:
                        now = self.clock()
                    append(Message(BROADCAST, 0, seq, now, line))
                    flags.append(True)
                    continue
            elif canonical:
                # "[YYYY-MM-DDTHH:MM:SS[.fff] | key | seq[ | shard]] payload" (streamkit's and
                # SeaStreamer's output) in a handful of C calls; anything unusual falls through
                # to the general parser.
                parts = line.split(b" | ", 3)
                count = len(parts)
                if count == 4:
                    ts, key_bytes, seq_text, rest = parts
                    shard_text, sep, payload = rest.partition(b"] ")
                elif count == 3:
                    ts, key_bytes, rest = parts
                    seq_text, sep, payload = rest.partition(b"] ")
                    shard_text = b"0"
                else:
                    sep = b""
                if sep:
                    base = seconds.get(ts[1:20])
                    key = keys.get(key_bytes)
                    size = len(ts)
                    if (
                        base is not None
                        and key is not None
                        and payload
                        # 33..127: no leading ASCII or Unicode whitespace to strip
                        and 32 < payload[0] < 128
                        and (size == 20 or (size <= 30 and ts[20] == 46 and ts[21:].isdigit()))
                        and seq_text.isdigit()
                        and shard_text.isdigit()
                        and len(seq_text) <= 20
                        and len(shard_text) <= 20
                        and (not check_utf8 or is_utf8(line))
                    ):
                        seq = int(seq_text)
                        shard = int(shard_text)
                        if seq <= MAX_U64 and shard <= MAX_U64:
                            counters[(key, shard)] = seq + 1
                            message = Message(
                                key,
                                shard,
                                seq,
                                base * 1000 + (int((ts[21:] + b"00")[:3]) if size > 20 else 0),
                                payload,
                            )
                            if (
                                size == 24
                                and count == 4
                                and (seq_text[:1] != b"0" or seq_text == b"0")
                                and (shard_text[:1] != b"0" or shard_text == b"0")
                            ):  # the exact text encode_lines would write: copy it later
                                message.line = line
                            append(message)
                            flags.append(False)
                            continue
            if now < 0:
                now = self.clock()
            self.line_number = number
            parsed = self._slow(line, number, now)
            if parsed is not None:
                append(parsed[0])
                flags.append(parsed[1])
        self.line_number = number

    def _decode_plain(self, chunk: bytes, out: list[Message]) -> bool:
        """A whole chunk of plain lines (no prefix, or ``--no-meta``) without a Python loop.

        Returns False unless no line starts with ``[`` (or ``no_meta``), none is empty and none
        ends in ``\r``; the general loop handles such chunks.
        """
        if (
            not chunk
            or (not self.no_meta and chunk[:1] == b"[")  # cheapest test first: canonical input
            or chunk[:1] == b"\n"
            or chunk[-1:] == b"\n"
            or b"\r" in chunk
            or b"\n\n" in chunk
            or (not self.no_meta and b"\n[" in chunk)
        ):
            return False
        lines = chunk.split(b"\n")
        count = len(lines)
        counters = self._counters.next
        first = counters.get((BROADCAST, 0), 0)
        counters[(BROADCAST, 0)] = first + count
        out.extend(
            map(
                Message,
                _repeat(BROADCAST, count),
                _repeat(0, count),
                range(first, first + count),
                _repeat(self.clock(), count),
                lines,
            )
        )
        self.broadcast.extend(_repeat(True, count))
        self.line_number += count
        return True

    def _decode_canonical(self, chunk: bytes, out: list[Message]) -> bool:
        """A whole chunk of canonical four-field lines in a few C-level passes.

        Returns False (nothing decoded) unless EVERY line of the chunk is
        ``[YYYY-MM-DDTHH:MM:SS.fff | key | seq | shard] payload`` with a payload that needs no
        trimming; the per-line loop then handles the chunk. This is what streamkit's own
        programs write, so pipelines of them take this path.
        """
        lines = chunk.count(b"\n") + 1
        if lines < 64 or b"\r" in chunk or _CANONICAL.match(chunk) is None:
            return False
        rows = _CANONICAL.findall(chunk)
        if len(rows) != lines:
            return False
        texts, second_texts, milli_texts, key_texts, seq_texts, shard_texts, payloads = zip(*rows)
        bases = _base_millis_cache
        for text in set(second_texts).difference(bases):
            seconds = _epoch_seconds(text)
            if seconds is None:
                return False
            if len(bases) > 65536:
                bases.clear()
            bases[text] = seconds * 1000
        keys = self._keys
        distinct_keys = set(key_texts)
        for key_bytes in distinct_keys.difference(keys):
            keys[key_bytes] = key_bytes.decode("ascii")
        seqs = list(map(int, seq_texts))
        distinct_shards = set(shard_texts)
        shards: Iterable[int]
        if len(distinct_shards) == 1:  # the usual case: one shard, no per-line int()
            top_shard = int(distinct_shards.pop())
            shards = _repeat(top_shard, lines)
        else:
            shards = list(map(int, shard_texts))
            top_shard = max(shards)
        if max(seqs) > MAX_U64 or top_shard > MAX_U64:
            return False
        names = list(map(keys.__getitem__, key_texts))
        stamps = map(
            _add, map(bases.__getitem__, second_texts), map(_MILLIS.__getitem__, milli_texts)
        )
        messages = list(map(Message, names, shards, seqs, stamps, payloads))
        any(map(setattr, messages, _repeat("line"), texts))  # setattr returns None: runs them all
        counters = self._counters.next
        if len(distinct_keys) == 1 and len(distinct_shards) <= 1:
            # One stream: only the last line's seq matters for the counter.
            last = messages[-1]
            counters[(last.stream_key, last.shard_id)] = last.seq + 1
        else:
            counters.update(zip(zip(names, map(_shard_of, messages)), map((1).__add__, seqs)))
        self.broadcast.extend(_repeat(False, lines))
        self.line_number += lines
        out.extend(messages)
        return True

    def _slow(self, line: bytes, number: int, now: int) -> tuple[Message, bool] | None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            return self._invalid(
                line, number, now, f"invalid UTF-8 at byte {error.start} of the line", None
            )
        try:
            message, broadcast = parse_line(
                text, now=now, counters=self._counters, no_meta=self.no_meta
            )
        except ValueError as error:
            part = str(error.args[0]) if error.args else text
            shown = part.strip() or repr(part)
            return self._invalid(
                line,
                number,
                now,
                f"unknown part {shown!r} in the [timestamp | stream | seq | "
                "shard] prefix (a payload starting with '[' needs --no-meta)",
                part,
            )
        if not broadcast:
            key_bytes = message.stream_key.encode("ascii")
            if key_bytes not in self._keys and len(self._keys) < 65536:
                self._keys[key_bytes] = message.stream_key
        return message, broadcast

    def _invalid(
        self, line: bytes, number: int, now: int, what: str, part: str | None
    ) -> tuple[Message, bool] | None:
        where = f"{self.source}:{number}"
        if self.on_invalid == "raw":
            seq = self._counters.take(BROADCAST, 0, None)
            return Message(BROADCAST, 0, seq, now, line), True
        if self.on_invalid == "skip":
            self.skipped += 1
            if self.warn is not None:
                self.warn(f"{where}: skipped invalid line: {what}")
            return None
        raise _Invalid(LineFormatError(what, where, line_number=number, part=part))


def is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (the text the line format and its printers can carry)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Invalid(Exception):
    """Unwinds the decode loop at a bad line under the ``fail`` policy."""

    def __init__(self, error: LineFormatError) -> None:
        super().__init__(error)
        self.error = error
