"""Time and duration text: the one place where ``--since``, ``--interval`` and timestamps parse.

All instants are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import calendar
import re
import time

from streamkit.errors import UsageError

__all__ = ["format_ms", "parse_duration", "parse_iso", "parse_time", "utc_seconds"]

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
_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?"
)
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


def parse_iso(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`` → ms (UTC when no zone), or None if not ISO."""
    match = _ISO.fullmatch(text.strip())
    if not match:
        return None
    seconds = utc_seconds(*(int(g) for g in match.groups()[:6]))
    if seconds is None:
        return None
    fraction = match.group(7) or ""
    millis = int((fraction + "000")[:3])
    zone = match.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds * 1000 + millis


def parse_time(text: str, *, now_ms: int | None = None, what: str = "time") -> int:
    """A ``--since``/``--until`` value → ms: ISO-8601, unix epoch seconds, or relative ``-10m``."""
    value = text.strip()
    iso = parse_iso(value)
    if iso is not None:
        return iso
    relative = _RELATIVE.fullmatch(value)
    if relative:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return now - int(float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)] * 1000)
    try:
        epoch = float(value)
    except ValueError:
        epoch = -1.0
    if epoch >= 0:
        return int(epoch * 1000)
    raise UsageError(
        f"invalid {what} {text!r}: use ISO-8601 (2026-11-23T07:00:00), unix seconds "
        "(1795000000) or a relative time (-10m, -2h)"
    )


def format_ms(ms: int) -> str:
    """``2026-11-23T07:00:00.123``: UTC, always three fractional digits."""
    seconds, millis = divmod(ms, 1000)
    # Not strftime's %Y: it writes years before 1000 with fewer than four digits.
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}"
    )
