"""Durations and timestamps.

Inside the engine every instant is a float of seconds since the Unix epoch (UTC) and every duration a float of
seconds: cheap to compare and to store. Text forms are parsed and printed here only. A duration is at most 100
years; an instant is printed within the years RFC 3339 writes (0001 to 9999).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|w|d|h|m|s))+$"
MAX_DURATION_S = 36_525 * 86_400.0
"""100 years (of 365.25 days): no playbook waits or looks back longer, and an event's time plus a duration stays
a time RFC 3339 can write (for events before the year 9900)."""
FIRST_TS = -62_135_596_800.0
"""0001-01-01T00:00:00Z, the first instant RFC 3339 writes."""
LAST_TS = 253_402_300_799.0
"""9999-12-31T23:59:59Z, the last whole second RFC 3339 writes."""
END_TS = LAST_TS + 1.0
"""10000-01-01T00:00:00Z: every instant before it, and from FIRST_TS on, RFC 3339 writes."""


def parse_duration(text: str) -> float:
    """Parse `90s`, `45m`, `48h`, `7d`, `2w` or combinations such as `2h30m` into seconds."""
    text = text.strip()
    if not DURATION_RE.match(text):
        raise ValueError(
            f"'{text}' is not a duration: write a number and a unit (ms, s, m, h, d, w), e.g. 48h, 7d, 2h30m"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART_RE.findall(text))
    if not seconds <= MAX_DURATION_S:  # inf from hundreds of digits too
        raise ValueError(f"'{text}' is longer than 100 years (36525d)")
    return seconds


def format_duration(seconds: float) -> str:
    """Human form of a duration: `2d 3h`, `1h 59m`, `45s`."""
    total = round(seconds)
    if total == 0:
        return "0s"
    if total < 0:
        return "-" + format_duration(-seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts[:2])


def parse_time(text: str) -> float:
    """Parse an RFC 3339 timestamp that carries an offset (`Z` or `+02:00`) into epoch seconds."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an RFC 3339 timestamp") from exc
    if value.tzinfo is None:
        raise ValueError(f"'{text}' has no UTC offset: write it with Z or +HH:MM")
    return value.timestamp()


def format_time(ts: float) -> str:
    """RFC 3339 UTC with `Z`, with milliseconds only when there are any (truncated, as datetime's microseconds
    are: `datetime.fromtimestamp(ts, UTC)` printed, at a fraction of its cost, as every effect prints two).

    An instant RFC 3339 cannot write (before the year 0001, from the year 10000 on, infinite) is written as the
    nearest whole second it can: a due time 100 years after an event of the year 9950 is 9999-12-31T23:59:59Z. NaN, no
    instant at all, is a ValueError.
    """
    if not FIRST_TS <= ts < END_TS:
        if ts != ts:
            raise ValueError(f"not an instant: {ts!r}")
        ts = FIRST_TS if ts < FIRST_TS else LAST_TS
    # The split datetime.fromtimestamp makes: whole seconds and microseconds rounded half to even.
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    day, second = divmod(int(whole), 86400)
    date = _DATES.get(day)
    if date is None:
        date = _date_text(day)
    minute, second = divmod(second, 60)
    millis = micros // 1000
    if millis:
        return f"{date}T{_HOURS_MINUTES[minute]}:{_TWO_DIGITS[second]}.{_THREE_DIGITS[millis]}Z"
    return f"{date}T{_HOURS_MINUTES[minute]}:{_TWO_DIGITS[second]}Z"


_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
_THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))
_HOURS_MINUTES = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))


_DATES: dict[int, str] = {}
"""`YYYY-MM-DD` of days since the epoch, as printed so far (a few thousand at most in practice)."""
_MAX_DATES = 100_000


def _date_text(day: int) -> str:
    v = _EPOCH + timedelta(days=day)
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    if len(_DATES) >= _MAX_DATES:
        _DATES.clear()
    _DATES[day] = text
    return text


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
