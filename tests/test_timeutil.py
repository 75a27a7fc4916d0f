"""Durations, --since/--until times and timestamp text: the one place they parse."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.errors import UsageError
from streamkit.timeutil import format_ms, parse_duration, parse_iso, parse_time, time_note


def ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, milli: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + milli


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("2", 2.0),
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("1000000ns", 0.001),
        (" 3s ", 3.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "-1s", "1 s", "1x", "s", "1.s"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration(text, what="interval")
    assert caught.value.exit_code == 2
    assert "invalid interval" in str(caught.value)
    assert "500ms" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T07:00:00", ms(2026, 11, 23, 7)),
        ("2026-11-23 07:00:00", ms(2026, 11, 23, 7)),
        ("2026-11-23T07:00:00.5", ms(2026, 11, 23, 7, milli=500)),
        ("2026-11-23T07:00:00.123456789", ms(2026, 11, 23, 7, milli=123)),
        ("2026-11-23T07:00:00Z", ms(2026, 11, 23, 7)),
        ("2026-11-23T09:00:00+02:00", ms(2026, 11, 23, 7)),
        ("2026-11-23T02:30:00-0430", ms(2026, 11, 23, 7)),
        ("2024-02-29T00:00:00", ms(2024, 2, 29)),
        # forms the ISO-8601 regex did not take (issue 11 #8)
        ("2026-12-01", ms(2026, 12, 1)),
        ("2026-12-01T07:00", ms(2026, 12, 1, 7)),
        ("2026-12-01 07:00Z", ms(2026, 12, 1, 7)),
        ("2026-12-01T09:00+02:00", ms(2026, 12, 1, 7)),
        ("2026-12-01T07:00:00,5Z", ms(2026, 12, 1, 7, milli=500)),
        ("20261201T070000Z", ms(2026, 12, 1, 7)),
        ("2026-335", ms(2026, 12, 1)),
        ("2026-W49-2", ms(2026, 12, 1)),
        ("2026-01-01T24:00:00", ms(2026, 1, 2)),
        ("0001-01-01T01:00:00+01:00", ms(1, 1, 1)),
    ],
)
def test_iso_times(text: str, expected: int) -> None:
    assert parse_iso(text) == expected
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text", ["2023-02-29T00:00:00", "2026-13-01T00:00:00", "2026-01-01T25:00:00", "2026", "today"]
)
def test_impossible_iso_times_are_not_iso(text: str) -> None:
    assert parse_iso(text) is None


def test_epoch_milliseconds_from_ten_to_the_eleven() -> None:
    """Issue 11 #8: kcat takes milliseconds; 1796153794000 was read as seconds (year ~58,000)."""
    assert parse_time("1796153794000") == 1_796_153_794_000
    assert parse_time("99999999999") == 99_999_999_999_000  # still seconds: year 5138
    assert parse_time("100000000000") == 100_000_000_000
    assert time_note("1796153794000", "--since") == (
        "--since 1796153794000 is at least 10^11, so it is read as epoch milliseconds: "
        "2026-12-01T19:36:34.000 UTC"
    )
    assert time_note("1796153794", "--since") is None
    assert time_note("2026-12-01", "--since") is None


def test_now_and_today() -> None:
    now = ms(2026, 12, 1, 21, 36, 34, 250)
    assert parse_time("now", now_ms=now) == now
    assert parse_time(" NOW ", now_ms=now) == now
    assert parse_time("today", now_ms=now) == ms(2026, 12, 1)
    assert 0 <= parse_time("now") - parse_time("-1s") - 1000 < 1000


def test_epoch_seconds_and_relative_times() -> None:
    assert parse_time("1795000000") == 1_795_000_000_000
    assert parse_time("1795000000.25") == 1_795_000_000_250
    assert parse_time("0") == 0
    now = 1_795_000_000_000
    assert parse_time("-10m", now_ms=now) == now - 600_000
    assert parse_time("-2h", now_ms=now) == now - 7_200_000
    assert parse_time("-1.5s", now_ms=now) == now - 1500
    assert parse_time("-500ms", now_ms=now) == now - 500
    assert parse_time("-1d", now_ms=now) == now - 86_400_000


@pytest.mark.parametrize("text", ["yesterday", "-10", "-10x", "2023-02-29T00:00:00", "", "-1"])
def test_bad_times_show_the_accepted_forms(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_time(text, what="--since")
    message = str(caught.value)
    assert "invalid --since" in message
    assert "ISO-8601" in message and "-10m" in message


def test_format_ms_has_three_fraction_digits() -> None:
    assert format_ms(0) == "1970-01-01T00:00:00.000"
    assert format_ms(ms(2026, 11, 23, 7, 0, 0, 5)) == "2026-11-23T07:00:00.005"
    assert format_ms(-1) == "1969-12-31T23:59:59.999"
    assert format_ms(ms(999, 1, 2, 3, 4, 5, 6)) == "0999-01-02T03:04:05.006"


@given(st.integers(min_value=ms(1, 1, 1), max_value=ms(9999, 12, 31, 23, 59, 59, 999)))
def test_format_then_parse_round_trips(value: int) -> None:
    assert parse_time(format_ms(value)) == value
