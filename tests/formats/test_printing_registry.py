"""``streamkit.formats.printing``: the one registry of output formats, and what uses it."""

from __future__ import annotations

import click
import pytest

from streamkit.cli.decode import decode
from streamkit.cli.relay import relay
from streamkit.errors import UsageError
from streamkit.formats import codec, jsonl
from streamkit.formats.printing import DECODE_FORMATS, STREAM_FORMATS, stream_encoder
from streamkit.message import Message


def test_stream_formats_name_the_encoders_the_stdio_producer_calls() -> None:
    assert stream_encoder("line") is codec.encode_lines  # the C one when built: relay_lines
    assert stream_encoder("json") is jsonl.encode_json_lines
    message = Message("a", 0, 3, 1_795_417_200_123, b'{"x":1}')
    assert stream_encoder("line")([message], None) == (
        b'[2026-11-23T07:00:00.123 | a | 3 | 0] {"x":1}\n'
    )


def test_an_unknown_stream_format_is_a_usage_error_naming_the_option() -> None:
    with pytest.raises(UsageError, match="unknown output format 'xml': use line or json") as error:
        stream_encoder("xml")
    assert error.value.where == "--output-format"


def _choices(command: click.Command, name: str) -> list[str]:
    option = next(p for p in command.params if p.name == name)
    assert isinstance(option.type, click.Choice)
    return list(option.type.choices)


def test_the_cli_offers_exactly_the_registered_formats() -> None:
    assert _choices(decode, "fmt") == list(DECODE_FORMATS) == ["log", "ndjson", "ss-ndjson"]
    assert _choices(relay, "output_format") == list(STREAM_FORMATS) == ["line", "json"]
