"""Messages as text: every format streamkit prints a message in, found here by name.

==========================  =============================  =====================================
format                      where it is chosen             module
==========================  =============================  =====================================
``line``                    ``--output-format line``       ``formats/line_encoder.py`` (and C)
``json`` (JSON lines)       ``--output-format json``       ``formats/jsonl.py``
template (kcat ``-f``)      ``relay -f/--format-template`` ``printing/template.py``
``log``                     ``decode --format log``        ``printing/log.py``
``ndjson``, ``ss-ndjson``   ``decode --format ...``        ``printing/ndjson.py``
==========================  =============================  =====================================

``printing/printer.py`` (``SsPrinter``) puts a ``.ss`` file's items through ``decode``'s three
formats: which messages print, where beacons go, the header and beacon comment lines. The stdout
formats (``STREAM_FORMATS``) are encoders with one signature, ``(messages, stream_key) ->
bytes``, which the stdio producer calls once per batch; a template's ``encode`` is one too. The
line format and JSON lines live beside their readers (``line.py``, ``jsonl.py``): each is read
back as well as written (``relay --input-format``, ``collect``), and one module per format keeps
the writer's promises next to the reader that relies on them.

Why the JSON rules differ, on purpose:

- ``--output-format json`` is for reading back (``relay --input-format json``, ``collect``,
  kcat ``-J`` users): lossless. A payload that is one line of JSON is spliced in verbatim
  (never re-serialised: its bytes come back exactly), a payload that is a JSON string or not
  JSON is a string of its text, a binary one is ``payload_base64``, and ``payload`` is the last
  member so a reader can take its raw text span.
- ``decode --format ndjson``/``ss-ndjson`` is for people, ``jq`` and diffing against SeaStreamer's
  ss-decode: its message objects are ss-decode's, so a JSON payload is re-serialised compactly
  with sorted keys (as ss-decode prints it), timestamps are ISO text, and a binary payload is a
  byte array, or hex or base64 with ``--binary``. It is not meant to be read back.
- A template prints the payload's bytes as they are (``%s``), as kcat does: no JSON at all.
- ``log`` lines are the line format, so a payload prints as text and a binary one as
  ``<BINARY BLOB>`` (or ``--binary``).

This ``__init__`` imports nothing heavy: the registry is names, and each format's module is
imported when it is used (orjson only for the JSON formats), which keeps start-up cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from streamkit.errors import UsageError

if TYPE_CHECKING:
    from streamkit.message import Message

__all__ = ["DECODE_FORMATS", "STREAM_FORMATS", "Encoder", "stream_encoder"]

Encoder = Callable[["Sequence[Message]", "str | None"], bytes]
"""``encode(messages, stream_key)``: a batch as one bytes object; ``stream_key`` renames."""

STREAM_FORMATS: dict[str, str] = {
    "line": "streamkit.formats.codec:encode_lines",
    "json": "streamkit.formats.jsonl:encode_json_lines",
}
"""``--output-format`` on stdout (relay, clock, processor): name → encoder, ``module:name``."""

DECODE_FORMATS: dict[str, str] = {
    "log": "streamkit.formats.printing.log",
    "ndjson": "streamkit.formats.printing.ndjson",
    "ss-ndjson": "streamkit.formats.printing.ndjson",
}
"""``decode --format``: name → the module that formats a message (``SsPrinter`` drives them)."""


def stream_encoder(name: str) -> Encoder:
    """The encoder of ``--output-format NAME``, its module imported now (and not before)."""
    target = STREAM_FORMATS.get(name)
    if target is None:
        raise UsageError(
            f"unknown output format {name!r}: use {' or '.join(STREAM_FORMATS)}",
            "--output-format",
        )
    module, _, attr = target.partition(":")
    encoder: Encoder = getattr(importlib.import_module(module), attr)
    return encoder
