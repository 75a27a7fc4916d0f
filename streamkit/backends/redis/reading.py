"""One stream's entries of an XREAD/XREADGROUP/XAUTOCLAIM reply → Messages, with every rule.

``codec.convert_entries`` (C or pure) converts the runs of plain entries; the entries it stops
at are handled here, one at a time, by the full rules:

* an id ``MS-N`` with N > 65535 (another client's burst) is read with the last sequence number
  of its millisecond, ``MS << 16 | 65535``, and counted; in a group its real id is kept for XACK;
* an id with MS ≥ 2^48 is refused (DataError: no sequence number holds it);
* a pending entry deleted meanwhile (``fields`` None) is acked away in a group;
* an entry without the payload field is skipped (and acked away in a group);
* the first entry past the shard's ``end`` (``--no-follow``) or ``--until`` ends the shard.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from streamkit.backends.redis import codec
from streamkit.backends.redis.ids import MAX_SUB, parse_entry_id
from streamkit.backends.redis.positions import _NO_LIMIT, _Shard
from streamkit.backends.redis.resp import MAX_MS, Convert
from streamkit.message import Message

__all__ = ["WideIds", "read_entries"]

WideIds = dict[tuple[str, int, int], collections.deque[tuple[str, bytes]]]
"""Group mode: (stream key, shard, shared seq) → the real ids behind it, in order (for XACK)."""


def read_entries(
    entries: Sequence[Any],
    shard: _Shard,
    out: list[Message],
    *,
    until: int | None,
    field_name: bytes,
    grouped: bool,
    where: str,
    skip_acks: list[tuple[str, bytes]],
    wide: WideIds,
    convert: Convert | None = None,
) -> tuple[bytes, int]:
    """Append the Messages of ``entries`` (not empty) to ``out``; sets ``shard.done`` at its end.

    Returns the last id looked at (the shard's next position) and how many ids had N > 65535.
    """
    if convert is None:
        convert = codec.convert_entries
    stream_key, shard_id, end = shard.stream_key, shard.shard, shard.end
    end_seq = _NO_LIMIT if end is None else (end[0] << 16) | min(end[1], MAX_SUB)
    until_ms = _NO_LIMIT if until is None else until
    over_count = 0
    index, count = 0, len(entries)
    while True:
        index, past = convert(
            entries, index, stream_key, shard_id, end_seq, until_ms, field_name, out
        )
        if past:
            shard.done = True
            return entries[index][0], over_count
        if index >= count:
            return entries[count - 1][0], over_count
        entry_id, fields = entries[index]
        ms_text, _, sub_text = entry_id.partition(b"-")
        ms, sub = int(ms_text), int(sub_text)
        is_wide = sub >= MAX_SUB or ms >= MAX_MS
        over = sub > MAX_SUB
        if is_wide:
            parse_entry_id(entry_id, where)  # raises the DataError for ms >= 2^48
            if end is not None and (ms, sub) > end:
                shard.done = True
                return entry_id, over_count
            sub = MAX_SUB
        seq = (ms << 16) | sub
        if seq > end_seq or ms > until_ms:
            shard.done = True
            return entry_id, over_count
        index += 1
        if fields is None:  # pending entry deleted meanwhile (XTRIM): ack it away
            skip_acks.append((shard.rkey, entry_id))
            continue
        if fields[0] == field_name:
            payload = fields[1]
        else:
            values = dict(zip(fields[::2], fields[1::2]))
            if field_name not in values:
                if grouped:
                    skip_acks.append((shard.rkey, entry_id))
                continue
            payload = values[field_name]
        if is_wide:
            over_count += over
            if grouped:
                # XACK needs the real id behind the shared seq: keep them in order
                wide.setdefault((stream_key, shard_id, seq), collections.deque()).append(
                    (shard.rkey, entry_id)
                )
        out.append(Message(stream_key, shard_id, seq, ms, payload))
