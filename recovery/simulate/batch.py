"""The batch model: a whole period planned at once (`generate`), deterministic per seed; `bench/generate.py` and
`recovery simulate --fast` run it."""

from __future__ import annotations

import math
from bisect import bisect
from collections.abc import Iterator
from itertools import count
from random import Random
from typing import Any

from recovery.simulate import life
from recovery.simulate.life import DAY, HOUR
from recovery.simulate.model import (
    ACTIVITIES,
    ACTIVITY_CUM,
    ACTIVITY_SHARE,
    BURST_SHARE,
    CALL_REASONS,
    COMPLAINT_RESOLVED_IN_TIME,
    COMPLAINT_RESOLVED_LATE,
    DEFAULT_ACTIVITY_PER_DAY,
    DEFAULT_START,
    HOUR_CUM,
    OUTAGE_CAUSES,
    OUTAGE_EVERY_DAYS,
    REASON_CUM,
    REGIONS,
    Clock,
    activity,
    changed_profile,
    complaint,
    dumps,
    new_profile,
    outage_duration,
    parse_start,
)

LOSS_PER_DAY = 0.035 / 30
"""About the share of customers the model loses a day (tests/bench/test_generate.py bounds it)."""


def expected_events_per_customer(activities: float, days: float = 30.0) -> float:
    """Expected events per customer at the start of a period of `days` with `activities` activities on average:
    their own (the profile, a possible burst of calls, renewals with their profile, what activities bring: a
    complaint's resolution, a payment made good, the save desk's closed task) and those of the customers who join
    meanwhile (a referral, their profile, `customer.joined`, activities over half the period on average), less the
    activities of lost customers after their loss (`LOSS_PER_DAY`)."""
    follow_ups = (
        ACTIVITY_SHARE["complaint.opened"] * (COMPLAINT_RESOLVED_IN_TIME + COMPLAINT_RESOLVED_LATE)
        + ACTIVITY_SHARE["payment.failed"] * life.PAYMENT_RECOVERED
        + ACTIVITY_SHARE["cancellation.requested"] * life.SAVE_DESK_REACH
    )
    per_activity = 1.0 + follow_ups * min(1.0, days)  # they come an hour to days later: few in a shorter period
    kept = max(0.5, 1.0 - LOSS_PER_DAY * days / 2.0)
    own = 1.0 + BURST_SHARE * 4.0 + 2.0 * days / life.RENEWAL_EVERY_DAYS + activities * per_activity * kept
    joiners = (life.JOIN_PER_DAY + life.REFERRAL_PER_DAY) * days
    return own + joiners * (3.0 + activities / 2.0 * per_activity)


def _activities_per_customer(customers: int, days: float, events: int | None, outages: float) -> float:
    if events is None:
        return DEFAULT_ACTIVITY_PER_DAY * days
    fixed = customers * expected_events_per_customer(0.0, days) + 2.0 * outages
    per = expected_events_per_customer(1.0, days) - expected_events_per_customer(0.0, days)
    return max(0.0, (events - fixed) / (customers * per))


Row = tuple[int, int, str, str | None, dict[str, Any]]
"""A planned event: (time, seq, type, customer id, data); seq is unique, so sorting never compares further."""


class _Batch:
    """Plans a period's events one customer at a time (`customer`), then those who joined meanwhile (`joined`).

    A customer's activities, outages and renewals are drawn first, then walked in time order (so profiles, values
    and complaint numbers follow time), each adding its consequences: a complaint's resolution, a payment made
    good, the save desk's closed task, referrals, and losses to come (`life`). The earliest loss within the period
    ends the customer's events. `calm` scales the chances per event (`life`).
    """

    def __init__(
        self,
        rng: Random,
        start: int,
        days: float,
        *,
        customers: int,
        activities: float,
        outages: list[tuple[int, str, int]],
        daily_rhythm: bool,
    ) -> None:
        self.rng = rng
        self.t0 = start
        self.span = int(days * DAY)
        self.t_end = start + self.span  # exclusive
        self.n_days = max(1, math.ceil(days))
        self.daily_rhythm = daily_rhythm
        self.width = max(6, len(str(customers)))
        self.activities = activities
        default = DEFAULT_ACTIVITY_PER_DAY * days
        self.calm = min(1.0, default / activities) if activities > 0 else 1.0
        self.outages: dict[str, list[tuple[int, int]]] = {}
        for ts, region, duration in outages:
            self.outages.setdefault(region, []).append((ts, duration))
        self.rows: list[Row] = []
        self.joiners: list[tuple[int, int, str]] = []  # (time, number, channel), in the order they were named
        self.numbers = count(customers + 1)
        self.save_desk = life.SaveDesk()

    def cid(self, n: int) -> str:
        return f"C-{n:0{self.width}d}"

    def moment(self, low: int) -> int:
        """A time at or after `low` with a daytime bias; past the period's end when it falls outside."""
        random = self.rng.random
        if not self.daily_rhythm:
            ts = self.t0 + int(random() * self.span)
            return ts if ts >= low else low + int(random() * max(1, self.t_end - low))
        first = max(0, (low - self.t0) // DAY)
        day = first + int(random() * (self.n_days - first))
        ts = self.t0 + day * DAY + bisect(HOUR_CUM, random()) * HOUR + int(random() * HOUR)
        if ts < low:
            ts = low + int(random() * 6 * HOUR)
        return ts

    def organic_joins(self, customers: int) -> None:
        """Customers joining through the channels over the period: about `JOIN_PER_DAY` of `customers` a day."""
        rate = customers * life.JOIN_PER_DAY / DAY
        ts = float(self.t0)
        while rate > 0:
            ts += self.rng.expovariate(rate)
            if ts >= self.t_end:
                break
            self.joiners.append((int(ts), next(self.numbers), life.join_channel(self.rng)))

    def joined(self) -> None:
        """Plans every customer who joined (a referral's too, as they come), in the order they were named."""
        i = 0
        while i < len(self.joiners):
            since, n, channel = self.joiners[i]
            i += 1
            self.customer(n, since, new_profile(self.rng, n), channel)

    def customer(self, n: int, since: int, profile: dict[str, Any], channel: str | None = None) -> None:
        """Customer number `n`, with us from `since` with `profile` (joined then through `channel`, unless None)."""
        rng = self.rng
        random = rng.random
        t_end = self.t_end
        calm = self.calm
        events: list[tuple[int, str, dict[str, Any]]] = [(since, "customer.updated", profile)]
        if channel is not None:
            events.append((since, "customer.joined", life.joined(profile, channel)))
        profiles = [(since, profile)]
        losses: list[tuple[int, str]] = []
        distress: list[int] = []
        referrals: list[int] = []
        low = since + 1

        def lose(at: int, gone: life.Loss | None) -> None:
            if gone is not None:
                losses.append((at + gone[0], gone[1]))

        plan: list[tuple[int, int, str, int]] = []  # (time, seq, kind, an outage's length)
        # A customer who joins is with us for the rest of the period; those of the start, for all of it (their first
        # profile comes within its first 6 hours, however short it is).
        mean = self.activities * (1.0 if channel is None else (t_end - since) / self.span)
        x = rng.gammavariate(2.0, mean / 2.0) if mean > 0 else 0.0  # overdispersed: some much busier than others
        for _ in range(int(x + random())):
            kind = ACTIVITIES[bisect(ACTIVITY_CUM, random())]
            ts = self.moment(low)
            if ts < t_end:
                plan.append((ts, len(plan), kind, 0))
        if random() < BURST_SHARE:  # 3 to 5 calls within 2 to 6 days
            first = self.moment(low)
            window = 2 * DAY + int(random() * 4 * DAY)
            last = -1
            for _ in range(3 + int(random() * 3)):
                ts = first + int(random() * window)
                if ts < t_end:
                    events.append((ts, "service.call", {"reason": CALL_REASONS[bisect(REASON_CUM, random())]}))
                    last = max(last, ts)
            if last >= 0:
                distress.append(last)
                lose(last, life.after_calls(rng, calm))
        for ts, duration in self.outages.get(profile["region"], ()):
            if since <= ts < t_end:
                plan.append((ts, len(plan), "outage", duration))
        year = life.RENEWAL_EVERY_DAYS * DAY
        ts = since + year if channel is not None else max(low, self.t0 + int(random() * year))
        while ts < t_end:
            plan.append((ts, len(plan), "renewal", 0))
            ts += year
        ts = since + int(rng.expovariate(life.BACKGROUND_LOSS_PER_DAY / DAY))
        if ts < t_end:
            losses.append((ts, life.background_reason(rng)))
        ts = since + int(rng.expovariate(life.REFERRAL_PER_DAY / DAY))
        if ts < t_end:
            referrals.append(ts)

        plan.sort()
        complaints = 0
        for ts, _, kind, duration in plan:
            if kind == "outage":
                hit, gone = life.after_outage(rng, duration, calm)
                if hit:
                    distress.append(ts)
                lose(ts, gone)
            elif kind == "renewal":
                recent = sum(1 for at in distress if ts - life.RENEWAL_LOOKBACK_S <= at < ts)
                renewed = life.renewal(rng, profile, recent, calm)
                if isinstance(renewed, str):
                    losses.append((ts, renewed))
                else:
                    profile, data = renewed
                    profiles.append((ts, profile))
                    events += [(ts, "customer.updated", profile), (ts, "customer.renewed", data)]
            elif kind == "customer.updated":
                profile = changed_profile(rng, profile)
                profiles.append((ts, profile))
                events.append((ts, kind, profile))
            elif kind == "complaint.opened":
                complaints += 1
                data, delay = complaint(rng, f"CMP-{n:0{self.width}d}-{complaints}")
                events.append((ts, kind, data))
                if delay > 0 and ts + delay < t_end:
                    events.append((ts + delay, "complaint.resolved", {"complaint_id": data["complaint_id"]}))
                hurt, gone = life.after_complaint(rng, delay, calm)
                if hurt:
                    distress.append(ts)
                lose(ts, gone)
            else:
                data = activity(rng, kind, profile["annual_value"])
                events.append((ts, kind, data))
                if kind == "payment.failed":
                    paid, gone = life.after_payment_failure(rng, data, calm)
                    if paid is None:
                        distress.append(ts)
                    elif ts + paid[0] < t_end:
                        events.append((ts + paid[0], "payment.succeeded", paid[1]))
                    lose(ts, gone)
                elif kind == "cancellation.requested":
                    distress.append(ts)
                    task, gone = life.after_cancellation(rng, calm)
                    if task is not None and ts + task[0] < t_end:
                        events.append((ts + task[0], "task.completed", task[1]))
                        self.save_desk.planned(data, task[1])
                    lose(ts, gone)
                elif kind == "survey.response":
                    hurt, gone, refer_in = life.after_survey(rng, data["score"], calm)
                    if hurt:
                        distress.append(ts)
                    lose(ts, gone)
                    if refer_in is not None and ts + refer_in < t_end:
                        referrals.append(ts + refer_in)

        end = min(losses, default=None)
        if end is not None and end[0] < t_end:  # nothing after the loss
            at, reason = end
            events = [event for event in events if event[0] <= at]
            last_profile = next(p for ts, p in reversed(profiles) if ts <= at)
            events.append((at, "customer.lost", life.lost(reason, last_profile)))
            referrals = [ts for ts in referrals if ts < at]
        cid = self.cid(n)
        rows = self.rows
        for ts, kind, data in events:
            rows.append((ts, len(rows), kind, cid, data))
        for ts in sorted(referrals):
            joins = ts + life.later(rng, HOUR, 7 * DAY)
            if joins < t_end:
                referred = next(self.numbers)
                rows.append((ts, len(rows), "customer.referred", cid, {"referred_customer_id": self.cid(referred)}))
                self.joiners.append((joins, referred, life.REFERRAL_CHANNEL))


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

    `customers` are customers at the start (`C-000001`...; those who join meanwhile are numbered after them).
    `events` aims the total at that many events (approximately); without it each customer has about
    0.2 activities a day. Activities follow office hours counted from `start` (`daily_rhythm`, for whole days);
    without it they are spread evenly over the period, which suits periods shorter than a day.
    The stream is planned in memory (compact tuples), sorted, then yielded.
    """
    if customers < 0 or days <= 0:
        raise ValueError("customers must be >= 0 and days > 0")
    rng = Random(seed)  # noqa: S311 - simulated traffic, not security
    t0 = parse_start(start)
    t_end = t0 + int(days * DAY)

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

    activities = _activities_per_customer(customers, days, events, len(outage_rows))
    batch = _Batch(
        rng, t0, days, customers=customers, activities=activities, outages=outage_rows, daily_rhythm=daily_rhythm
    )
    for n in range(1, customers + 1):
        profile_ts = t0 + int(rng.random() * min(batch.span, 6 * HOUR))
        batch.customer(n, profile_ts, new_profile(rng, n))
    batch.organic_joins(customers)
    batch.joined()

    rows = batch.rows
    for k, (ts, region, duration) in enumerate(outage_rows, start=1):
        outage_id = f"OUT-{k:05d}"
        cause = OUTAGE_CAUSES[int(rng.random() * len(OUTAGE_CAUSES))]
        rows.append((ts, len(rows), "outage.started", None, {"outage_id": outage_id, "region": region, "cause": cause}))
        if ts + duration < t_end:
            rows.append((ts + duration, len(rows), "outage.resolved", None, {"outage_id": outage_id, "region": region}))

    rows.sort()
    clock = Clock()
    save_desk = batch.save_desk
    for i, (at, _, event_type, customer_id, payload) in enumerate(rows, start=1):
        event: dict[str, Any] = {"id": f"evt-{i:08d}", "type": event_type, "occurred_at": clock(at)}
        if customer_id is not None:
            event["customer_id"] = customer_id
        event["data"] = payload
        save_desk.sent(customer_id, event["id"], payload)
        yield event


def generate_lines(customers: int, days: float, seed: int, events: int | None = None, **kwargs: Any) -> Iterator[str]:
    """`generate` as JSON lines, each ending with a newline."""
    for event in generate(customers, days, seed, events, **kwargs):
        yield dumps(event) + "\n"
