"""What both models share: the customers (profiles), what they do and its `data`, the mix of activities, outages,
the clock and the JSON lines. The life cycle (joining, renewing, referring, being lost) is in `life`."""

from __future__ import annotations

import json
import math
from bisect import bisect
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, TextIO

from recovery.exceptions import RecoveryError
from recovery.simulate import life
from recovery.simulate.life import DAY, HOUR, cumulative

DEFAULT_START = "2026-01-05T00:00:00Z"

REGIONS = ("north", "south", "east", "west", "central", "coastal", "highlands", "metro")
TIERS = ("standard", "silver", "gold", "platinum")
TIER_WEIGHTS = (60, 25, 10, 5)
TIER_VALUE = {"standard": 240.0, "silver": 650.0, "gold": 1_600.0, "platinum": 5_200.0}
SEGMENTS = ("consumer", "small-business", "enterprise")
SEGMENT_WEIGHTS = (70, 22, 8)
LANGUAGES = ("en", "en", "en", "es", "fr", "de")
CALL_REASONS = ("billing", "technical", "outage", "plan-change", "moving", "cancellation", "other")
CALL_REASON_WEIGHTS = (30, 30, 8, 10, 5, 4, 13)
PAYMENT_METHODS = ("card", "direct-debit", "bank-transfer")
OUTAGE_CAUSES = ("fibre-cut", "power", "equipment", "software", "weather")
# Survey scores 0..10: about a quarter are detractors (6 or less).
SCORE_WEIGHTS = (2, 1, 2, 2, 3, 5, 7, 12, 20, 22, 24)
# Hour of day (UTC) of customer activity: mostly office hours.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 9, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1)

# What a customer does, beyond the first profile; weights per activity.
ACTIVITIES = (
    "service.call",
    "survey.response",
    "payment.failed",
    "complaint.opened",
    "customer.updated",
    "task.completed",
    "cancellation.requested",
)
ACTIVITY_WEIGHTS = (42.0, 18.0, 10.0, 10.0, 5.0, 4.0, 0.4)
LIVE_ACTIVITIES = (*ACTIVITIES, "customer.joined", "customer.referred", "customer.renewed", "customer.lost")
LIVE_ACTIVITY_WEIGHTS = (42.0, 18.0, 10.0, 10.0, 5.0, 4.0, 1.0, 0.2, 0.08, 0.6, 0.05)
"""The live mix: cancellations a little more often, so a short demo shows some; customers who join through the
channels, refer someone, renew, or are lost without distress (a customer who renews may be lost instead)."""

DEFAULT_ACTIVITY_PER_DAY = 0.2
"""Activities per customer per day when no `--events` target is given."""
BURST_SHARE = 0.06
"""Share of customers who call 3 to 5 times within a few days at some point."""
OUTAGE_EVERY_DAYS = 30.0
"""Mean days between two outages in one region."""
COMPLAINT_RESOLVED_IN_TIME = 0.62
COMPLAINT_RESOLVED_LATE = 0.20  # after 48 hours; the rest is never resolved

DEFAULT_RATE = 10.0
"""Live: events per second when no rate is given."""
LIVE_BURST_SHARE = 0.08
"""Live: share of service calls followed by 2 to 4 more calls of the same customer (2 minutes to 6 hours apart)."""
LIVE_OUTAGE_EVERY_S = 3 * HOUR
"""Live: mean simulated seconds between two outages (in any region)."""
LIVE_OUTAGE_CALL_SHARE = 0.5
"""Live: share of service calls, while an outage is on, that come from an affected region with reason `outage`."""


TIER_CUM = cumulative(TIER_WEIGHTS)
SEGMENT_CUM = cumulative(SEGMENT_WEIGHTS)
REASON_CUM = cumulative(CALL_REASON_WEIGHTS)
SCORE_CUM = cumulative(SCORE_WEIGHTS)
HOUR_CUM = cumulative(HOUR_WEIGHTS)
ACTIVITY_CUM = cumulative(ACTIVITY_WEIGHTS)
LIVE_ACTIVITY_CUM = cumulative(LIVE_ACTIVITY_WEIGHTS)
ACTIVITY_SHARE: dict[str, float] = dict(
    zip(ACTIVITIES, (w / sum(ACTIVITY_WEIGHTS) for w in ACTIVITY_WEIGHTS), strict=True)
)


class SimulateError(RecoveryError):
    """The simulated traffic cannot be sent."""


class BrokerError(SimulateError):
    """The Kafka broker cannot be reached or refused the events; the message names the bootstrap servers."""


def parse_start(text: str) -> int:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"start time {text!r} needs an offset (Z or +HH:MM)")
    return int(value.timestamp())


class Clock:
    """Formats integer epoch seconds as RFC 3339 UTC with `Z`, caching the date part per day."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, ts: int) -> str:
        day, rest = divmod(ts, DAY)
        date = self._days.get(day)
        if date is None:
            date = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).strftime("%Y-%m-%d")
            self._days[day] = date
        hour, rest = divmod(rest, HOUR)
        minute, second = divmod(rest, 60)
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}Z"


# The `data` of each kind of event. Both models draw through these, in this order, so changing one changes both.


def new_profile(rng: Random, n: int) -> dict[str, Any]:
    """Customer number `n`'s first profile."""
    random = rng.random
    tier = TIERS[bisect(TIER_CUM, random())]
    region = REGIONS[int(random() * len(REGIONS))]
    segment = SEGMENTS[bisect(SEGMENT_CUM, random())]
    value = round(TIER_VALUE[tier] * rng.lognormvariate(0.0, 0.35), 2)
    return {
        "tier": tier,
        "segment": segment,
        "region": region,
        "annual_value": value,
        "email": f"c{n}@example.com",
        "language": LANGUAGES[int(random() * len(LANGUAGES))],
    }


def changed_profile(rng: Random, profile: dict[str, Any]) -> dict[str, Any]:
    """A later profile: sometimes an upgrade or a downgrade, always a new annual value."""
    random = rng.random
    if random() < 0.25:
        i = TIERS.index(profile["tier"])
        i = min(len(TIERS) - 1, i + 1) if random() < 0.6 else max(0, i - 1)
        profile = {**profile, "tier": TIERS[i]}
    return {**profile, "annual_value": round(profile["annual_value"] * rng.uniform(0.9, 1.15), 2)}


def complaint(rng: Random, complaint_id: str) -> tuple[dict[str, Any], int]:
    """A complaint's `data` and the seconds until it is resolved (-1: never)."""
    random = rng.random
    data = {"complaint_id": complaint_id, "category": life.complaint_category(rng)}
    fate = random()
    if fate < COMPLAINT_RESOLVED_IN_TIME:
        return data, HOUR + int(random() * 46 * HOUR)
    if fate < COMPLAINT_RESOLVED_IN_TIME + COMPLAINT_RESOLVED_LATE:
        return data, 49 * HOUR + int(random() * 8 * DAY)
    return data, -1


def activity(rng: Random, kind: str, value: float) -> dict[str, Any]:
    """The `data` of a call, survey, failed payment, closed task or cancellation (`value`: the annual value)."""
    random = rng.random
    if kind == "service.call":
        return {"reason": CALL_REASONS[bisect(REASON_CUM, random())]}
    if kind == "survey.response":
        return {"score": bisect(SCORE_CUM, random()), "channel": "email" if random() < 0.7 else "sms"}
    if kind == "payment.failed":
        return {
            "amount": round(value / 12 * rng.uniform(0.8, 1.2), 2),
            "method": PAYMENT_METHODS[int(random() * len(PAYMENT_METHODS))],
            "attempt": 1 + int(random() * 3),
        }
    if kind == "task.completed":
        return life.care_task(rng)
    return {"channel": "phone" if random() < 0.6 else "web"}  # cancellation.requested


def outage_duration(rng: Random) -> int:
    """30 minutes to 10 hours, log-uniform: about half last 2 hours or more."""
    return int(math.exp(rng.uniform(math.log(30 * 60), math.log(10 * HOUR))))


def dumps(event: dict[str, Any]) -> str:
    """One event as its JSON line (without the newline)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def write(out: TextIO, lines: Iterator[str]) -> int:
    n = 0
    for line in lines:
        out.write(line)
        n += 1
    return n
