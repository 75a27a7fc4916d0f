"""Types of the compiled line codec (streamkit/formats/_speedups.c)."""

from collections.abc import Callable

from streamkit.message import Message

def configure(message_type: type[Message], broadcast: str, /) -> None: ...
def scan(
    chunk: bytes,
    pos: int,
    number: int,
    now: int,
    no_meta: bool,
    counters: dict[tuple[str, int], int],
    out: list[Message] | None,
    flags: list[bool] | None,
    clock: Callable[[], int],
    sink: bytearray | None,
    keep: frozenset[str] | None,
    out_key: bytes | None,
    /,
) -> tuple[int, int, int, bool, int]: ...
def encode(messages: list[Message], stream_key: str | None, /) -> bytes | None: ...
