"""``Spans``: messages left in the chunk they were read from, without a Message object each.

The compiled line decoder writes them (``LineDecoder.feed_spans`` in line_compiled.py, the
``SkSpan`` records of _speedups_scan.c) and the Kafka producer reads them
(``KafkaProducer.send_pieces``): a stdin → Kafka relay makes no Python object per line.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SPAN_SIZE", "Spans"]

SPAN_SIZE = 24
"""Bytes per message in ``Spans.spans``: C's SkSpan (offset, length, time: 8 bytes each)."""


class Spans(NamedTuple):
    """Per message, SPAN_SIZE bytes in ``spans``: its payload's offset and length in ``chunk``,
    and its time in ms since the epoch, or -1 where the line carried none (the client stamps it,
    as a ``ReadTime`` is stamped)."""

    chunk: bytes
    spans: bytearray
