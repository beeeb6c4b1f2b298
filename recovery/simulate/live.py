"""The live model: an endless stream at a fixed rate (`live_events`), and `traffic`, either model as timed events."""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from itertools import count
from random import Random
from typing import Any

from recovery.simulate import life
from recovery.simulate.batch import generate
from recovery.simulate.life import DAY, HOUR
from recovery.simulate.model import (
    DEFAULT_RATE,
    DEFAULT_START,
    LIVE_ACTIVITIES,
    LIVE_ACTIVITY_CUM,
    LIVE_BURST_SHARE,
    LIVE_OUTAGE_CALL_SHARE,
    LIVE_OUTAGE_EVERY_S,
    OUTAGE_CAUSES,
    REGIONS,
    activity,
    changed_profile,
    complaint,
    new_profile,
    outage_duration,
)
from recovery.times import format_time

LIVE_CALM = 0.2
"""The chances of `life` in the live model (its customers are much busier than the batch model's)."""

Planned = tuple[float, int, str, str | None, dict[str, Any]]
"""A later event of the live model: (simulated time, seq, type, customer id, data). A type starting with `+` is a
step of the model, never sent as such: `+outage` (an outage to start), `+join` (a referred customer joins)."""


class Traffic:
    """The live model: `profiles()` once, then `next(now)` for each tick, `now` in simulated epoch seconds.

    A tick sends what is due first (a repeat call, a complaint's resolution, a payment made good, the save desk's
    closed task, a loss, a referred customer joining, an outage starting or ending), else a new activity: of a
    customer (busier customers more often), or a customer joining, referring someone, renewing or being lost.
    Nothing is sent about a customer after their loss. Deterministic for the same seed and ticks.

    Customers here are far busier than in life (a demo's customers act several times a simulated day, the batch
    model's once in five days): the chances of `life` are scaled by `LIVE_CALM` so that losses keep about the
    share of the events they have in a month of the batch model, a few in a thousand.
    """

    def __init__(self, customers: int, seed: int, start: float) -> None:
        if customers < 1:
            raise ValueError("the live traffic needs at least one customer")
        self._rng = rng = Random(seed)  # noqa: S311 - simulated traffic, not security
        self._seed = seed
        self._width = max(6, len(str(customers)))
        self.customers: list[tuple[str, dict[str, Any]]] = []
        """Every customer who has joined, lost ones too, in the order they joined."""
        self._busy: list[float] = []  # running totals of the customers' weights: busier customers act more
        self._in_region: dict[str, list[int]] = {}
        self._index: dict[str, int] = {}
        self._lost: set[int] = set()
        self._distress: dict[int, list[float]] = {}  # when each customer had distress (life), for renewals
        profiles = [new_profile(rng, n) for n in range(1, customers + 1)]
        weights = [rng.gammavariate(2.0, 1.0) for _ in profiles]
        for n, (profile, weight) in enumerate(zip(profiles, weights, strict=True), start=1):
            self._add(n, profile, weight)
        self._numbers = count(customers + 1)
        self.save_desk = life.SaveDesk()
        """Told of every event sent (`sent`): a cancellation request's planned closed task names its task."""
        self._seq = count()
        self._due: list[Planned] = []
        self._then: tuple[str, str | None, dict[str, Any]] | None = None  # sent at the next tick, before anything
        self._outages: dict[str, tuple[str, float]] = {}  # region -> (outage id, start), while it is on
        self._outage_count = 0
        self._complaints: Counter[int] = Counter()
        self._plan(start + rng.expovariate(1.0 / LIVE_OUTAGE_EVERY_S), "+outage", None, {})

    def profiles(self) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
        for cid, profile in self.customers:
            yield "customer.updated", cid, profile

    def next(self, now: float) -> tuple[str, str | None, dict[str, Any]]:
        rng = self._rng
        if self._then is not None:
            then, self._then = self._then, None
            return then
        while self._due and self._due[0][0] <= now:
            at, _, kind, cid, data = heapq.heappop(self._due)
            if kind == "+outage":
                self._plan(now + rng.expovariate(1.0 / LIVE_OUTAGE_EVERY_S), "+outage", None, {})
                free = [region for region in REGIONS if region not in self._outages]
                if free:
                    return self._outage(now, free[int(rng.random() * len(free))])
                continue
            if kind == "outage.resolved":
                self._outage_ended(at, data["region"])
                return kind, cid, data
            if kind == "+join":
                return self._join(now, data["n"], data["channel"])
            i = self._index[cid] if cid is not None else -1
            if i in self._lost:
                continue  # nothing after a loss
            if kind == "customer.lost":
                return self._lose(i, data["reason"])
            if kind == "customer.referred":
                return self._refer(now, i)
            return kind, cid, data
        kind = LIVE_ACTIVITIES[bisect(LIVE_ACTIVITY_CUM, rng.random())]
        if kind == "service.call":
            return self._call(now)
        anyone = kind in ("customer.renewed", "customer.lost")  # not a matter of how busy they are
        picked = None if kind == "customer.joined" else self._pick(uniform=anyone)
        if picked is None:  # a customer joins (or everyone was lost)
            return self._join(now, next(self._numbers), life.join_channel(rng))
        i = picked
        cid, profile = self.customers[i]
        calm = LIVE_CALM
        if kind == "customer.lost":
            return self._lose(i, life.background_reason(rng))
        if kind == "customer.renewed":
            return self._renew(now, i)
        if kind == "customer.referred":
            return self._refer(now, i)
        if kind == "complaint.opened":
            self._complaints[i] += 1
            data, delay = complaint(rng, f"CMP-{self._seed}-{cid}-{self._complaints[i]}")
            if delay > 0:
                self._plan(now + delay, "complaint.resolved", cid, {"complaint_id": data["complaint_id"]})
            hurt, gone = life.after_complaint(rng, delay, calm)
            self._after(now, i, hurt, gone)
            return kind, cid, data
        if kind == "customer.updated":
            profile = changed_profile(rng, profile)
            self.customers[i] = (cid, profile)
            return kind, cid, profile
        data = activity(rng, kind, profile["annual_value"])
        if kind == "payment.failed":
            paid, gone = life.after_payment_failure(rng, data, calm)
            if paid is not None:
                self._plan(now + paid[0], "payment.succeeded", cid, paid[1])
            self._after(now, i, paid is None, gone)
        elif kind == "cancellation.requested":
            task, gone = life.after_cancellation(rng, calm)
            if task is not None:
                self._plan(now + task[0], "task.completed", cid, task[1])
                self.save_desk.planned(data, task[1])
            self._after(now, i, True, gone)
        elif kind == "survey.response":
            hurt, gone, refer_in = life.after_survey(rng, data["score"], calm)
            if refer_in is not None:
                self._plan(now + refer_in, "customer.referred", cid, {})
            self._after(now, i, hurt, gone)
        return kind, cid, data

    def _plan(self, at: float, kind: str, cid: str | None, data: dict[str, Any]) -> None:
        heapq.heappush(self._due, (at, next(self._seq), kind, cid, data))

    def _add(self, n: int, profile: dict[str, Any], weight: float) -> int:
        i = len(self.customers)
        cid = f"C-{n:0{self._width}d}"
        self.customers.append((cid, profile))
        self._busy.append((self._busy[-1] if self._busy else 0.0) + weight)
        self._in_region.setdefault(profile["region"], []).append(i)
        self._index[cid] = i
        return i

    def _pick(self, *, uniform: bool = False, among: list[int] | None = None) -> int | None:
        """A customer not lost: busier ones more often (`uniform`: any alike; `among`: one of these, alike)."""
        random = self._rng.random
        busy = self._busy
        for _ in range(64):
            if among is not None:
                i = among[int(random() * len(among))]
            elif uniform:
                i = int(random() * len(busy))
            else:
                i = bisect(busy, random() * busy[-1])
            if i not in self._lost:
                return i
        active = [i for i in (range(len(busy)) if among is None else among) if i not in self._lost]
        return active[int(random() * len(active))] if active else None

    def _after(self, now: float, i: int, distress: bool, gone: life.Loss | None) -> None:
        """Distress (kept for renewals) and a loss to come, `gone[0]` seconds after `now`."""
        if distress:
            self._distress.setdefault(i, []).append(now)
        if gone is not None:
            self._plan(now + gone[0], "customer.lost", self.customers[i][0], {"reason": gone[1]})

    def _lose(self, i: int, reason: str) -> tuple[str, str | None, dict[str, Any]]:
        self._lost.add(i)
        self._distress.pop(i, None)
        cid, profile = self.customers[i]
        return "customer.lost", cid, life.lost(reason, profile)

    def _join(self, now: float, n: int, channel: str) -> tuple[str, str | None, dict[str, Any]]:
        """A customer joins: their profile now, `customer.joined` at the next tick."""
        rng = self._rng
        profile = new_profile(rng, n)
        cid = self.customers[self._add(n, profile, rng.gammavariate(2.0, 1.0))][0]
        self._then = ("customer.joined", cid, life.joined(profile, channel))
        return "customer.updated", cid, profile

    def _refer(self, now: float, i: int) -> tuple[str, str | None, dict[str, Any]]:
        """Customer `i` refers someone, who joins 10 minutes to 2 days later."""
        n = next(self._numbers)
        referred = f"C-{n:0{self._width}d}"
        self._plan(now + life.later(self._rng, 600, 2 * DAY), "+join", referred, {"n": n, "channel": "referral"})
        return "customer.referred", self.customers[i][0], {"referred_customer_id": referred}

    def _renew(self, now: float, i: int) -> tuple[str, str | None, dict[str, Any]]:
        """Customer `i`'s anniversary: lost, or the renewed profile now and `customer.renewed` at the next tick."""
        since = now - life.RENEWAL_LOOKBACK_S
        recent = sum(1 for at in self._distress.get(i, ()) if at >= since)
        renewed = life.renewal(self._rng, self.customers[i][1], recent, LIVE_CALM)
        if isinstance(renewed, str):
            return self._lose(i, renewed)
        cid = self.customers[i][0]
        profile, data = renewed
        self.customers[i] = (cid, profile)
        self._then = ("customer.renewed", cid, data)
        return "customer.updated", cid, profile

    def _outage(self, now: float, region: str) -> tuple[str, str | None, dict[str, Any]]:
        rng = self._rng
        self._outage_count += 1
        outage_id = f"OUT-{self._seed}-{self._outage_count:05d}"
        self._outages[region] = (outage_id, now)
        cause = OUTAGE_CAUSES[int(rng.random() * len(OUTAGE_CAUSES))]
        self._plan(now + outage_duration(rng), "outage.resolved", None, {"outage_id": outage_id, "region": region})
        return "outage.started", None, {"outage_id": outage_id, "region": region, "cause": cause}

    def _outage_ended(self, at: float, region: str) -> None:
        """The outage of `region` ended at `at`: its customers may leave some days later."""
        _, started = self._outages.pop(region)
        for i in self._in_region.get(region, ()):
            if i not in self._lost:
                hit, gone = life.after_outage(self._rng, at - started, LIVE_CALM)
                self._after(started, i, hit, gone)

    def _call(self, now: float) -> tuple[str, str | None, dict[str, Any]]:
        rng = self._rng
        random = rng.random
        regions = [region for region in self._outages if region in self._in_region]
        picked = None
        if regions and random() < LIVE_OUTAGE_CALL_SHARE:
            picked = self._pick(among=self._in_region[regions[int(random() * len(regions))]])
            data = {"reason": "outage"}
        if picked is None:
            picked, data = self._pick(), activity(rng, "service.call", 0.0)
        if picked is None:
            return self._join(now, next(self._numbers), life.join_channel(rng))
        i = picked
        cid = self.customers[i][0]
        if random() < LIVE_BURST_SHARE:
            at = now
            for _ in range(2 + int(random() * 3)):
                at += math.exp(rng.uniform(math.log(120), math.log(6 * HOUR)))
                self._plan(at, "service.call", cid, activity(rng, "service.call", 0.0))
            gone = life.after_calls(rng, LIVE_CALM)
            self._after(at, i, True, gone)
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
        traffic.save_desk.sent(cid, event["id"], data)
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
