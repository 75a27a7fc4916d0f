"""``SsPrinter``: a ``.ss`` file's items in one of ``decode``'s formats (log, ndjson, ss-ndjson).

``log`` and ``ss-ndjson`` match SeaStreamer's ss-decode line for line (scripts written for one
work with the other), with streamkit's fixed three-digit millisecond timestamps (DESIGN §6).
Beacons print where ss-decode prints them: after the message they interrupt, or, for a beacon
between two messages, after the message that follows it. ``ndjson`` is strict NDJSON -- the same
message objects and nothing else (ss-decode's ``/* */`` comment lines and its EOS line stop
``jq``), which is what a user piping into an NDJSON reader expects.

This module chooses what prints (the selection, where beacons go, the header and beacon comment
lines); how a message looks is ``log.py`` and ``ndjson.py``. Each batch is one write (the
environment may make stdout unbuffered, so no per-line writes). ``SsPrinter`` writes to the
binary stream it is given and opens nothing; ``cli/decode.py`` reads the file and hands it the
items.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, BinaryIO

from streamkit.formats.codec import encode_log_lines  # C loops when built
from streamkit.formats.line import is_utf8
from streamkit.formats.printing.log import Times, binary_text, log_lines
from streamkit.formats.ss import Beacon, FileHeader, Item
from streamkit.message import INTERNAL_KEY, Message
from streamkit.timeutil import format_ms

__all__ = ["SsPrinter"]


def _header_json(header: FileHeader) -> str:
    return json.dumps(
        {
            "file_name": header.file_name,
            "created_at": format_ms(header.created_at),
            "beacon_interval": header.beacon_interval,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _meta(key: str, shard: int, seq: int, ts: int) -> dict[str, Any]:
    return {"stream_key": key, "shard_id": shard, "sequence": seq, "timestamp": format_ms(ts)}


def _beacon_json(beacon: Beacon) -> str:
    return json.dumps(
        [
            {
                "header": _meta(m.stream_key, m.shard_id, m.seq, m.timestamp),
                "running_checksum": m.running_checksum,
            }
            for m in beacon.markers
        ],
        separators=(",", ":"),
    )


def _log_only(m: Message) -> bytes:
    raise AssertionError("a log printer printed a JSON line")


class SsPrinter:
    """Prints batches of items in one of ``decode``'s formats (``fmt``) to ``out``."""

    def __init__(
        self, out: BinaryIO, fmt: str, header_only: bool, binary: str, internal: bool = False
    ) -> None:
        self.out = out
        self.fmt = fmt
        self.strict = fmt == "ndjson"
        """Strict NDJSON: message objects only -- no header, beacon or EOS lines."""
        self.internal = internal
        """The internal stream was asked for by name (--stream): its frames print."""
        self.header_only = header_only
        self.binary = binary
        self.times = Times()
        self.held: list[Beacon] = []
        self.keyparts: dict[str, bytes] = {}
        self._json_line: Callable[[Message], bytes] = _log_only
        if fmt != "log":  # imported here: ndjson needs orjson, which log lines do not
            from streamkit.formats.printing.ndjson import json_line

            times = self.times
            self._json_line = lambda m: json_line(m, times, header_only, binary)

    def header(self, header: FileHeader) -> None:
        if self.strict:
            return
        text = _header_json(header)
        line = f"# {text}\n" if self.fmt == "log" else f"/* {text} */\n"
        self.out.write(line.encode("utf-8"))

    def _beacon_line(self, beacon: Beacon) -> bytes:
        text = _beacon_json(beacon)
        return (f"# {text}\n" if self.fmt == "log" else f"/* {text} */\n").encode("utf-8")

    def batch(self, items: list[Item], wanted: Callable[[Message], bool] | None) -> None:
        """Print messages that pass ``wanted`` (None: all), and beacons where ss-decode does."""
        if wanted is None and not self.held and Beacon not in set(map(type, items)):
            selected: list[Message | Beacon] = items  # type: ignore[assignment]
        else:
            selected = self._select(items, wanted)
        chunk = self._render(selected)
        if self.fmt == "log" and not chunk.isascii() and not is_utf8(chunk):
            chunk = self._render([self._printable(item) for item in selected])
        self.out.write(chunk)

    def _select(
        self, items: list[Item], wanted: Callable[[Message], bool] | None
    ) -> list[Message | Beacon]:
        selected: list[Message | Beacon] = []
        append = selected.append
        held = self.held
        for item in items:
            if isinstance(item, Message):
                if wanted is None or wanted(item):
                    append(item)
                if held:
                    selected.extend(held)
                    held.clear()
            elif isinstance(item, Beacon):
                if item.remaining:  # it interrupted the message just before it
                    append(item)
                else:  # between messages: ss-decode prints it after the next one
                    held.append(item)
        return selected

    def _render(self, selected: list[Message | Beacon]) -> bytes:
        if self.strict:
            internal = self.internal
            return b"".join(
                self._json_line(item)
                for item in selected
                if isinstance(item, Message) and (internal or item.stream_key != INTERNAL_KEY)
            )
        if self.fmt == "log" and not self.header_only and encode_log_lines is not None:
            data = encode_log_lines(selected, self._beacon_line)  # in C, the same bytes
            if data is not None:
                return data
        if self.fmt != "log":
            return b"".join(
                self._json_line(item) if isinstance(item, Message) else self._beacon_line(item)
                for item in selected
            )
        return log_lines(selected, self.times, self.keyparts, self.header_only, self._beacon_line)

    def _printable(self, item: Message | Beacon) -> Message | Beacon:
        """The message with a binary payload replaced by its printed form."""
        if isinstance(item, Beacon) or is_utf8(item.payload):
            return item
        text = binary_text(item.payload, self.binary)
        return Message(item.stream_key, item.shard_id, item.seq, item.timestamp, text)
