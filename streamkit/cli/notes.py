"""Notes the CLI prints once at exit, without -v, when something a user would not guess happened.

The key filter of an input URI (``stdio:///tick``, ``file://./t.ss/tick``) leaves out messages of
other streams, which is how one stream is picked from many; but when it leaves out everything a
user sees an empty output and exit 0. So a relay or processor whose filter left something out says
how many and which stream keys it saw instead. Backends that filter keep ``filtered`` (a count)
and ``filtered_keys`` (a sample of the keys) on the consumer; the others read only their keys.
"""

from __future__ import annotations

from streamkit.backends.base import Consumer
from streamkit.uri import StreamUri

__all__ = ["filtered_note"]


def filtered_note(consumer: Consumer, input_uri: StreamUri) -> str | None:
    """One line about the messages the key filter left out, or None if it left out none."""
    count = int(getattr(consumer, "filtered", 0) or 0)
    if not count:
        return None
    keys: set[str] = set(getattr(consumer, "filtered_keys", ()) or ())
    seen = ", ".join(sorted(keys)) or "?"
    wanted = ", ".join(input_uri.keys)
    noun = "message" if count == 1 else "messages"
    return (
        f"{count} {noun} of other streams left out by the key filter of --input "
        f"{input_uri.redacted()} (it keeps {wanted}; streams seen: {seen})"
    )
