"""Time and duration text: the one place where ``--since``, ``--interval`` and timestamps parse.

All instants are integer milliseconds since the Unix epoch, UTC. A time written without a zone
(``2026-12-01T07:00``, ``2026-12-01``, ``today``) is UTC, as every timestamp streamkit prints is:
the same text means the same instant on every machine, whatever its local zone.

ISO-8601 is python-dateutil's ``isoparse`` (every form of the standard: dates alone, ``T`` or a
space, basic and extended forms, fractions, ``Z``/``±HH:MM`` offsets, week and ordinal dates).
A bare number is an epoch time: seconds, or milliseconds from 10^11 on (kcat takes
milliseconds; 10^11 seconds is the year 5138, so no real time in seconds is that large).
"""

from __future__ import annotations

import calendar
import datetime
import re
import time

from streamkit.errors import UsageError

__all__ = [
    "EPOCH_MS_FROM",
    "format_ms",
    "parse_duration",
    "parse_iso",
    "parse_time",
    "time_note",
    "utc_seconds",
]

EPOCH_MS_FROM = 10**11
"""A bare epoch number at least this large is milliseconds, not seconds."""
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)?")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    None: 1.0,
}
_RELATIVE = re.compile(r"-(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str, *, what: str = "duration") -> float:
    """``500ms``, ``2s``, ``1.5m``, ``1h`` or bare seconds → seconds (float)."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise UsageError(
            f"invalid {what} {text!r}: write a number with a unit, e.g. 500ms, 2s, 1m, 1h"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def utc_seconds(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int | None:
    """Epoch seconds of a UTC calendar time, or None when it is not a real one."""
    if not (
        year >= 1  # year 0000 does not exist in the calendar calendar.timegm uses
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour < 24
        and minute < 60
        and second < 60
    ):
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def _isoparse(value: str) -> datetime.datetime:
    """dateutil's ``isoparse``, imported on first use: it is ~10 ms of every command's start-up."""
    from dateutil.parser import isoparse

    moment: datetime.datetime = isoparse(value)
    return moment


def parse_iso(text: str) -> int | None:
    """ISO-8601 in any of its forms → ms (UTC when no zone), or None if it is not one.

    A bare number is not taken as a year (``2026`` is epoch seconds, see ``parse_time``).
    """
    value = text.strip()
    if not value or _NUMBER.fullmatch(value):
        return None
    try:
        moment = _isoparse(value)
    except (ValueError, OverflowError):
        return None
    offset = moment.utcoffset()
    naive = moment.replace(tzinfo=None)
    seconds = calendar.timegm(naive.timetuple())
    if offset is not None:
        seconds -= int(offset.total_seconds())
    return seconds * 1000 + naive.microsecond // 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_time(text: str, *, now_ms: int | None = None, what: str = "time") -> int:
    """A ``--since``/``--until`` value → ms.

    ISO-8601 (``2026-12-01``, ``2026-12-01T07:00:00+02:00``), ``now``, ``today`` (midnight UTC),
    a relative time (``-10m``: ten minutes ago), or epoch seconds/milliseconds.
    """
    value = text.strip()
    now = _now_ms() if now_ms is None else now_ms
    word = value.lower()
    if word == "now":
        return now
    if word == "today":
        return now - now % 86_400_000
    if _NUMBER.fullmatch(value):
        epoch = float(value)
        return int(epoch) if epoch >= EPOCH_MS_FROM else int(epoch * 1000)
    relative = _RELATIVE.fullmatch(value)
    if relative:
        return now - int(float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)] * 1000)
    iso = parse_iso(value)
    if iso is not None:
        return iso
    raise UsageError(
        f"invalid {what} {text!r}: use ISO-8601 (2026-12-01, 2026-12-01T07:00:00+02:00; UTC "
        "when no zone), now, today, a relative time (-10m, -2h) or epoch seconds or "
        "milliseconds (1796153794, 1796153794000)"
    )


def time_note(text: str, what: str = "time") -> str | None:
    """What ``parse_time`` made of a value that could surprise (-v prints it), else None."""
    value = text.strip()
    if _NUMBER.fullmatch(value) and float(value) >= EPOCH_MS_FROM:
        return (
            f"{what} {value} is at least 10^11, so it is read as epoch milliseconds: "
            f"{format_ms(int(float(value)))} UTC"
        )
    return None


def format_ms(ms: int) -> str:
    """``2026-11-23T07:00:00.123``: UTC, always three fractional digits."""
    seconds, millis = divmod(ms, 1000)
    # Not strftime's %Y: it writes years before 1000 with fewer than four digits.
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}"
    )
