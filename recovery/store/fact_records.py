"""What `recovery report` reads, kept by the engine as events go by (store/facts.py): lifecycle events, profile
versions, weekly counts and outages. Plain frozen records, the same for every store."""

from __future__ import annotations

from dataclasses import dataclass

LIFECYCLE_KINDS = ("joined", "renewed", "referred", "lost")
COMPLAINTS = "complaints"
"""The weekly count of `complaint.opened` per category (`uncategorized` when the event names none)."""
CALLS = "service_calls"
"""The weekly count of `service.call` per reason (`unspecified` when the event names none)."""
WEEK_S = 7 * 86400.0
MONDAY_S = 4 * 86400.0
"""1970-01-05T00:00:00Z, a Monday: weeks start on Mondays at 00:00 UTC (ISO weeks)."""


def week_of(ts: float) -> float:
    """The start (epoch seconds) of the ISO week `ts` falls in: Monday 00:00 UTC."""
    return (ts - MONDAY_S) // WEEK_S * WEEK_S + MONDAY_S


@dataclass(frozen=True)
class LifecycleFact:
    """A `customer.<kind>` event as it came: `value` is its `annual_value` (None when it has none)."""

    event_id: str
    kind: str
    customer_id: str
    ts: float
    value: float | None = None
    segment: str | None = None
    reason: str | None = None
    channel: str | None = None
    referred_id: str | None = None


@dataclass(frozen=True)
class ProfileFact:
    """A `customer.updated` event: the profile from `ts` on (until the next one)."""

    event_id: str
    customer_id: str
    ts: float
    tier: str = "standard"
    segment: str | None = None
    region: str | None = None
    value: float | None = None


@dataclass(frozen=True)
class OutageFact:
    """An outage's start or resolution (`kind`): the first of each per outage id counts."""

    outage_id: str
    kind: str
    ts: float
    region: str | None
    event_id: str


Fact = LifecycleFact | ProfileFact | OutageFact


@dataclass(frozen=True)
class WeeklyCount:
    metric: str
    key: str
    week: float
    n: int


@dataclass(frozen=True)
class Outage:
    """An outage paired: its region (the start's, else the resolution's), start, and resolution if any."""

    outage_id: str
    region: str | None
    started: float
    resolved: float | None


@dataclass(frozen=True)
class FactSet:
    """What a report reads: every lifecycle fact and profile before `until`, and the weekly counts and outages of the
    weeks it shows."""

    lifecycle: list[LifecycleFact]
    profiles: list[ProfileFact]
    counts: list[WeeklyCount]
    outages: list[Outage]
