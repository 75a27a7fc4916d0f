"""The line format codec: every example of spec/line-format.md and of the reference's §1.2 tables,
the documented decisions, and properties (round trip, chunking, random bytes)."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import DataError, LineFormatError
from streamkit.formats.line import LineDecoder, _encode_columns, encode_lines
from streamkit.message import BROADCAST, MAX_U64, Message, ReadTime

NOW = 1_795_417_200_123

# Every test here runs against the pure and the compiled codec (tests/formats/conftest.py).
pytestmark = pytest.mark.usefixtures("line_codec")


def clock() -> int:
    return NOW


def ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, milli: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + milli


def decode(text: str | bytes, **kwargs: object) -> list[Message]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    decoder = LineDecoder(clock=clock, **kwargs)  # type: ignore[arg-type]
    out = decoder.feed(data) + decoder.finish()
    if decoder.error is not None:
        raise decoder.error
    return out


def one(text: str) -> Message:
    messages = decode(text + "\n")
    assert len(messages) == 1
    return messages[0]


def error_of(text: str) -> LineFormatError:
    with pytest.raises(LineFormatError) as caught:
        decode(text + "\n")
    return caught.value


# (line, timestamp, key, seq, shard, payload); None timestamp = now, None seq = auto (0 here).
SPEC_VALID = [
    ("a plain, raw message", None, BROADCAST, None, 0, "a plain, raw message"),
    (
        '[2022-01-01T00:00:00] { "payload": "anything" }',
        ms(2022, 1, 1),
        BROADCAST,
        None,
        0,
        '{ "payload": "anything" }',
    ),
    (
        '[2022-01-01T00:00:00.123 | my_topic] "a string payload"',
        ms(2022, 1, 1, milli=123),
        "my_topic",
        None,
        0,
        '"a string payload"',
    ),
    (
        '[2022-01-01T00:00:00 | my-topic-2 | 123] ["array", "of", "values"]',
        ms(2022, 1, 1),
        "my-topic-2",
        123,
        0,
        '["array", "of", "values"]',
    ),
    (
        '[2022-01-01T00:00:00 | my-topic-2 | 123 | 4] { "payload": "anything" }',
        ms(2022, 1, 1),
        "my-topic-2",
        123,
        4,
        '{ "payload": "anything" }',
    ),
    ("[my_topic] a string payload", None, "my_topic", None, 0, "a string payload"),
    (
        '[my_topic | 123] { "payload": "anything" }',
        None,
        "my_topic",
        123,
        0,
        '{ "payload": "anything" }',
    ),
    (
        '[my_topic | 123 | 4] { "payload": "anything" }',
        None,
        "my_topic",
        123,
        4,
        '{ "payload": "anything" }',
    ),
    # Reference §1.2 table.
    ('{ "payload": "anything" }', None, BROADCAST, None, 0, '{ "payload": "anything" }'),
    (
        '[2022-01-02T03:04:05] { "payload": "anything" }',
        ms(2022, 1, 2, 3, 4, 5),
        BROADCAST,
        None,
        0,
        '{ "payload": "anything" }',
    ),
    (
        '[2022-01-02T03:04:05.678 | my-fancy_topic.1] ["array", "of", "values"]',
        ms(2022, 1, 2, 3, 4, 5, 678),
        "my-fancy_topic.1",
        None,
        0,
        '["array", "of", "values"]',
    ),
    (
        "[2022-01-02T03:04:05 | my-fancy_topic.1 | 123] a string payload",
        ms(2022, 1, 2, 3, 4, 5),
        "my-fancy_topic.1",
        123,
        0,
        "a string payload",
    ),
    (
        "[2022-01-02T03:04:05 | my-fancy_topic.1 | 123 | 4] {}",
        ms(2022, 1, 2, 3, 4, 5),
        "my-fancy_topic.1",
        123,
        4,
        "{}",
    ),
    ("[my-fancy_topic.1] {}", None, "my-fancy_topic.1", None, 0, "{}"),
    ("[my-fancy_topic.1 | 123] [...]", None, "my-fancy_topic.1", 123, 0, "[...]"),
    ("[my-fancy_topic.1 | 123 | 4] {}", None, "my-fancy_topic.1", 123, 4, "{}"),
    ("[a|7]x", None, "a", 7, 0, "x"),
    ("[]", None, BROADCAST, None, 0, "[]"),
    ("  [a] x", None, BROADCAST, None, 0, "  [a] x"),
    # Numeric-looking keys are keys; a timestamp only as the first part.
    ("[123] x", None, "123", None, 0, "x"),
    ("[2022-01-01T00:00:00 | 5] x", ms(2022, 1, 1), "5", None, 0, "x"),
    # Documented decision: the README calls this invalid, the parser (and streamkit) accept it.
    ("[2022-01-01T00:00:00] 12345", ms(2022, 1, 1), BROADCAST, None, 0, "12345"),
    # A line without a closing bracket is plain.
    ("[no closing bracket", None, BROADCAST, None, 0, "[no closing bracket"),
    # Fraction of 1..9 digits, cut to milliseconds.
    ("[2022-01-01T00:00:00.5 | k] x", ms(2022, 1, 1, milli=500), "k", None, 0, "x"),
    ("[2022-01-01T00:00:00.123456789 | k] x", ms(2022, 1, 1, milli=123), "k", None, 0, "x"),
    # A literal [broadcast] key, a leading '+' on a seq, the largest u64.
    ("[broadcast | 3] x", None, BROADCAST, 3, 0, "x"),
    ("[k | +5] x", None, "k", 5, 0, "x"),
    (f"[k | {MAX_U64} | {MAX_U64}] x", None, "k", MAX_U64, MAX_U64, "x"),
    # Trailing whitespace of the payload is kept; a whitespace-only rest is kept verbatim.
    ("[a] x  ", None, "a", None, 0, "x  "),
    ("[a]   ", None, "a", None, 0, "   "),
    ("[a]", None, "a", None, 0, ""),
    ("[a]\tx", None, "a", None, 0, "x"),
    ("[ a | 1 ] x", None, "a", 1, 0, "x"),
]


@pytest.mark.parametrize(("line", "ts", "key", "seq", "shard", "payload"), SPEC_VALID)
def test_valid_examples(
    line: str, ts: int | None, key: str, seq: int | None, shard: int, payload: str
) -> None:
    message = one(line)
    assert message.timestamp == (NOW if ts is None else ts)
    assert message.stream_key == key
    assert message.seq == (0 if seq is None else seq)
    assert message.shard_id == shard
    assert message.payload == payload.encode("utf-8")


# (line, the offending part the error must name)
SPEC_INVALID = [
    ('[Jan 1, 2022] { "payload": "anything" }', "Jan 1, 2022"),
    ("[ ]", " "),
    ("[a | b]", "b"),
    ("[a | 1 | 2 | 3]", "3"),
    ("[a | 2022-01-01T00:00:00]", "2022-01-01T00:00:00"),
    ("[2022-01-01T00:00:00Z] x", "2022-01-01T00:00:00Z"),
    ("[2022-01-01 00:00:00] x", "2022-01-01 00:00:00"),
    ("[my topic] x", "my topic"),
    ('["array", "of"] x', '"array", "of"'),
    ("[2022-02-30T00:00:00] x", "2022-02-30T00:00:00"),
    ("[2022-01-01T24:00:00] x", "2022-01-01T24:00:00"),
    ("[0000-01-01T00:00:00] x", "0000-01-01T00:00:00"),
    ("[a | 1 | 2 | b]", "b"),
    (f"[k | {MAX_U64 + 1}] x", str(MAX_U64 + 1)),
    ("[k | -1] x", "-1"),
    ("[" + "k" * 250 + "] x", "k" * 250),
    ("[k | \u0661\u0662] x", "\u0661\u0662"),  # non-ASCII digits are not a seq
    ("[a||1] x", ""),
]


@pytest.mark.parametrize(("line", "part"), SPEC_INVALID)
def test_invalid_examples_name_the_bad_part(line: str, part: str) -> None:
    error = error_of(line)
    assert error.where == "<stdin>:1"
    assert error.line_number == 1
    assert error.part is not None and error.part.strip() == part.strip()
    if part.strip():
        assert part.strip() in error.what
    assert "--no-meta" in error.what


def test_error_names_the_input_and_line_number_and_keeps_earlier_messages() -> None:
    decoder = LineDecoder("orders.log", clock=clock)
    good = decoder.feed(b"one\n[k] two\n\nthree\n[a | b] bad\nafter\n")
    assert [m.payload for m in good] == [b"one", b"two", b"three"]
    assert decoder.error is not None
    assert decoder.error.where == "orders.log:5"
    assert str(decoder.error).startswith("orders.log:5: ")
    with pytest.raises(LineFormatError):
        decoder.feed(b"more\n")
    with pytest.raises(LineFormatError):
        decoder.finish()


def test_invalid_utf8_is_a_data_error_naming_line_and_byte() -> None:
    decoder = LineDecoder(clock=clock)
    assert [m.payload for m in decoder.feed(b"ok\nab\xffcd\n")] == [b"ok"]
    assert isinstance(decoder.error, DataError)
    assert decoder.error.where == "<stdin>:2"
    assert "UTF-8" in decoder.error.what and "byte 2" in decoder.error.what


def test_canonical_line_with_invalid_utf8_payload_is_an_error_too() -> None:
    decoder = LineDecoder(clock=clock)
    decoder.feed(b"[2022-01-01T00:00:00.000 | k | 1 | 0] fine\n")  # warms the caches
    assert decoder.feed(b"[2022-01-01T00:00:00.000 | k | 2 | 0] \xc3\x28\n") == []
    assert decoder.error is not None and decoder.error.where == "<stdin>:2"


def test_on_invalid_skip_warns_counts_and_goes_on() -> None:
    warnings: list[str] = []
    decoder = LineDecoder(clock=clock, on_invalid="skip", warn=warnings.append)
    out = decoder.feed(b"a\n[Jan 1] b\nc\n\xff\n[k] d\n") + decoder.finish()
    assert [m.payload for m in out] == [b"a", b"c", b"d"]
    assert decoder.skipped == 2
    assert decoder.error is None
    assert len(warnings) == 2
    assert warnings[0].startswith("<stdin>:2: ") and "Jan 1" in warnings[0]
    assert warnings[1].startswith("<stdin>:4: ")


def test_on_invalid_raw_keeps_the_whole_line_as_broadcast() -> None:
    decoder = LineDecoder(clock=clock, on_invalid="raw")
    out = decoder.feed(b"a\n[Jan 1, 2022] b\n\xffx\n")
    assert [(m.stream_key, m.payload) for m in out] == [
        (BROADCAST, b"a"),
        (BROADCAST, b"[Jan 1, 2022] b"),
        (BROADCAST, b"\xffx"),
    ]
    assert [m.seq for m in out] == [0, 1, 2]
    assert decoder.broadcast == [True, True, True]


def test_no_meta_makes_every_line_a_payload() -> None:
    out = decode('["array", "of"]\n[k | 1] x\n', no_meta=True)
    assert [(m.stream_key, m.seq, m.payload) for m in out] == [
        (BROADCAST, 0, b'["array", "of"]'),
        (BROADCAST, 1, b"[k | 1] x"),
    ]


def test_trailing_carriage_return_is_stripped_and_empty_lines_carry_nothing() -> None:
    out = decode(b"a\r\n\r\n\n[k] b \r\n[2022-01-01T00:00:00.000 | k | 9 | 0] c\r\n")
    assert [m.payload for m in out] == [b"a", b"b ", b"c"]


def test_line_numbers_count_empty_lines() -> None:
    decoder = LineDecoder(clock=clock)
    decoder.feed(b"a\n\n\r\n[ ]\n")
    assert decoder.error is not None and decoder.error.where == "<stdin>:4"


def test_seq_counters_per_key_and_shard_continue_after_an_explicit_seq() -> None:
    out = decode("[a] x\n[a] x\n[b] x\n[a | 5] x\n[a] x\n[a | 9 | 1] x\n[a] x\nplain\n[a|0|1]x\n")
    assert [(m.stream_key, m.seq, m.shard_id) for m in out] == [
        ("a", 0, 0),
        ("a", 1, 0),
        ("b", 0, 0),
        ("a", 5, 0),
        ("a", 6, 0),
        ("a", 9, 1),
        ("a", 7, 0),
        (BROADCAST, 0, 0),
        ("a", 0, 1),
    ]


def test_broadcast_flags_tell_keyless_lines_apart_from_a_literal_broadcast_key() -> None:
    decoder = LineDecoder(clock=clock)
    decoder.feed(b"plain\n[2022-01-01T00:00:00] ts only\n[broadcast] keyed\n[k] keyed\n")
    assert decoder.broadcast == [True, True, False, False]


def test_last_line_without_newline_is_decoded_by_finish() -> None:
    decoder = LineDecoder(clock=clock)
    assert [m.payload for m in decoder.feed(b"a\nb")] == [b"a"]
    assert [m.payload for m in decoder.finish()] == [b"b"]
    assert decoder.finish() == []


def test_encode_writes_all_four_fields_with_milliseconds() -> None:
    data = encode_lines(
        [
            Message("k", 3, 42, ms(2026, 11, 23, 7, 0, 0, 5), b"x y"),
            Message("other", 0, 0, ms(2026, 11, 23, 7, 0, 1), b"{}"),
        ]
    )
    assert data == (
        b"[2026-11-23T07:00:00.005 | k | 42 | 3] x y\n"
        b"[2026-11-23T07:00:01.000 | other | 0 | 0] {}\n"
    )


def test_encode_renames_the_stream_when_asked() -> None:
    decoded = decode(b"[2026-11-23T07:00:00.005 | k | 42 | 3] x\n")
    assert encode_lines(decoded, "renamed") == b"[2026-11-23T07:00:00.005 | renamed | 42 | 3] x\n"
    assert encode_lines(decoded) == b"[2026-11-23T07:00:00.005 | k | 42 | 3] x\n"


@pytest.mark.parametrize(("payload", "why"), [(b"a\nb", "newline"), (b"\xff\xfe", "UTF-8")])
def test_encode_refuses_payloads_the_format_cannot_carry(payload: bytes, why: str) -> None:
    with pytest.raises(DataError) as caught:
        encode_lines([Message("ok", 0, 1, 0, b"fine"), Message("k", 2, 7, 0, payload)])
    assert why in caught.value.what
    assert caught.value.where == "message k:2:7"
    assert "--output-format json" in caught.value.what


def test_seastreamer_three_field_output_is_read() -> None:
    out = decode(
        b"[2022-12-06T18:31:23 | clock | 7] tick\n[2022-12-06T18:31:23 | clock | 8] tock\n"
    )
    assert [(m.stream_key, m.seq, m.shard_id, m.timestamp, m.payload) for m in out] == [
        ("clock", 7, 0, ms(2022, 12, 6, 18, 31, 23), b"tick"),
        ("clock", 8, 0, ms(2022, 12, 6, 18, 31, 23), b"tock"),
    ]


# -- properties ---------------------------------------------------------------------------------

KEYS = st.from_regex(r"[A-Za-z0-9._-]{1,249}", fullmatch=True)
U64 = st.integers(min_value=0, max_value=MAX_U64)
# Year 1 to year 9999: the four-digit years the format can write.
TIMESTAMPS = st.integers(min_value=ms(1, 1, 1), max_value=ms(9999, 12, 31, 23, 59, 59, 999))


def carriable(text: str) -> bool:
    """What the line format can carry exactly: no newline, no trailing CR (stripped as a line
    terminator), and no leading whitespace before other text (the grammar strips it)."""
    if "\n" in text or text.endswith("\r"):
        return False
    return not text or not text.strip() or not text[0].isspace()


PAYLOADS = st.text(st.characters(exclude_categories=("Cs",))).filter(carriable)
MESSAGES = st.builds(
    Message, KEYS, U64, U64, TIMESTAMPS, PAYLOADS.map(lambda text: text.encode("utf-8"))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGES, max_size=8))
def test_format_then_parse_round_trips(messages: list[Message]) -> None:
    data = encode_lines(messages)
    assert data.count(b"\n") == len(messages)
    decoded = decode(data)
    assert decoded == messages
    # Re-encoding what was decoded gives the same bytes (the pass-through path agrees).
    assert encode_lines(decoded) == data


PLAIN_MESSAGES = st.builds(
    Message,
    st.sampled_from(["tick", "a.b", "Z-9_"]) | KEYS,
    st.sampled_from([0, 0, 7]) | U64,
    U64,
    TIMESTAMPS,
    st.tuples(
        st.characters(min_codepoint=33, max_codepoint=126),
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n\r")),
    ).map(lambda parts: (parts[0] + parts[1]).encode("utf-8")),
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(PLAIN_MESSAGES, min_size=16, max_size=90),
        st.lists(st.one_of(PLAIN_MESSAGES, MESSAGES), min_size=16, max_size=40),
    ),
    st.one_of(st.none(), KEYS),
)
def test_a_batch_encodes_exactly_as_its_messages_one_by_one(
    messages: list[Message], key: str | None
) -> None:
    # Batches of 16 or more are formatted column-wise (or handed back to the per-message loop
    # when a payload needs it); a single message always takes the loop.
    if all(m.payload[:1] > b" " and m.payload[:1] < b"\x80" for m in messages):
        assert _encode_columns(messages, key) is not None
    assert encode_lines(messages, key) == b"".join(encode_lines([m], key) for m in messages)
    assert decode(encode_lines(messages)) == messages


@settings(max_examples=200, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=5), KEYS)
def test_renamed_output_round_trips_with_the_new_key(messages: list[Message], key: str) -> None:
    decoded = decode(encode_lines(decode(encode_lines(messages)), key))
    assert [m.stream_key for m in decoded] == [key] * len(messages)
    assert [(m.seq, m.shard_id, m.timestamp, m.payload) for m in decoded] == [
        (m.seq, m.shard_id, m.timestamp, m.payload) for m in messages
    ]


LINE_PIECES = st.one_of(
    MESSAGES.map(lambda m: encode_lines([m])[:-1]),
    st.sampled_from([line for line, *_ in SPEC_VALID]).map(lambda s: s.encode("utf-8")),
    st.sampled_from([line for line, _ in SPEC_INVALID]).map(lambda s: s.encode("utf-8")),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
    st.just(b""),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE_PIECES, max_size=12), st.sampled_from(["\n", "\r\n"]), st.data())
def test_any_chunking_gives_the_same_messages(
    lines: list[bytes], terminator: str, data: st.DataObject
) -> None:
    blob = terminator.encode().join(lines) + data.draw(st.sampled_from([b"", b"\n"]))
    for policy in ("fail", "skip", "raw"):
        whole = LineDecoder(clock=clock, on_invalid=policy)
        expected = whole.feed(blob) + ([] if whole.error else whole.finish())
        cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=8)))
        chunked = LineDecoder(clock=clock, on_invalid=policy)
        got: list[Message] = []
        start = 0
        for cut in [*cuts, len(blob)]:
            if chunked.error is not None:
                break
            got += chunked.feed(blob[start:cut])
            start = cut
        if chunked.error is None:
            got += chunked.finish()
        assert got == expected
        assert (chunked.error is None) == (whole.error is None)
        if whole.error is not None:
            assert chunked.error is not None
            assert chunked.error.where == whole.error.where
            assert chunked.error.part == whole.error.part
        assert chunked.skipped == whole.skipped


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_random_bytes_never_crash_the_parser(chunks: list[bytes]) -> None:
    strict = LineDecoder(clock=clock)
    try:
        for chunk in chunks:
            strict.feed(chunk)
        strict.finish()
    except LineFormatError:
        assert strict.error is not None
    for policy in ("skip", "raw"):
        lenient = LineDecoder(clock=clock, on_invalid=policy)
        out = [m for chunk in chunks for m in lenient.feed(chunk)] + lenient.finish()
        lines = [
            line[:-1] if line.endswith(b"\r") else line for line in b"".join(chunks).split(b"\n")
        ]
        nonempty = [line for line in lines if line]
        if policy == "raw":
            assert len(out) == len(nonempty)
        else:
            assert len(out) + lenient.skipped == len(nonempty)


@settings(max_examples=300, deadline=None)
@given(
    st.text(st.sampled_from(list("[]| .:-+T0123456789abcZ\t\r\u00a0\u0661")), max_size=40).map(
        lambda s: s.encode("utf-8")
    )
)
def test_prefix_like_garbage_is_either_a_message_or_a_line_format_error(line: bytes) -> None:
    decoder = LineDecoder(clock=clock)
    out = decoder.feed(line + b"\n")
    stripped = line[:-1] if line.endswith(b"\r") else line
    if decoder.error is None:
        assert len(out) == (1 if stripped else 0)
    else:
        assert out == []
        assert isinstance(decoder.error, LineFormatError)
        assert decoder.error.where == "<stdin>:1"


@pytest.mark.parametrize("field", ["seq", "shard"])
def test_a_whole_chunk_with_a_number_past_u64_is_refused_like_a_single_line(field: str) -> None:
    # 100 canonical lines share one shard (or carry huge seqs): the bulk path must still check
    # the range, and the per-line rules then name the first line.
    big = MAX_U64 + 1
    data = b"".join(
        b'[2026-11-23T07:00:00.%03d | k | %d | %d] {"n":%d}\n'
        % (n, big if field == "seq" else n, big if field == "shard" else 0, n)
        for n in range(100)
    )
    decoder = LineDecoder("in")
    assert decoder.feed(data) == []
    assert decoder.error is not None
    assert decoder.error.where == "in:1" and str(big) in str(decoder.error)


@pytest.mark.parametrize(
    "bad", ["2026-02-30T07:00:00", "2026-11-23-07:00:00", "2026:11:23T07-00-00"]
)
def test_a_chunk_with_one_impossible_time_names_that_line(bad: str) -> None:
    # The bulk pattern only shapes the seconds; the calendar check must still catch these.
    lines = [b"[2026-11-23T07:00:00.%03d | k | %d | 0] x\n" % (n, n) for n in range(100)]
    lines[49] = b"[%s.000 | k | 49 | 0] x\n" % bad.encode()
    decoder = LineDecoder("in")
    got = decoder.feed(b"".join(lines))
    assert [m.seq for m in got] == list(range(49))
    assert decoder.error is not None and decoder.error.where == "in:50"


@pytest.mark.parametrize(
    "text",
    [
        "a plain, raw message",
        "[my_topic] a string payload",
        "[my_topic | 123 | 4] without a time",
        "[] brackets alone are a plain line",
        "é is not ASCII",  # the C scan hands non-ASCII lines to the general parser
    ],
)
def test_a_time_filled_in_says_so_by_its_type(text: str) -> None:
    # Outputs that can let the receiver stamp (Kafka) tell a filled-in time by its type.
    message = one(text)
    assert message.timestamp == NOW
    assert type(message.timestamp) is ReadTime


def test_a_time_the_line_carries_is_a_plain_int() -> None:
    lines = ["[2022-01-01T00:00:00.123 | t | 1 | 0] canonical", "[2022-01-01T00:00:00 | t] short"]
    for text in lines:
        message = one(text)
        assert type(message.timestamp) is int, text


def test_filled_in_times_stay_typed_across_chunks_and_the_general_parser() -> None:
    decoder = LineDecoder(clock=clock)
    out = decoder.feed(b"one\n[x] two\nthr") + decoder.feed(b"ee\n\xc3\xa9\n") + decoder.finish()
    assert [m.payload for m in out] == [b"one", b"two", b"three", "é".encode()]
    assert {type(m.timestamp) for m in out} == {ReadTime}


def test_on_invalid_raw_and_no_meta_lines_get_a_filled_in_time() -> None:
    raw = decode("[Jan 1, 2022] x\n", on_invalid="raw")
    no_meta = decode("[2022-01-01T00:00:00] kept as it is\n", no_meta=True)
    assert [type(m.timestamp) for m in raw + no_meta] == [ReadTime, ReadTime]
