"""Output templates in kcat's ``-f`` style: ``%k``, ``%s``, ``%T`` ... and escapes ``\\n``, ``\\t``.

Pure and sans-IO: a ``Template`` turns a batch of messages into one bytes object, so any printer
(relay's stdout, decode) can use it with its own writing. kcat users can reuse their format
strings: the letters mean what they mean in kcat, with streamkit's fields behind them (stream =
topic, seq = offset, shard = partition). Every field also has a name, ``%{name}``, for templates
meant to be read.

Speed: the template is compiled once into one bytes ``%``-format and a lambda building its
argument tuple (expressions from the fixed table below, never from the template text), so a
message costs one tuple and one C-level format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streamkit.errors import UsageError
from streamkit.message import Message
from streamkit.timeutil import format_ms

__all__ = ["FIELDS", "LETTERS", "Template"]

# name → (bytes-format conversion, expression over ``m``, the message, and ``kb``, the output
# stream key as bytes or None)
FIELDS: dict[str, tuple[str, str]] = {
    "payload": ("%b", "m.payload"),
    "payload_len": ("%d", "len(m.payload)"),
    "key": ("%b", "(m.key or b'')"),
    "key_len": ("%d", "(-1 if m.key is None else len(m.key))"),
    "stream": ("%b", "(kb or m.stream_key.encode())"),
    "topic": ("%b", "(kb or m.stream_key.encode())"),
    "seq": ("%d", "m.seq"),
    "offset": ("%d", "m.seq"),
    "shard": ("%d", "m.shard_id"),
    "partition": ("%d", "m.shard_id"),
    "timestamp": ("%d", "m.timestamp"),
    "time": ("%b", "_iso(m.timestamp)"),
    "headers": ("%b", "_headers(m.headers)"),
}
"""Every field a template can name: ``%{payload}``, ``%{seq}`` ..."""

LETTERS: dict[str, str] = {
    "s": "payload",
    "S": "payload_len",
    "k": "key",
    "K": "key_len",
    "t": "stream",
    "p": "shard",
    "o": "seq",
    "T": "timestamp",
    "h": "headers",
}
"""kcat's ``-f`` letters and the fields they print."""

_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", "0": b"\0"}


def _iso(timestamp: int) -> bytes:
    return format_ms(timestamp).encode("ascii")


def _headers(headers: tuple[tuple[str, bytes], ...]) -> bytes:
    """kcat's ``%h``: ``name=value`` pairs joined by commas (empty when there are none)."""
    return b",".join(name.encode("utf-8") + b"=" + value for name, value in headers)


class Template:
    """A compiled output template; ``encode(messages, stream_key)`` formats a batch."""

    def __init__(self, text: str, *, option: str = "--format-template") -> None:
        self.text = text
        self.option = option
        fmt, expressions = self._compile(text)
        self.fields = tuple(expressions)
        items = "".join(f"{expression}, " for _, expression in expressions)
        source = f"lambda m, kb: ({items})"
        namespace = {"_iso": _iso, "_headers": _headers, "__builtins__": {"len": len}}
        self._args: Callable[[Message, bytes | None], tuple[object, ...]] = eval(source, namespace)
        self._format = fmt

    def _compile(self, text: str) -> tuple[bytes, list[tuple[str, str]]]:
        out: list[bytes] = []
        expressions: list[tuple[str, str]] = []
        index = 0
        while index < len(text):
            char = text[index]
            if char == "%":
                name, index = self._field(text, index)
                if name is None:
                    out.append(b"%%")
                    continue
                conversion, expression = FIELDS[name]
                out.append(conversion.encode("ascii"))
                expressions.append((name, expression))
                continue
            if char == "\\":
                escape = text[index + 1 : index + 2]
                if escape not in _ESCAPES:
                    self._fail(index, f"unknown escape \\{escape}: use \\n \\t \\r \\\\ or \\0")
                out.append(_ESCAPES[escape])
                index += 2
                continue
            out.append(char.encode("utf-8").replace(b"%", b"%%"))
            index += 1
        return b"".join(out), expressions

    def _field(self, text: str, index: int) -> tuple[str | None, int]:
        """The field at ``text[index] == '%'`` (None for ``%%``) and the index after it."""
        letter = text[index + 1 : index + 2]
        if letter == "%":
            return None, index + 2
        if letter == "{":
            end = text.find("}", index + 2)
            name = text[index + 2 : end] if end >= 0 else ""
            if end < 0 or name not in FIELDS:
                self._fail(index, f"unknown field %{{{name}}}: use one of {', '.join(FIELDS)}")
            return name, end + 1
        if letter not in LETTERS:
            known = " ".join(f"%{key}" for key in LETTERS)
            self._fail(index, f"unknown field %{letter}: use {known}, %% or %{{name}}")
        return LETTERS[letter], index + 2

    def _fail(self, index: int, text: str) -> None:
        raise UsageError(f"{text} (at character {index + 1} of {self.text!r})", self.option)

    def render(self, message: Message, stream_key: str | None = None) -> bytes:
        """One message."""
        kb = stream_key.encode("utf-8") if stream_key is not None else None
        return self._format % self._args(message, kb)

    def encode(self, messages: Sequence[Message], stream_key: str | None = None) -> bytes:
        """A batch, as one bytes object (the signature of the stdio producer's encoders).

        ``stream_key`` renames every message's stream, as an output URI's key does.
        """
        kb = stream_key.encode("utf-8") if stream_key is not None else None
        fmt, args = self._format, self._args
        return b"".join([fmt % args(message, kb) for message in messages])
