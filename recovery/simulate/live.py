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
from typing import TYPE_CHECKING, Any

from recovery.times import format_time

if TYPE_CHECKING:
    pass
from recovery.simulate.model import (
    ACTIVITIES,
    DAY,
    DEFAULT_RATE,
    DEFAULT_START,
    HOUR,
    LIVE_ACTIVITY_CUM,
    LIVE_BURST_SHARE,
    LIVE_OUTAGE_CALL_SHARE,
    LIVE_OUTAGE_EVERY_S,
    OUTAGE_CAUSES,
    REGIONS,
    activity,
    changed_profile,
    complaint,
    cumulative,
    generate,
    new_profile,
    outage_duration,
)

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
        self._busy_cum = cumulative([rng.gammavariate(2.0, 1.0) for _ in self.customers])
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
        self._plan(now + outage_duration(rng), "outage.resolved", None, {"outage_id": outage_id, "region": region})
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
