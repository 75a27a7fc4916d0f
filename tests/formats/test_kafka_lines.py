"""Kafka records → line bytes (``kafka_lines``, C and pure twin) against the Message path.

The reference is what a relay wrote before the direct path: a Message per record (as the
consumer's ``_plain_python`` builds it), then ``encode_lines``. Records are stand-ins with
confluent-kafka's methods; real records from the private broker are checked in
tests/backends/kafka/test_kafka_lines_relay.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import DataError
from streamkit.formats import _speedups, line_compiled
from streamkit.formats import line as pure_line
from streamkit.formats.kafka_lines import kafka_lines as pure_kafka_lines
from streamkit.message import Message

Lines = Callable[[list[Any], int, str | None, dict[Any, int] | None, str | None, bytearray], int]
IMPLEMENTATIONS: dict[str, Lines] = {"pure": pure_kafka_lines, "C": _speedups.kafka_lines}


class Record:
    """The methods of confluent_kafka.Message that the conversion calls."""

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp: int,
        value: bytes | None,
        *,
        error: object = None,
        headers: list[tuple[str, bytes | None]] | None = None,
        key: bytes | None = None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._timestamp, self._value, self._error = timestamp, value, error
        self._headers, self._key = headers, key

    def error(self) -> object:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers


class OddStamp(Record):
    def timestamp(self) -> Any:
        return 5


def as_message(record: Record) -> Message:
    """The consumer's reference conversion of one record (``_plain_python``)."""
    headers = record.headers()
    return Message(
        record.topic(),
        record.partition(),
        record.offset(),
        record.timestamp()[1],
        record.value() or b"",
        record.key(),
        tuple((n, b"" if v is None else v) for n, v in headers) if headers else (),
    )


def reference(records: list[Record], out_key: str | None) -> tuple[bytes, str | None]:
    """What the Message path writes for these records, and its error: the stdio producer
    encodes the batch, and on a DataError writes the messages before the first one the
    format cannot carry, then raises that message's error."""
    messages = [as_message(r) for r in records if r.error() is None]
    try:
        return pure_line.encode_lines(messages, out_key), None
    except DataError:
        for index, message in enumerate(messages):
            try:
                pure_line.encode_lines([message], out_key)
            except DataError as error:
                return pure_line.encode_lines(messages[:index], out_key), str(error)
        raise


def resumed(lines: Lines, records: list[Record], out_key: str | None) -> tuple[bytes, str | None]:
    """The direct path over a whole batch: ``lines`` for runs, the reference one record at a
    time where it stops (as ``KafkaConsumer._lines_plain`` does)."""
    sink = bytearray()
    index = 0
    while True:
        end = lines(records, index, None, None, out_key, sink)
        if end >= len(records):
            return bytes(sink), None
        if records[end].error() is None:
            try:
                sink += line_compiled.encode_lines([as_message(records[end])], out_key)
            except DataError as error:
                return bytes(sink), str(error)
        index = end + 1


VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            b"",
            b" ",
            b" lead",
            b"\tx",
            b"a\nb",
            b"\n",
            b"x\r",
            b"\xff",
            b"ok \xc3\xa9",
            b"\xc3\xa9",
            b"\xed\xa0\x80",
            b"{}",
            b"\x7f",
            b"~",
        ]
    ),
    st.binary(max_size=12),
    st.text(max_size=12).map(lambda t: t.encode("utf-8")),
)
TIMESTAMPS = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            1_700_000_000_123,
            -62_135_596_800_000,
            -62_135_596_800_001,
            253_402_300_799_999,
            253_402_300_800_000,
        ]
    ),
    st.integers(min_value=-(10**14), max_value=10**14),
)


@st.composite
def records(draw: st.DrawFn) -> Record:
    topic = draw(st.sampled_from(["t", "orders.v1", "a_b-c"]))
    error = draw(st.sampled_from([None, None, None, None, "EOF"]))
    headers = draw(st.sampled_from([None, None, [("h", b"1")], [("n", None)]]))
    return Record(
        topic,
        draw(st.integers(0, 5)),
        draw(st.integers(0, 2**63 - 1)),
        draw(TIMESTAMPS),
        draw(VALUES),
        error=error,
        headers=headers,
        key=draw(st.sampled_from([None, b"k"])),
    )


OUT_KEYS = st.sampled_from([None, "renamed", "x", ""])


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
@settings(max_examples=300, deadline=None)
@given(batch=st.lists(records(), max_size=40), out_key=OUT_KEYS)
def test_a_batch_gives_the_bytes_of_the_message_path(
    name: str, batch: list[Record], out_key: str | None
) -> None:
    assert resumed(IMPLEMENTATIONS[name], batch, out_key) == reference(batch, out_key)


@settings(max_examples=300, deadline=None)
@given(
    batch=st.lists(records(), max_size=40),
    start=st.integers(0, 40),
    single=st.booleans(),
    out_key=OUT_KEYS,
    bounds=st.dictionaries(st.integers(0, 5), st.integers(-2, 2**64 + 1), max_size=4),
    use_last=st.booleans(),
)
def test_c_and_pure_stop_at_the_same_record_with_the_same_bytes(
    batch: list[Record],
    start: int,
    single: bool,
    out_key: str | None,
    bounds: dict[int, int],
    use_last: bool,
) -> None:
    start = min(start, len(batch))
    topic = "one" if single else None
    last = bounds if use_last and single else None
    results = []
    for lines in IMPLEMENTATIONS.values():
        sink = bytearray(b"before|")
        end = lines(batch, start, topic, last, out_key, sink)
        results.append((end, bytes(sink)))
    assert results[0] == results[1]
    end, written = results[0]
    assert start <= end <= len(batch)
    # Everything before the stop was written, as the Message path writes it.
    taken = [as_message(r) for r in batch[start:end]]
    if topic is not None:
        for message in taken:
            message.stream_key = topic
    assert written == b"before|" + (pure_line.encode_lines(taken, out_key) if taken else b"")
    if last is not None:
        assert all(m.seq < last[m.shard_id] for m in taken)
    # The loops stop exactly at the first record only the reference may take.
    for record in batch[start:end]:
        assert not _left_to_reference(record, topic, last)
    if end < len(batch):
        assert _left_to_reference(batch[end], topic, last)


def _left_to_reference(record: Record, topic: str | None, last: dict[int, int] | None) -> bool:
    """An error event, a record at or past its bound, or a value or time the fast loops do not
    format (empty, blank or control first byte, newline, not UTF-8, outside years 1-9999)."""
    if record.error() is not None:
        return True
    if last is not None and record.offset() >= last.get(record.partition(), -1):
        return True
    value = record.value()
    if not value or not 32 < value[0] < 128 or b"\n" in value:
        return True
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return not -62_135_596_800_000 <= record.timestamp()[1] <= 253_402_300_799_999


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_the_line_format_leaves_out_record_keys_and_headers(name: str) -> None:
    batch = [
        Record("t", 2, 41, 1_700_000_000_123, b"payload", headers=[("h", b"1")], key=b"k"),
        Record("u", 0, 7, 0, b"{}"),
    ]
    sink = bytearray()
    assert IMPLEMENTATIONS[name](batch, 0, None, None, None, sink) == 2
    assert bytes(sink) == (
        b"[2023-11-14T22:13:20.123 | t | 41 | 2] payload\n"
        b"[1970-01-01T00:00:00.000 | u | 7 | 0] {}\n"
    )


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_null_values_errors_and_bounds_are_left_to_the_reference(name: str) -> None:
    lines = IMPLEMENTATIONS[name]
    batch = [
        Record("t", 0, 0, 5, b"a"),
        Record("t", 0, 1, 5, None),
        Record("t", 0, 2, 5, b"c", error="EOF"),
        Record("t", 1, 9, 5, b"d"),
    ]
    sink = bytearray()
    assert lines(batch, 0, "t", None, None, sink) == 1
    assert lines(batch, 1, "t", None, None, sink) == 1
    assert lines(batch, 2, "t", None, None, sink) == 2
    assert lines(batch, 3, "t", {0: 5}, None, sink) == 3  # partition 1 has no bound: past it
    assert lines(batch, 3, "t", {1: 9}, None, sink) == 3  # offset 9 is the last: reference
    assert lines(batch, 3, "t", {1: 10}, "r", sink) == 4
    assert bytes(sink) == (
        b"[1970-01-01T00:00:00.005 | t | 0 | 0] a\n[1970-01-01T00:00:00.005 | r | 9 | 1] d\n"
    )


def test_unusual_arguments_are_a_type_error_not_a_crash() -> None:
    lines = _speedups.kafka_lines
    with pytest.raises(TypeError):
        lines((), 0, None, None, None, bytearray())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        lines([], 0, None, None, None, b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        lines([], 0, None, [], None, bytearray())  # type: ignore[arg-type]
    odd = OddStamp("t", 0, 0, 5, b"a")
    with pytest.raises(TypeError):
        lines([odd], 0, None, None, None, bytearray())
    sink = bytearray()
    assert lines([odd], 1, None, None, None, sink) == 1  # nothing to do from index 1
    assert lines([Record("t", 0, 0, 5, b"a")], 0, None, None, "\xe9", sink) == 0
    assert sink == b""
