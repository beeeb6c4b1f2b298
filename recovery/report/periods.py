"""The report's periods: calendar weeks (ISO, from Monday 00:00 UTC) or calendar months (from the 1st, 00:00 UTC),
cut to the report's `[from, to)`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from recovery.store.fact_records import WEEK_S, week_of
from recovery.times import format_time

By = Literal["week", "month"]
BY: tuple[By, ...] = ("week", "month")


@dataclass(frozen=True)
class Period:
    """`[start, end)` in epoch seconds, and its label (`2026-W45`, `2026-11`)."""

    start: float
    end: float
    label: str

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "from": format_time(self.start), "to": format_time(self.end)}


def _month_start(ts: float) -> datetime:
    moment = datetime.fromtimestamp(ts, UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def week_label(week: float) -> str:
    year, number, _ = datetime.fromtimestamp(week, UTC).isocalendar()
    return f"{year}-W{number:02d}"


def periods(since: float, until: float, by: By) -> list[Period]:
    """The calendar weeks or months that overlap `[since, until)`, each cut to it, in order."""
    found: list[Period] = []
    if by == "week":
        week = week_of(since)
        while week < until:
            found.append(Period(max(week, since), min(week + WEEK_S, until), week_label(week)))
            week += WEEK_S
        return found
    month = _month_start(since)
    while month.timestamp() < until:
        following = _next_month(month)
        found.append(Period(max(month.timestamp(), since), min(following.timestamp(), until), f"{month:%Y-%m}"))
        month = following
    return found


def weeks(since: float, until: float) -> list[float]:
    """The starts of the ISO weeks that overlap `[since, until)` (each counted whole by the weekly counts)."""
    week, found = week_of(since), []
    while week < until:
        found.append(week)
        week += WEEK_S
    return found
