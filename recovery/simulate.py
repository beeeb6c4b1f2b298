"""Simulated traffic (DESIGN.md event envelopes): a deterministic batch of a period, or a live paced stream.

Customers come with a tier (standard/silver/gold/platinum about 60/25/10/5%), one of eight regions, a segment
and an annual value; they call (some several times in a row), complain (most complaints resolved, some only after
48 hours, some never), answer surveys (score 0 to 10), fail payments, change profile, close frontline tasks and,
rarely, ask to cancel. Regions have outages (`outage.started` with `data.region` and no customer,
`outage.resolved` 30 minutes to 10 hours later). All randomness comes from one `random.Random(seed)`.

- `generate` plans a whole period in memory and yields it sorted by `occurred_at` (ties keep generation order),
  event ids numbered in that order: byte-identical output for the same arguments (`bench/generate.py`).
- `live_events` is an endless stream at a fixed rate: every profile first, then one event per tick, each stamped
  with the (simulated) time of its tick; `run` sends either to a `Sink`, pacing the live one in real time.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import signal
import threading
import time
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import accumulate, count
from pathlib import Path
from random import Random
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from recovery.exceptions import RecoveryError
from recovery.times import format_time

if TYPE_CHECKING:
    from recovery.config import Settings

logger = logging.getLogger(__name__)

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


def _cum(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    cum = [w / total for w in accumulate(weights)]
    cum[-1] = 1.0
    return cum


TIER_CUM = _cum(TIER_WEIGHTS)
SEGMENT_CUM = _cum(SEGMENT_WEIGHTS)
REASON_CUM = _cum(CALL_REASON_WEIGHTS)
SCORE_CUM = _cum(SCORE_WEIGHTS)
HOUR_CUM = _cum(HOUR_WEIGHTS)
ACTIVITY_CUM = _cum(ACTIVITY_WEIGHTS)
LIVE_ACTIVITY_CUM = _cum(LIVE_ACTIVITY_WEIGHTS)
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
                outage_rows.append((ts, region, _outage_duration(rng)))
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


def _outage_duration(rng: Random) -> int:
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


Planned = tuple[float, int, str, str | None, dict[str, Any] | None]
"""A later event of the live model: (simulated time, seq, type, customer id, data; None for an outage to start)."""


class Traffic:
    """The live model: `profiles()` once, then `next(now)` for each tick, `now` in simulated epoch seconds.

    A tick sends what is due first (a repeat call, a complaint's resolution, an outage starting or ending), else a
    new activity of a customer (busier customers more often). Deterministic for the same seed and ticks.
    """

    def __init__(self, customers: int, seed: int, start: float) -> None:
        if customers < 1:
            raise ValueError("the live traffic needs at least one customer")
        self._rng = rng = Random(seed)  # noqa: S311 - simulated traffic, not security
        self._seed = seed
        width = max(6, len(str(customers)))
        self.customers = [(f"C-{n:0{width}d}", new_profile(rng, n)) for n in range(1, customers + 1)]
        self._busy_cum = _cum([rng.gammavariate(2.0, 1.0) for _ in self.customers])
        self._in_region: dict[str, list[int]] = {}
        for i, (_, profile) in enumerate(self.customers):
            self._in_region.setdefault(profile["region"], []).append(i)
        self._seq = count()
        self._due: list[Planned] = []
        self._outages: dict[str, str] = {}  # region -> outage id, while it is on
        self._outage_count = 0
        self._complaints: Counter[int] = Counter()
        self._plan(start + rng.expovariate(1.0 / LIVE_OUTAGE_EVERY_S), "outage.started", None, None)

    def profiles(self) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
        for cid, profile in self.customers:
            yield "customer.updated", cid, profile

    def next(self, now: float) -> tuple[str, str | None, dict[str, Any]]:
        rng = self._rng
        while self._due and self._due[0][0] <= now:
            _, _, kind, cid, data = heapq.heappop(self._due)
            if data is not None:
                if kind == "outage.resolved":
                    del self._outages[data["region"]]
                return kind, cid, data
            self._plan(now + rng.expovariate(1.0 / LIVE_OUTAGE_EVERY_S), "outage.started", None, None)
            free = [region for region in REGIONS if region not in self._outages]
            if free:
                return self._outage(now, free[int(rng.random() * len(free))])
        kind = ACTIVITIES[bisect(LIVE_ACTIVITY_CUM, rng.random())]
        if kind == "service.call":
            return self._call(now)
        i = bisect(self._busy_cum, rng.random())
        cid, profile = self.customers[i]
        if kind == "complaint.opened":
            self._complaints[i] += 1
            data, delay = complaint(rng, f"CMP-{self._seed}-{cid}-{self._complaints[i]}")
            if delay > 0:
                self._plan(now + delay, "complaint.resolved", cid, {"complaint_id": data["complaint_id"]})
            return kind, cid, data
        if kind == "customer.updated":
            profile = changed_profile(rng, profile)
            self.customers[i] = (cid, profile)
            return kind, cid, profile
        return kind, cid, activity(rng, kind, profile["annual_value"])

    def _plan(self, at: float, kind: str, cid: str | None, data: dict[str, Any] | None) -> None:
        heapq.heappush(self._due, (at, next(self._seq), kind, cid, data))

    def _outage(self, now: float, region: str) -> tuple[str, str | None, dict[str, Any]]:
        rng = self._rng
        self._outage_count += 1
        outage_id = f"OUT-{self._seed}-{self._outage_count:05d}"
        self._outages[region] = outage_id
        cause = OUTAGE_CAUSES[int(rng.random() * len(OUTAGE_CAUSES))]
        self._plan(now + _outage_duration(rng), "outage.resolved", None, {"outage_id": outage_id, "region": region})
        return "outage.started", None, {"outage_id": outage_id, "region": region, "cause": cause}

    def _call(self, now: float) -> tuple[str, str | None, dict[str, Any]]:
        rng = self._rng
        random = rng.random
        regions = [region for region in self._outages if region in self._in_region]
        if regions and random() < LIVE_OUTAGE_CALL_SHARE:
            members = self._in_region[regions[int(random() * len(regions))]]
            i, data = members[int(random() * len(members))], {"reason": "outage"}
        else:
            i, data = bisect(self._busy_cum, random()), activity(rng, "service.call", 0.0)
        cid = self.customers[i][0]
        if random() < LIVE_BURST_SHARE:
            at = now
            for _ in range(2 + int(random() * 3)):
                at += math.exp(rng.uniform(math.log(120), math.log(6 * HOUR)))
                self._plan(at, "service.call", cid, activity(rng, "service.call", 0.0))
        return "service.call", cid, data


def live_events(
    customers: int, seed: int, *, start: float, rate: float, duration_s: float = 0.0, time_scale: float = 1.0
) -> Iterator[tuple[float, dict[str, Any]]]:
    """(seconds after the start at which to send, event): every profile at 0, then one event every 1/`rate`
    seconds for `duration_s` (0: endless), stamped `start` + `time_scale` x that offset. Ids: `evt-SEED-N`."""
    if rate <= 0 or time_scale <= 0 or duration_s < 0:
        raise ValueError("rate and time scale must be > 0 and duration >= 0")
    traffic = Traffic(customers, seed, start)
    ids = count(1)

    def envelope(at: float, kind: str, cid: str | None, data: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": f"evt-{seed}-{next(ids):08d}",
            "type": kind,
            "occurred_at": format_time(round(at, 3)),
        }
        if cid is not None:
            event["customer_id"] = cid
        event["data"] = data
        return event

    for kind, cid, data in traffic.profiles():
        yield 0.0, envelope(start, kind, cid, data)
    for tick in count():
        offset = tick / rate
        if duration_s and offset >= duration_s:
            return
        now = start + time_scale * offset
        yield offset, envelope(now, *traffic.next(now))


def traffic(
    customers: int,
    seed: int,
    *,
    rate: float | None = None,
    duration_s: float = 0.0,
    time_scale: float = 1.0,
    start: float | None = None,
    fast: bool = False,
) -> Iterator[tuple[float, dict[str, Any]]]:
    """What `recovery simulate` sends, as (offset, event) pairs for `run`; arguments are checked here, at once.

    `fast`: the batch model (`generate`) over `duration_s` x `time_scale` simulated seconds, all at offset 0, from
    `start` (default `DEFAULT_START`); `rate` (if given) aims the total at `rate` x `duration_s` events. Else the
    live model (`live_events`) at `rate` (default `DEFAULT_RATE`) events per second, from `start` (default now).
    """
    if customers < (0 if fast else 1):
        raise ValueError(f"--customers must be at least {0 if fast else 1}, not {customers}")
    if (rate is not None and rate <= 0) or time_scale <= 0 or duration_s < 0:
        raise ValueError("--rate and --time-scale must be > 0, --duration >= 0")
    if not fast:
        begin = time.time() if start is None else start
        rate = DEFAULT_RATE if rate is None else rate
        return live_events(customers, seed, start=begin, rate=rate, duration_s=duration_s, time_scale=time_scale)
    if duration_s == 0:
        raise ValueError("--fast needs a --duration: the simulated period is the duration times the time scale")
    period = duration_s * time_scale
    events = None if rate is None else round(rate * duration_s)
    first = DEFAULT_START if start is None else format_time(start)
    batch = generate(customers, period / DAY, seed, events, start=first, daily_rhythm=period >= DAY)
    return ((0.0, event) for event in batch)


class Sink(Protocol):
    def send(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None:
        """Flush what was sent and release the destination."""


class FileSink:
    """JSON lines to a text stream; `flush_each` makes a live stream readable as it grows (`tail -f`)."""

    def __init__(self, out: TextIO, *, flush_each: bool = False, owned: bool = False) -> None:
        self._out = out
        self._flush_each = flush_each
        self._owned = owned

    @classmethod
    def to_path(cls, path: Path, *, flush_each: bool = False) -> FileSink:
        """A sink writing (UTF-8, `\\n` line ends) to a new `path`, creating its folder; `close` closes the file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path.open("w", encoding="utf-8", newline="\n"), flush_each=flush_each, owned=True)

    def send(self, event: dict[str, Any]) -> None:
        self._out.write(dumps(event) + "\n")
        if self._flush_each:
            self._out.flush()

    def close(self) -> None:
        if self._owned:
            self._out.close()
        else:
            self._out.flush()


class KafkaSink:
    """Produces each event to `topic` (acks=all), keyed by its customer id, or its outage id when it has none.

    `config` is passed to `kafka.KafkaProducer` as is (security settings). A broker that cannot be reached, or
    that refuses an event, raises `BrokerError`.
    """

    BOOTSTRAP_TIMEOUT_MS = 15_000

    def __init__(self, bootstrap_servers: str, topic: str, **config: Any) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self._servers = bootstrap_servers
        self._topic = topic
        self._kafka_error: type[Exception] = KafkaError
        self._failure: BaseException | None = None
        # A producer that fails to bootstrap raises from its constructor, leaving its client's sockets open.
        clients: list[Any] = []

        def client(**kwargs: Any) -> Any:
            clients.append(KafkaProducer.DEFAULT_CONFIG["kafka_client"](**kwargs))
            return clients[-1]

        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers.split(","),
                acks="all",
                linger_ms=5,
                bootstrap_timeout_ms=self.BOOTSTRAP_TIMEOUT_MS,
                kafka_client=client,
                **config,
            )
        except KafkaError:
            for made in clients:
                made.close()
            raise BrokerError(
                f"cannot reach a Kafka broker at {bootstrap_servers} within {self.BOOTSTRAP_TIMEOUT_MS / 1000:g} s"
                " (--bootstrap-servers, or the setting kafka_bootstrap_servers: RECOVERY_KAFKA_BOOTSTRAP_SERVERS)"
            ) from None

    @classmethod
    def from_settings(
        cls, settings: Settings, bootstrap_servers: str | None = None, topic: str | None = None
    ) -> KafkaSink:
        """A sink to `settings`' broker (with its security settings) and events topic, unless overridden."""
        config = settings.kafka_config()
        del config["bootstrap_servers"]
        return cls(bootstrap_servers or settings.kafka_bootstrap_servers, topic or settings.topic_events, **config)

    def _error(self, exc: BaseException) -> BrokerError:
        return BrokerError(f"Kafka at {self._servers} did not take the events for topic {self._topic}: {exc}")

    def _failed(self, exc: BaseException) -> None:
        self._failure = self._failure or exc

    def send(self, event: dict[str, Any]) -> None:
        if self._failure is not None:
            raise self._error(self._failure)
        key = event.get("customer_id") or event["data"].get("outage_id") or event["id"]
        try:
            future = self._producer.send(self._topic, key=key.encode(), value=dumps(event).encode())
        except self._kafka_error as exc:
            raise self._error(exc) from None
        future.add_errback(self._failed)

    def close(self) -> None:
        try:
            self._producer.flush(timeout=30)
        except self._kafka_error as exc:
            self._failed(exc)
        finally:
            self._producer.close(timeout=5)
        if self._failure is not None:
            raise self._error(self._failure)


def run(
    events: Iterable[tuple[float, dict[str, Any]]],
    sink: Sink,
    *,
    paced: bool,
    stopped: Callable[[], bool] = lambda: False,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Counter[str]:
    """Send `events` (offset, event) to `sink`, then close it; returns the events sent per type.

    `paced`: each event is sent `offset` real seconds after the run began (`live_events`); else as fast as the
    sink takes them. `stopped` is asked before each event and while waiting (at least every 0.1 s): once it is
    true the run ends cleanly, closing (flushing) the sink.
    """
    sent: Counter[str] = Counter()
    t0 = monotonic()
    try:
        for offset, event in events:
            while paced and (wait := t0 + offset - monotonic()) > 0 and not stopped():
                sleep(min(wait, 0.1))
            if stopped():
                break
            sink.send(event)
            sent[event["type"]] += 1
    finally:
        sink.close()
    return sent


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Inside, SIGINT (Ctrl-C) and SIGTERM ask for a clean stop (the yielded callable turns true) instead of
    killing the process; a second one raises `KeyboardInterrupt`. Outside the main thread, signals are left alone.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        logger.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        yield stop.is_set
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def summary(sent: Counter[str]) -> str:
    """One line: the total and the count per type, e.g. `120 events sent: customer.updated 20, service.call 50`."""
    per_type = ", ".join(f"{kind} {n}" for kind, n in sorted(sent.items()))
    return f"{sum(sent.values())} events sent" + (f": {per_type}" if per_type else "")
