"""times: durations and RFC 3339 timestamps between text and epoch seconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.times import MAX_DURATION_S, format_duration, format_time, parse_duration, parse_time

_SIZES = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_CARRY = {"d": 10_000, "h": 24, "m": 60, "s": 60}  # a count below this does not spill into the next unit


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("90s", 90.0),
            ("45m", 2700.0),
            ("48h", 172800.0),
            ("7d", 604800.0),
            ("2w", 1209600.0),
            ("250ms", 0.25),
            ("1ms", 0.001),
            ("0s", 0.0),
            ("2h30m", 9000.0),
            ("1m30s", 90.0),
            ("1d2h3m4s5ms", 93784.005),
            ("1.5h", 5400.0),
            ("0.5d", 43200.0),
            ("1h1h", 7200.0),
            ("30m1h", 5400.0),
            ("  48h\n", 172800.0),
        ],
    )
    def test_valid(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == pytest.approx(seconds, abs=1e-9)

    @pytest.mark.parametrize(
        "text",
        ["", "h", "2", "2x", "2 h", "2h 30m", "-2h", "+2h", "1.h", ".5h", "2H", "2hours", "2min", "2m30", "1e3s", "½h"],
    )
    def test_invalid(self, text: str) -> None:
        with pytest.raises(ValueError) as info:
            parse_duration(text)
        assert str(info.value) == (
            f"'{text.strip()}' is not a duration: write a number and a unit (ms, s, m, h, d, w), e.g. 48h, 7d, 2h30m"
        )

    def test_at_most_a_hundred_years(self) -> None:
        assert parse_duration("36525d") == parse_duration("5217w6d") == 36525 * 86400.0

    @pytest.mark.parametrize("text", ["36525d1ms", "5218w", "3000000d", "9" * 400 + "h", "1" + "0" * 400 + "s"])
    def test_longer_than_a_hundred_years(self, text: str) -> None:
        with pytest.raises(ValueError) as info:
            parse_duration(text)
        assert str(info.value) == f"'{text}' is longer than 100 years (36525d)"


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (0, "0s"),
            (0.4, "0s"),
            (45, "45s"),
            (59.6, "1m"),
            (60, "1m"),
            (90, "1m 30s"),
            (3600, "1h"),
            (7199, "1h 59m"),
            (12600, "3h 30m"),
            (86400, "1d"),
            (90000, "1d 1h"),
            (86460, "1d 1m"),
            (93784, "1d 2h"),
            (14 * 86400, "14d"),
            (-90, "-1m 30s"),
            (-3600, "-1h"),
            (-0.4, "0s"),
        ],
    )
    def test_format(self, seconds: float, text: str) -> None:
        assert format_duration(seconds) == text

    @given(st.data())
    def test_two_parts_round_trip(self, data: st.DataObject) -> None:
        units = data.draw(st.lists(st.sampled_from(["d", "h", "m", "s"]), min_size=1, max_size=2, unique=True))
        seconds = sum(data.draw(st.integers(1, _CARRY[u] - 1)) * _SIZES[u] for u in units)
        assert parse_duration(format_duration(seconds).replace(" ", "")) == seconds

    @given(st.floats(min_value=0, max_value=MAX_DURATION_S))
    def test_keeps_the_two_largest_parts(self, seconds: float) -> None:
        text = format_duration(seconds)
        parts = text.split(" ")
        assert 1 <= len(parts) <= 2
        shown = parse_duration(text.replace(" ", ""))
        dropped = round(seconds) - shown
        assert 0 <= dropped < (_SIZES[parts[-1][-1]] if len(parts) == 2 else 1)

    @given(st.floats(min_value=1, max_value=1e10))
    def test_sign(self, seconds: float) -> None:
        assert format_duration(-seconds) == "-" + format_duration(seconds)


class TestTime:
    @pytest.mark.parametrize(
        ("text", "ts"),
        [
            ("1970-01-01T00:00:00Z", 0.0),
            ("2026-11-02T09:00:00Z", 1793610000.0),
            ("2026-11-02T09:00:00+00:00", 1793610000.0),
            ("2026-11-02T10:00:00+01:00", 1793610000.0),
            ("2026-11-02T04:30:00-04:30", 1793610000.0),
            ("2026-11-02T09:00:00.250Z", 1793610000.25),
        ],
    )
    def test_parse(self, text: str, ts: float) -> None:
        assert parse_time(text) == ts

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("2026-11-02T09:00:00", "'2026-11-02T09:00:00' has no UTC offset: write it with Z or +HH:MM"),
            ("2026-11-02", "'2026-11-02' has no UTC offset: write it with Z or +HH:MM"),
            ("yesterday", "'yesterday' is not an RFC 3339 timestamp"),
            ("2026-13-02T09:00:00Z", "'2026-13-02T09:00:00Z' is not an RFC 3339 timestamp"),
            ("", "'' is not an RFC 3339 timestamp"),
        ],
    )
    def test_parse_error(self, text: str, message: str) -> None:
        with pytest.raises(ValueError) as info:
            parse_time(text)
        assert str(info.value) == message

    @pytest.mark.parametrize(
        ("ts", "text"),
        [
            (0.0, "1970-01-01T00:00:00Z"),
            (1793610000.0, "2026-11-02T09:00:00Z"),
            (1793610000.25, "2026-11-02T09:00:00.250Z"),
            (1793610000.001, "2026-11-02T09:00:00.001Z"),
            (1793610000.9999, "2026-11-02T09:00:00.999Z"),
            # "milliseconds only when there are any": 0.4 ms shows none
            (1793610000.0004, "2026-11-02T09:00:00Z"),
        ],
    )
    def test_format(self, ts: float, text: str) -> None:
        assert format_time(ts) == text

    @given(
        st.one_of(
            st.floats(min_value=-5e9, max_value=5e10, allow_nan=False),
            st.integers(-5_000_000_000_000, 50_000_000_000_000).map(lambda us: us / 1e6),
            st.integers(-5_000_000_000, 50_000_000_000).map(lambda s: s + 0.9999995),
        )
    )
    def test_format_is_datetimes_own_printing(self, ts: float) -> None:
        """format_time prints what datetime.fromtimestamp gives, milliseconds truncated (its own arithmetic)."""
        v = datetime.fromtimestamp(ts, UTC)
        millis = v.microsecond // 1000
        expected = v.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}Z" if millis else "Z")
        assert format_time(ts) == expected

    @pytest.mark.parametrize(
        ("ts", "text"),
        [
            (253402300799.0, "9999-12-31T23:59:59Z"),
            (253402300798.5, "9999-12-31T23:59:58.500Z"),
            (-62135596800.0, "0001-01-01T00:00:00Z"),
            # RFC 3339 writes years 0001 to 9999: an instant beyond is written as the nearest it can write
            (253402300799.9999, "9999-12-31T23:59:59.999Z"),
            (math.nextafter(253402300800.0, 0), "9999-12-31T23:59:59.999Z"),  # the last float before 10000
            (253402300800.0, "9999-12-31T23:59:59Z"),
            (253402300799.0 + 100 * 365.25 * 86400, "9999-12-31T23:59:59Z"),
            (1e300, "9999-12-31T23:59:59Z"),
            (float("inf"), "9999-12-31T23:59:59Z"),
            (-62135596800.5, "0001-01-01T00:00:00Z"),
            (-1e300, "0001-01-01T00:00:00Z"),
            (float("-inf"), "0001-01-01T00:00:00Z"),
        ],
    )
    def test_format_clamps_to_the_years_rfc_3339_writes(self, ts: float, text: str) -> None:
        assert format_time(ts) == text

    def test_format_refuses_nan(self) -> None:
        with pytest.raises(ValueError, match=r"^not an instant: nan$"):
            format_time(float("nan"))

    @given(st.integers(min_value=0, max_value=4_000_000_000_000))
    def test_round_trip_at_millisecond_precision(self, ms: int) -> None:
        ts = ms / 1000
        assert parse_time(format_time(ts)) == ts

    @given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
    def test_format_is_utc_and_truncates_to_milliseconds(self, moment: datetime) -> None:
        ts = moment.timestamp()
        text = format_time(ts)
        assert text.endswith("Z")
        assert -1e-6 < ts - parse_time(text) < 0.001 + 1e-6
