"""JSON lines through orjson behave exactly as through the json module alone.

``formats/jsonl.py`` parses and writes with orjson and falls back to ``json`` for what orjson
refuses; here the same inputs go through both paths (orjson switched off by making it refuse
everything) and must give the same messages, bytes, errors and line numbers.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.formats import jsonl
from streamkit.message import Message

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
TEXTS = st.one_of(
    VALUES.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.sampled_from(
        ["NaN", "1e400", '"\\ud800"', "[1,", "{}", "", " 1 ", "123456789012345678901234567890"]
    ),
    st.text(max_size=20),
)


def outcome(call: Any) -> Any:
    try:
        return ("ok", repr(call()))
    except (ValueError, RecursionError) as error:
        return ("error", type(error).__name__, str(error))


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_loads_is_json_loads(text: str) -> None:
    assert outcome(lambda: jsonl._loads(text)) == outcome(lambda: json.loads(text))


NO_FLOATS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(NO_FLOATS)
def test_dumps_is_json_dumps(value: Any) -> None:  # what encode_json_lines gives it: no floats
    expected = outcome(lambda: json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    assert outcome(lambda: jsonl._dumps(value)) == expected


def refuse(_: Any) -> Any:
    raise orjson.JSONDecodeError("refused", "", 0)


def refuse_dumps(_: Any) -> Any:
    raise TypeError("refused")


def run(lines: list[bytes], policy: str) -> Any:
    decoder = jsonl.JsonLineDecoder("in.jsonl", clock=lambda: 7, on_invalid=policy)
    messages = decoder.feed(b"\n".join(lines) + b"\n")
    error = decoder.error
    encoded = None
    try:
        encoded = jsonl.encode_json_lines(messages)
    except (ValueError, TypeError) as exc:
        encoded = str(exc)
    return (
        messages,
        decoder.broadcast,
        None if error is None else (str(error), error.line_number),
        decoder.skipped,
        encoded,
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                lambda topic, offset, ts, payload: json.dumps(
                    {
                        "topic": topic,
                        "partition": 0,
                        "offset": offset,
                        "ts": ts,
                        "payload": payload,
                    },
                    ensure_ascii=False,
                ),
                st.sampled_from(["t", "bad key", None]),
                st.integers(0, 2**65),
                st.integers(0, 2**40),
                VALUES,
            ),
            TEXTS,
        ).map(lambda text: text.replace("\n", " ").encode("utf-8", "surrogatepass")),
        max_size=10,
    ),
    st.sampled_from(["fail", "skip", "raw"]),
)
def test_decoder_and_encoder_agree_with_and_without_orjson(lines: list[bytes], policy: str) -> None:
    fast = run(lines, policy)
    saved = jsonl._orjson_loads, jsonl._orjson_dumps
    jsonl._orjson_loads, jsonl._orjson_dumps = refuse, refuse_dumps  # json alone
    try:
        slow = run(lines, policy)
    finally:
        jsonl._orjson_loads, jsonl._orjson_dumps = saved
    assert fast == slow


def test_the_fallback_really_is_json() -> None:
    big = b'{"topic":"t","offset":1,"ts":2,"payload":123456789012345678901234567890}'
    decoder = jsonl.JsonLineDecoder(clock=lambda: 7)
    (message,) = decoder.feed(big + b"\n")
    assert message == Message("t", 0, 1, 2, b"123456789012345678901234567890")


@settings(max_examples=500, deadline=None)
@given(TEXTS.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_loads_of_bytes_gives_what_json_loads_gives(data: bytes) -> None:
    assert outcome(lambda: jsonl.loads(data)) == outcome(lambda: json.loads(data))


@pytest.mark.parametrize(
    "data",
    [b"NaN", b'{"a": Infinity}', b"1e400", b"12345678901234567890123", b'{"a": 1, "a": 2}',
     b'{"k": "\\ud800"}', b"", b"[1,", b'"\xff"'],
)  # fmt: skip
def test_loads_hands_what_orjson_reads_differently_to_json(data: bytes) -> None:
    assert outcome(lambda: jsonl.loads(data)) == outcome(lambda: json.loads(data))
