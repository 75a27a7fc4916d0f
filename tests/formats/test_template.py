"""kcat-style ``-f`` output templates: fields, escapes, errors, renaming, batches."""

from __future__ import annotations

import pytest

from streamkit.errors import UsageError
from streamkit.formats.printing.template import FIELDS, LETTERS, Template
from streamkit.message import Message

M = Message("orders", 3, 41, 1_796_153_794_123, b"hello", b"k1", (("a", b"1"), ("b", b"x y")))
BARE = Message("tick", 0, 7, 0, b"{}")


def test_kcat_letters() -> None:
    t = Template("%t %p %o %T %k %K %s %S %h")
    assert t.render(M) == b"orders 3 41 1796153794123 k1 2 hello 5 a=1,b=x y"
    assert t.render(BARE) == b"tick 0 7 0  -1 {} 2 "  # no key: empty, length -1 (as kcat)


def test_named_fields_and_iso_time() -> None:
    t = Template("%{stream}:%{shard}:%{seq} %{time} %{partition}/%{offset} %{topic}")
    assert t.render(M) == b"orders:3:41 2026-12-01T19:36:34.123 3/41 orders"
    assert set(LETTERS.values()) <= set(FIELDS)


def test_escapes_and_literal_percent() -> None:
    t = Template("100%% of %s\\t\\\\\\r\\0\\n")
    assert t.render(M) == b"100% of hello\t\\\r\0\n"
    assert Template("plain text only").render(M) == b"plain text only"
    assert Template("").encode([M, M]) == b""


def test_non_ascii_text_and_binary_payloads_pass_through() -> None:
    binary = Message("b", 0, 0, 0, b"\xff\x00\xfe")
    assert Template("é→%s|").render(binary) == "é→".encode() + b"\xff\x00\xfe|"


def test_a_batch_is_one_bytes_object_and_the_stream_can_be_renamed() -> None:
    t = Template("%t %o %s\\n")
    assert t.encode([M, BARE]) == b"orders 41 hello\ntick 7 {}\n"
    assert t.encode([M, BARE], "out") == b"out 41 hello\nout 7 {}\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("%x", "unknown field %x"),
        ("%", "unknown field %:"),
        ("%{nope}", "unknown field %{nope}"),
        ("%{payload", "unknown field %{}"),
        ("\\q", "unknown escape \\q"),
        ("a\\", "unknown escape \\:"),
    ],
)
def test_bad_templates_are_usage_errors_naming_the_place(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        Template(text, option="-f")
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert says in message and "at character" in message and message.startswith("-f")
