"""JSON lines (kcat -J vocabulary): lossless both ways, including binary payloads, keys and
headers, JSON-string payloads and payloads with spaces."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import LineFormatError
from streamkit.formats.jsonl import JsonLineDecoder, encode_json_lines
from streamkit.message import BROADCAST, MAX_U64, Message, ReadTime

NOW = 1_795_417_200_123


def clock() -> int:
    return NOW


def decode(data: bytes, **kwargs: object) -> list[Message]:
    decoder = JsonLineDecoder(clock=clock, **kwargs)  # type: ignore[arg-type]
    out = decoder.feed(data) + decoder.finish()
    if decoder.error is not None:
        raise decoder.error
    return out


def round_trip(messages: list[Message]) -> list[Message]:
    return decode(encode_json_lines(messages))


def test_vocabulary_of_kcat() -> None:
    message = Message("orders", 2, 42, 1_795_417_200_123, b'{"id": 1}', b"user-1", (("h", b"v"),))
    line = encode_json_lines([message])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = json.loads(line)
    assert obj == {
        "topic": "orders",
        "partition": 2,
        "offset": 42,
        "ts": 1_795_417_200_123,
        "key": "user-1",
        "headers": ["h", "v"],
        "payload": {"id": 1},
    }
    assert line.rstrip().endswith(b',"payload":{"id": 1}}'), "payload verbatim and last"


@pytest.mark.parametrize(
    ("payload", "json_value"),
    [
        (b'{"a": 1,  "b": [1, 2]}', {"a": 1, "b": [1, 2]}),
        (b"[1, 2]", [1, 2]),
        (b"12345", 12345),
        (b"-0.5e3", -500.0),
        (b"true", True),
        (b"null", None),
        (b'"a json string"', '"a json string"'),
        (b"payload with  spaces ", "payload with  spaces "),
        (b" 1", " 1"),
        (b"1 ", "1 "),
        (b"", ""),
        (b"not json {", "not json {"),
        (b"line\nbreak", "line\nbreak"),
        ("ünïcode ✓".encode(), "ünïcode ✓"),
        (b'{"a": 1,"payload":2}', {"a": 1, "payload": 2}),
    ],
)
def test_payload_forms_round_trip_exactly(payload: bytes, json_value: object) -> None:
    message = Message("k", 0, 1, 5, payload)
    line = encode_json_lines([message])
    assert json.loads(line)["payload"] == json_value
    assert round_trip([message]) == [message]


def test_binary_payload_key_and_headers_use_base64() -> None:
    message = Message("k", 1, 2, 3, b"\xff\x00bin", b"\xfekey", (("h1", b"\x80"), ("h2", b"text")))
    obj = json.loads(encode_json_lines([message]))
    assert base64.b64decode(obj["payload_base64"]) == b"\xff\x00bin"
    assert "payload" not in obj
    assert obj["key"] == {"base64": base64.b64encode(b"\xfekey").decode()}
    assert obj["headers"] == ["h1", {"base64": base64.b64encode(b"\x80").decode()}, "h2", "text"]
    assert round_trip([message]) == [message]


def test_empty_key_is_not_a_missing_key() -> None:
    with_empty = Message("k", 0, 0, 0, b"x", b"")
    without = Message("k", 0, 0, 0, b"x")
    assert round_trip([with_empty, without]) == [with_empty, without]


def test_renaming_the_stream() -> None:
    obj = json.loads(encode_json_lines([Message("a", 0, 0, 0, b"x")], "b"))
    assert obj["topic"] == "b"


def test_foreign_lines_get_defaults() -> None:
    out = decode(b'{"payload": "hi"}\n{"topic": "t", "payload": {"x": 1}}\n{"topic": "t"}\n')
    assert [(m.stream_key, m.seq, m.shard_id, m.timestamp, m.payload) for m in out] == [
        (BROADCAST, 0, 0, NOW, b"hi"),
        ("t", 0, 0, NOW, b'{"x":1}'),  # not our member layout: compact JSON
        ("t", 1, 0, NOW, b""),
    ]
    decoder = JsonLineDecoder(clock=clock)
    decoder.feed(b'{"payload": 1}\n{"topic": "broadcast", "payload": 1}\n')
    assert decoder.broadcast == [True, False]


def test_kcat_style_dict_headers_and_spaces_after_colons() -> None:
    line = b'{"topic": "t", "offset": 3, "headers": {"a": "1"}, "payload": {"x":  1}}\n'
    (message,) = decode(line)
    assert message.headers == (("a", b"1"),)
    assert message.seq == 3
    assert json.loads(message.payload) == {"x": 1}


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (b"not json", "invalid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"topic": "a b", "payload": 1}', "' '"),
        (b'{"topic": "", "payload": 1}', "empty stream key"),
        (b'{"topic": "t", "partition": "x"}', "invalid JSON"),
        (b'{"topic": "t", "payload_base64": "***"}', "invalid JSON"),
        (b'{"topic": "t", "key": 5}', "key must be"),
        (b'{"topic": "t", "key": {"base64": "no!"}}', "invalid JSON"),
        (b'{"topic": "t", "payload": 1} \xff', "invalid JSON"),
        (b"[" * 100_000, "invalid JSON"),
    ],
)
def test_invalid_lines_are_line_format_errors_naming_the_line(line: bytes, what: str) -> None:
    decoder = JsonLineDecoder("in.jsonl", clock=clock)
    out = decoder.feed(b'{"payload": "first"}\n\n' + line + b"\n{}\n")
    assert [m.payload for m in out] == [b"first"]
    assert isinstance(decoder.error, LineFormatError)
    assert decoder.error.where == "in.jsonl:3"
    assert what in decoder.error.what
    with pytest.raises(LineFormatError):
        decoder.feed(b"{}\n")


def test_skip_and_raw_policies() -> None:
    warnings: list[str] = []
    data = b'{"payload": 1}\nnope\n{"topic": "a b"}\n{"payload": 2}\n'
    skip = JsonLineDecoder(clock=clock, on_invalid="skip", warn=warnings.append)
    assert [m.payload for m in skip.feed(data)] == [b"1", b"2"]
    assert skip.skipped == 2 and len(warnings) == 2 and warnings[0].startswith("<stdin>:2:")
    raw = JsonLineDecoder(clock=clock, on_invalid="raw")
    assert [(m.stream_key, m.payload) for m in raw.feed(data)] == [
        (BROADCAST, b"1"),
        (BROADCAST, b"nope"),
        (BROADCAST, b'{"topic": "a b"}'),
        (BROADCAST, b"2"),
    ]


# -- properties ---------------------------------------------------------------------------------

KEYS = st.from_regex(r"[A-Za-z0-9._-]{1,249}", fullmatch=True)
U64 = st.integers(min_value=0, max_value=MAX_U64)
JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
).flatmap(
    lambda value: st.sampled_from(
        [
            json.dumps(value),
            json.dumps(value, separators=(",", ":")),
            json.dumps(value, ensure_ascii=False),
            json.dumps({"payload": value, "x": [value]}, separators=(",", ":")),
        ]
    )
)
PAYLOADS = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda text: text.encode("utf-8")),
    JSON_TEXT.map(lambda text: text.encode("utf-8")),
)
MESSAGES = st.builds(
    Message,
    KEYS,
    U64,
    U64,
    st.integers(min_value=-(2**53), max_value=2**53),
    PAYLOADS,
    st.none() | st.binary(max_size=10),
    st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=10)), max_size=3).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGES, max_size=6))
def test_encode_then_decode_is_lossless(messages: list[Message]) -> None:
    data = encode_json_lines(messages)
    assert data.count(b"\n") == len(messages)
    assert decode(data) == messages
    assert encode_json_lines(decode(data)) == data


@settings(max_examples=100, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=4), st.data())
def test_any_chunking_gives_the_same_messages(messages: list[Message], data: st.DataObject) -> None:
    blob = encode_json_lines(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=6)))
    decoder = JsonLineDecoder(clock=clock)
    got: list[Message] = []
    start = 0
    for cut in [*cuts, len(blob)]:
        got += decoder.feed(blob[start:cut])
        start = cut
    assert got + decoder.finish() == messages


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=5))
def test_random_bytes_only_ever_raise_line_format_errors(chunks: list[bytes]) -> None:
    decoder = JsonLineDecoder(clock=clock)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.finish()
    except LineFormatError:
        assert decoder.error is not None


def test_a_json_line_without_a_timestamp_gets_a_filled_in_time() -> None:
    got = decode(b'{"payload": "a"}\n{"payload": "b", "ts": 5}\n')
    assert [type(m.timestamp) for m in got] == [ReadTime, int]
