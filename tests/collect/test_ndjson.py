"""NDJSON bodies: the one-parse fast path takes exactly what the line-by-line decoder takes."""

from __future__ import annotations

import pytest

from streamkit.collect.ndjson import _slow_rows, ndjson_rows

GOOD = [
    b'{"ts":1700000000000,"key":"u1","headers":["h","v"],"payload":{"n":1}}\n',
    b'{"payload":"text"}\n{"payload":[1,2]}\n{"payload":null}\n',
    b'{"topic":"k","partition":2,"offset":9,"ts":5,"payload":3.5}',
    b'{"ts":1,"payload_base64":"AAEC"}\n\n{"ts":2}\n',
    b'{"ts":1,"key":{"base64":"/w=="},"headers":{"a":"b"},"payload":{"payload":1}}\n',
    b'{"ts":1,"payload":{"x":1},"key":"after"}\n',  # payload not last: re-serialised
]
BAD = [
    b'{"payload":1}\nnot json\n',
    b"[1]\n",
    b'{"payload":1} {"payload":2}\n',
    b'{"payload_base64":"!!"}\n',
    b'{"topic":"other","payload":1}\n',
    b"\n \n",
]


@pytest.mark.parametrize("body", GOOD)
def test_fast_and_slow_paths_agree_on_good_bodies(body: bytes) -> None:
    fast = ndjson_rows("k", body)
    slow = _slow_rows("k", body)
    assert isinstance(fast, list) and isinstance(slow, list)
    assert [r[:2] + r[3:] for r in fast] == [r[:2] + r[3:] for r in slow]
    assert all(r[0] == "k" for r in fast)


def test_exact_payload_text_and_fields() -> None:
    rows = ndjson_rows("k", GOOD[0] + b'{"ts":2,"payload": {"a" : 1}}\n')
    assert rows == [
        ("k", 0, 1700000000000, b'{"n":1}', b"u1", (("h", b"v"),)),
        ("k", 0, 2, b'{"a" : 1}', None, ()),
    ]


@pytest.mark.parametrize("body", BAD)
def test_bad_bodies_are_refused_with_one_line(body: bytes) -> None:
    reason = ndjson_rows("k", body)
    assert isinstance(reason, str) and "\n" not in reason
    assert reason == _slow_rows("k", body)
