"""The line format: ``[timestamp | stream | seq | shard] payload`` — sans-IO.

``LineDecoder`` takes bytes in any chunking (``feed``) and returns the messages of every complete
line; ``finish`` handles a last line without ``\\n``. ``encode_lines`` turns a batch of messages
into one bytes object. No files, no sockets: stdin, a pipe and a test all feed the same code.

Speed comes from doing per-chunk work in C: one ``split`` per chunk, one compiled pattern that
recognises the canonical four-field prefix in a single match, caches for the costly parts
(timestamp text ↔ epoch seconds, key bytes → str), and one UTF-8 check per chunk instead of per
line. Lines the fast pattern does not recognise go through the general parser, which implements
the rules of ``spec/line-format.md`` (SeaStreamer's stdio grammar) part by part.

Decisions (see docs/line-format.md): a trailing ``\\r`` is stripped; empty lines carry no message;
a line without a seq gets the next number of its (key, shard) counter, which continues after an
explicit seq (``[a | 5]`` then ``[a]`` gives 5 then 6 — SeaStreamer repeats 5).

The reader is ``line_decoder.py``, the writer ``line_encoder.py``; this module is the public
face: import from here.
"""

from __future__ import annotations

from streamkit.formats.line_decoder import LineBuffer, LineDecoder, is_utf8, parse_line
from streamkit.formats.line_decoder import _Invalid as _Invalid
from streamkit.formats.line_encoder import _encode_columns as _encode_columns
from streamkit.formats.line_encoder import encode_lines

__all__ = ["LineBuffer", "LineDecoder", "encode_lines", "is_utf8", "parse_line"]
