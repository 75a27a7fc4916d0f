"""The compiled line codec: ``LineDecoder`` and ``encode_lines`` with their loops in C.

A drop-in for the classes of ``line.py`` (same constructor, ``feed``/``finish``, ``broadcast``,
``error``, ``skipped``, ``line_number``). The C loop (``_speedups.scan``) takes the lines
streamkit and SeaStreamer write and stops at any other line; that line goes through the pure
general parser (``LineDecoder._slow``), so every error, its text, line number and the
``--on-invalid`` policies come from one place.

``feed_into``/``finish_into`` are the stdio relay's path: instead of Message objects they
append the canonical output lines (optionally only some keys, optionally renamed) to a
bytearray. ``feed_spans``/``finish_spans`` are the stdin → Kafka relay's: each message is where
its payload lies in the chunk and its time (``Spans``), for the producer to take from there.

Importing this module raises ImportError when the extension was not built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streamkit.formats import _speedups
from streamkit.formats.line import LineDecoder as PureLineDecoder
from streamkit.formats.line import _Invalid
from streamkit.formats.line import encode_lines as pure_encode_lines
from streamkit.formats.spans import Spans
from streamkit.message import BROADCAST, Message, ReadTime

__all__ = ["LineDecoder", "encode_lines", "encode_log_lines"]

_speedups.configure(Message, BROADCAST, ReadTime)
_scan = _speedups.scan
_encode = _speedups.encode


class LineDecoder(PureLineDecoder):
    """``LineDecoder`` of line.py, decoding in C; also transcodes straight to output lines."""

    relayed = 0
    """Messages written by ``feed_into``/``finish_into`` so far."""
    left_out: dict[str, int] | None = None
    """Per stream key, the messages ``feed_into``/``finish_into`` left out (not in ``keep``)."""

    def _decode_into(self, chunk: bytes, out: list[Message]) -> None:
        self.broadcast = []
        self._run(chunk, out, self.broadcast, None, None, None)

    def feed_into(
        self, data: bytes, sink: bytearray, keep: frozenset[str] | None, out_key: str | None
    ) -> None:
        """Like ``feed``, but the output lines of the messages go to ``sink``.

        ``keep``: the keys a keyed consumer receives (broadcasts always pass), None for all;
        ``out_key``: the producer's key (every message renamed), None to keep each key. Raises
        DataError, like ``encode_lines``, for a message the line format cannot carry; what was
        appended to ``sink`` before it is output that must still be written.
        """
        lines = self._complete_lines(data)
        if lines is not None:
            self._transcode(lines, sink, keep, out_key)

    def finish_into(
        self, sink: bytearray, keep: frozenset[str] | None, out_key: str | None
    ) -> None:
        """End of input for ``feed_into``: a last line without ``\\n``."""
        rest = self._last_line()
        if rest:
            self._transcode(rest, sink, keep, out_key)

    def feed_spans(self, data: bytes, keep: frozenset[str] | None) -> list[Spans | Message]:
        """Like ``feed``, but the messages come as ``Spans`` of their chunk, in order with the
        Messages of lines the C loop leaves to the general parser. ``keep`` as for
        ``feed_into``. A line that fails (``--on-invalid fail``) sets ``error`` and ends the
        list: what it holds came before that line and must still be sent.
        """
        lines = self._complete_lines(data)
        return self._spans(lines, keep) if lines is not None else []

    def finish_spans(self, keep: frozenset[str] | None) -> list[Spans | Message]:
        """End of input for ``feed_spans``: a last line without ``\\n``."""
        rest = self._last_line()
        return self._spans(rest, keep) if rest else []

    def _spans(self, chunk: bytes, keep: frozenset[str] | None) -> list[Spans | Message]:
        pieces: list[Spans | Message] = []
        try:
            self._run(chunk, None, None, None, keep, None, pieces)
        except _Invalid as invalid:
            self.error = invalid.error
        return pieces

    def _transcode(
        self, chunk: bytes, sink: bytearray, keep: frozenset[str] | None, out_key: str | None
    ) -> None:
        try:
            self._run(chunk, None, None, sink, keep, out_key)
        except _Invalid as invalid:
            self.error = invalid.error

    def _run(
        self,
        chunk: bytes,
        out: list[Message] | None,
        flags: list[bool] | None,
        sink: bytearray | None,
        keep: frozenset[str] | None,
        out_key: str | None,
        pieces: list[Spans | Message] | None = None,
    ) -> None:
        key_bytes = out_key.encode("ascii") if out_key is not None else None
        left_out = None
        relaying = sink is not None or pieces is not None
        if relaying and keep is not None:
            if self.left_out is None:
                self.left_out = {}
            left_out = self.left_out
        counters = self._counters.next
        size = len(chunk)
        pos, number, now = 0, self.line_number, -1
        while True:
            spans = bytearray() if pieces is not None else None
            pos, number, now, stopped, emitted = _scan(
                chunk, pos, number, now, self.no_meta, counters, out if spans is None else spans,
                flags, self.clock, sink, keep, key_bytes, left_out,
            )  # fmt: skip
            self.relayed += emitted if relaying else 0
            if spans:
                assert pieces is not None
                pieces.append(Spans(chunk, spans))
            if not stopped:
                break
            # A line the C loop does not take: the general parser of line.py decides.
            end = chunk.find(b"\n", pos)
            if end < 0:
                end = size
            line = chunk[pos:end]
            if line[-1:] == b"\r":
                line = line[:-1]
            number += 1
            if now < 0:
                now = self.clock()
            self.line_number = number
            parsed = self._slow(line, number, now)
            if parsed is not None:
                message, broadcast = parsed
                if out is not None and flags is not None:
                    out.append(message)
                    flags.append(broadcast)
                elif relaying and (keep is None or broadcast or message.stream_key in keep):
                    if pieces is not None:
                        pieces.append(message)
                    else:
                        assert sink is not None
                        sink += encode_lines([message], out_key)
                    self.relayed += 1
                elif left_out is not None:
                    key = message.stream_key
                    left_out[key] = left_out.get(key, 0) + 1
            pos = end + 1
            if pos > size:
                break
        self.line_number = number


def encode_lines(messages: Sequence[Message], stream_key: str | None = None) -> bytes:
    """``encode_lines`` of line.py, formatted in C; unusual batches go to the pure encoder."""
    if type(messages) is list:
        out = _encode(messages, stream_key)
        if out is not None:
            return out
    return pure_encode_lines(messages, stream_key)


def encode_log_lines(items: list[Any], other: Callable[[Any], bytes]) -> bytes | None:
    """``decode``'s log lines (``[ts | key | seq | shard] payload``, the line format) of the
    Messages in ``items``, ``other(item)`` for the rest (beacons); None when a payload needs
    the Python loop (empty, starting with a blank or control byte, a newline, not UTF-8)."""
    return _encode(items, None, other)
