"""The batch model: customers, their activities and outages over a period (`generate`), deterministic per seed."""

from __future__ import annotations

import json
import math
from bisect import bisect
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from random import Random
from typing import TYPE_CHECKING, Any, TextIO

from recovery.exceptions import RecoveryError

if TYPE_CHECKING:
    pass


DEFAULT_START = "2026-01-05T00:00:00Z"

DAY = 86_400
HOUR = 3_600

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
TASK_OUTCOMES = ("resolved", "no-answer", "escalated", "customer-satisfied")
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
LIVE_ACTIVITY_WEIGHTS = (42.0, 18.0, 10.0, 10.0, 5.0, 4.0, 1.0)
"""The live mix: cancellations a little more often, so a short demo shows some."""

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


def cumulative(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    cum = [w / total for w in accumulate(weights)]
    cum[-1] = 1.0
    return cum


TIER_CUM = cumulative(TIER_WEIGHTS)
SEGMENT_CUM = cumulative(SEGMENT_WEIGHTS)
REASON_CUM = cumulative(CALL_REASON_WEIGHTS)
SCORE_CUM = cumulative(SCORE_WEIGHTS)
HOUR_CUM = cumulative(HOUR_WEIGHTS)
ACTIVITY_CUM = cumulative(ACTIVITY_WEIGHTS)
LIVE_ACTIVITY_CUM = cumulative(LIVE_ACTIVITY_WEIGHTS)
_ACTIVITY_SHARE = dict(zip(ACTIVITIES, (w / sum(ACTIVITY_WEIGHTS) for w in ACTIVITY_WEIGHTS), strict=True))


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
    data = {"complaint_id": complaint_id, "category": CALL_REASONS[bisect(REASON_CUM, random())]}
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
        return {
            "task_id": f"tsk-{rng.getrandbits(96):024x}",
            "outcome": TASK_OUTCOMES[int(random() * len(TASK_OUTCOMES))],
        }
    return {"channel": "phone" if random() < 0.6 else "web"}  # cancellation.requested


def expected_events_per_customer(activities: float) -> float:
    """Expected events of one customer with `activities` activities on average (complaints may add a resolution;
    the profile and a possible burst of calls come on top)."""
    per_activity = 1.0 + _ACTIVITY_SHARE["complaint.opened"] * (COMPLAINT_RESOLVED_IN_TIME + COMPLAINT_RESOLVED_LATE)
    return 1.0 + BURST_SHARE * 4.0 + activities * per_activity


def _activities_per_customer(customers: int, days: float, events: int | None, outages: float) -> float:
    if events is None:
        return DEFAULT_ACTIVITY_PER_DAY * days
    fixed = customers * expected_events_per_customer(0.0) + 2.0 * outages
    per = expected_events_per_customer(1.0) - expected_events_per_customer(0.0)
    return max(0.0, (events - fixed) / (customers * per))


def generate(
    customers: int,
    days: float,
    seed: int,
    events: int | None = None,
    *,
    start: str = DEFAULT_START,
    outage_every_days: float = OUTAGE_EVERY_DAYS,
    daily_rhythm: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield event envelopes (dicts) sorted by `occurred_at`; deterministic for the same arguments.

    `events` aims the total at that many events (approximately); without it each customer has about
    0.2 activities a day. Activities follow office hours counted from `start` (`daily_rhythm`, for whole days);
    without it they are spread evenly over the period, which suits periods shorter than a day.
    The stream is planned in memory (compact tuples), sorted, then yielded.
    """
    if customers < 0 or days <= 0:
        raise ValueError("customers must be >= 0 and days > 0")
    rng = Random(seed)  # noqa: S311 - simulated traffic, not security
    random = rng.random
    t0 = parse_start(start)
    span = int(days * DAY)
    t_end = t0 + span  # exclusive
    n_days = max(1, math.ceil(days))
    width = max(6, len(str(customers)))

    # (ts, seq, type, customer_id, data): seq is unique, so sorting never compares further than it.
    rows: list[tuple[int, int, str, str | None, dict[str, Any]]] = []
    add = rows.append

    def moment(low: int) -> int:
        """A time at or after `low` with a daytime bias; the end of the period when it falls outside."""
        if not daily_rhythm:
            ts = t0 + int(random() * span)
            return ts if ts >= low else low + int(random() * max(1, t_end - low))
        day = int(random() * n_days)
        ts = t0 + day * DAY + bisect(HOUR_CUM, random()) * HOUR + int(random() * HOUR)
        if ts < low:
            ts = low + int(random() * 6 * HOUR)
        return ts

    # Outages per region: exponential gaps, so about days / outage_every_days per region.
    outage_rows: list[tuple[int, str, int]] = []
    if outage_every_days > 0:
        for region in REGIONS:
            ts = t0 + 6 * HOUR
            while True:
                ts += int(rng.expovariate(1.0 / (outage_every_days * DAY)))
                if ts >= t_end:
                    break
                outage_rows.append((ts, region, outage_duration(rng)))
    outage_rows.sort()

    mean_activities = _activities_per_customer(customers, days, events, len(outage_rows))
    shape = 2.0  # overdispersed activity: some customers are much busier than others

    for n in range(1, customers + 1):
        cid = f"C-{n:0{width}d}"
        profile = new_profile(rng, n)
        value = profile["annual_value"]  # payments follow the first profile's value
        profile_ts = t0 + int(random() * min(span, 6 * HOUR))
        add((profile_ts, len(rows), "customer.updated", cid, profile))
        low = profile_ts + 1

        x = rng.gammavariate(shape, mean_activities / shape) if mean_activities > 0 else 0.0
        complaints = 0
        for _ in range(int(x + random())):
            kind = ACTIVITIES[bisect(ACTIVITY_CUM, random())]
            ts = moment(low)
            if ts >= t_end:
                continue
            resolved_at = -1
            if kind == "complaint.opened":
                complaints += 1
                data, delay = complaint(rng, f"CMP-{n:0{width}d}-{complaints}")
                if delay > 0 and ts + delay < t_end:
                    resolved_at = ts + delay
            elif kind == "customer.updated":
                data = profile = changed_profile(rng, profile)
            else:
                data = activity(rng, kind, value)
            add((ts, len(rows), kind, cid, data))
            if resolved_at > 0:
                add((resolved_at, len(rows), "complaint.resolved", cid, {"complaint_id": data["complaint_id"]}))

        if random() < BURST_SHARE:  # 3 to 5 calls within 2 to 6 days
            calls = 3 + int(random() * 3)
            first = moment(low)
            window = 2 * DAY + int(random() * 4 * DAY)
            for _ in range(calls):
                ts = first + int(random() * window)
                if ts < t_end:
                    reason = CALL_REASONS[bisect(REASON_CUM, random())]
                    add((ts, len(rows), "service.call", cid, {"reason": reason}))

    for k, (ts, region, duration) in enumerate(outage_rows, start=1):
        outage_id = f"OUT-{k:05d}"
        cause = OUTAGE_CAUSES[int(random() * len(OUTAGE_CAUSES))]
        add((ts, len(rows), "outage.started", None, {"outage_id": outage_id, "region": region, "cause": cause}))
        if ts + duration < t_end:
            add((ts + duration, len(rows), "outage.resolved", None, {"outage_id": outage_id, "region": region}))

    rows.sort()
    clock = Clock()
    for i, (at, _, event_type, customer_id, payload) in enumerate(rows, start=1):
        event: dict[str, Any] = {"id": f"evt-{i:08d}", "type": event_type, "occurred_at": clock(at)}
        if customer_id is not None:
            event["customer_id"] = customer_id
        event["data"] = payload
        yield event


def outage_duration(rng: Random) -> int:
    """30 minutes to 10 hours, log-uniform: about half last 2 hours or more."""
    return int(math.exp(rng.uniform(math.log(30 * 60), math.log(10 * HOUR))))


def dumps(event: dict[str, Any]) -> str:
    """One event as its JSON line (without the newline)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def generate_lines(customers: int, days: float, seed: int, events: int | None = None, **kwargs: Any) -> Iterator[str]:
    """`generate` as JSON lines, each ending with a newline."""
    for event in generate(customers, days, seed, events, **kwargs):
        yield dumps(event) + "\n"


def write(out: TextIO, lines: Iterator[str]) -> int:
    n = 0
    for line in lines:
        out.write(line)
        n += 1
    return n
