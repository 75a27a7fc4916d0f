"""Types of the compiled codec (streamkit/formats/_speedups_*.c, one extension module)."""

from collections.abc import Callable, Sequence
from typing import Any

from streamkit.message import Message, ReadTime

def configure(
    message_type: type[Message], broadcast: str, read_time: type[ReadTime], /
) -> None: ...
def scan(
    chunk: bytes,
    pos: int,
    number: int,
    now: int,
    no_meta: bool,
    counters: dict[tuple[str, int], int],
    out: list[Message] | bytearray | None,  # a bytearray: spans mode (SkSpan records)
    flags: list[bool] | None,
    clock: Callable[[], int],
    sink: bytearray | None,
    keep: frozenset[str] | None,
    out_key: bytes | None,
    left_out: dict[str, int] | None,
    /,
) -> tuple[int, int, int, bool, int]: ...
def encode(
    messages: list[Any],
    stream_key: str | None,
    other: Callable[[Any], bytes] | None = None,
    /,
) -> bytes | None: ...
def ss_scan(
    buf: bytes, i: int, lim: int, limit: int, out: list[object], verify: bool, /
) -> tuple[int, int, bool, bool]: ...
def crc16(data: bytes, crc: int = 0xFFFF, /) -> int: ...
def ss_encode(
    messages: list[Any],
    start: int,
    key: str | None,
    position: int,
    interval: int,
    streams: dict[Any, Any],
    state_type: type,
    /,
) -> tuple[bytes, int, int, bool]: ...
def kafka_records(
    raw: list[Any], i: int, topic: str | None, last: dict[Any, int] | None, out: list[Message], /
) -> int: ...
def kafka_lines(
    raw: list[Any],
    i: int,
    topic: str | None,
    last: dict[Any, int] | None,
    out_key: str | None,
    sink: bytearray,
    /,
) -> int: ...
def kafka_produce(
    produce: Callable[..., object],
    topic: str,
    messages: list[Any] | tuple[Any, ...],
    start: int,
    same_topic: bool,
    /,
) -> tuple[int, BaseException | None]: ...
def redis_pack_xadd(entries: Sequence[tuple[str, bytes, bytes, int]], /) -> bytes | None: ...
def redis_convert_entries(
    entries: Sequence[Any],
    start: int,
    stream_key: str,
    shard_id: int,
    end_seq: int,
    until_ms: int,
    field_name: bytes,
    out: list[Message],
    /,
) -> tuple[int, bool]: ...
def redis_skip_replies(buf: bytes, pos: int, count: int, /) -> tuple[int, int, int]: ...
def librdkafka_version() -> tuple[int, str]: ...

class LibrdkafkaProducer:
    """A Kafka producer on librdkafka's C API (_speedups_librdkafka*.c)."""

    def __init__(
        self,
        settings: dict[str, str],
        log: Callable[..., object] | None,
        make_error: Callable[[int, str], BaseException],
    ) -> None: ...
    @property
    def name(self) -> str | None: ...
    def produce(self, topic: str, value: Any, /, *args: Any) -> None: ...
    def produce_messages(
        self, topic: str, messages: list[Any] | tuple[Any, ...], start: int, same_topic: bool, /
    ) -> tuple[int, BaseException | None]: ...
    def produce_spans(
        self, topic: str, chunk: bytes, spans: bytearray, start: int, /
    ) -> tuple[int, BaseException | None]: ...
    def poll(self, timeout: float, /) -> int: ...
    def flush(self, timeout: float, /) -> int: ...
    def failures(self) -> tuple[int, list[str], str | None]: ...
    def topic_partitions(
        self, topic: str, timeout: float, /
    ) -> tuple[int, str | None, list[int]]: ...
    def close(self) -> None: ...
