"""The power players at risk: the most valuable customers (their profile's `annual_value`, then `tier`) with an
open case or a distress signal in the last 30 days of wall time, with what happened to them.

A distress signal, counted from the customer's kept events (the store's history) in the window: repeat calls (at
least `REPEAT_CALLS` service calls), outage minutes (any), an open complaint (opened, not resolved), a detractor's
survey score (`DETRACTOR` or lower), a failed payment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from recovery.api.context import ApiContext
from recovery.api.models import AtRiskOut, AtRiskPage, CaseOut, SignalsOut
from recovery.store.base import Store
from recovery.store.records import WatchedCustomer
from recovery.times import format_time

WINDOW_S = 30 * 86400.0
REPEAT_CALLS = 2
DETRACTOR = 6
"""Survey scores from 0 to this are a detractor's (NPS)."""
SIGNAL_TYPES = (
    "service.call",
    "outage.started",
    "outage.resolved",
    "complaint.opened",
    "complaint.resolved",
    "survey.response",
    "payment.failed",
)
CHUNK = 200
MAX_SCANNED = 20_000
"""Customers looked at for one answer, most valuable first: past this, the answer says it was cut."""


@dataclass(frozen=True)
class Signals:
    service_calls: int = 0
    outage_minutes: int = 0
    open_complaints: int = 0
    lowest_survey_score: int | None = None
    failed_payments: int = 0

    def why(self) -> list[str]:
        """The distress signals among these, in words."""
        found: list[str] = []
        if self.service_calls >= REPEAT_CALLS:
            found.append(f"{self.service_calls} service calls")
        if self.outage_minutes > 0:
            found.append(f"{self.outage_minutes} outage minutes")
        if self.open_complaints:
            found.append(f"{self.open_complaints} open complaint{'s' if self.open_complaints > 1 else ''}")
        if self.lowest_survey_score is not None and self.lowest_survey_score <= DETRACTOR:
            found.append(f"survey score {self.lowest_survey_score}")
        if self.failed_payments:
            found.append(f"{self.failed_payments} failed payment{'s' if self.failed_payments > 1 else ''}")
        return found


def signals(watched: WatchedCustomer, since: float, now: float) -> Signals:
    """What the customer's events since `since` say. An outage counts from its start (or the window's) to its
    resolution (or now); complaints and outages are paired by their ids (in order, when the store kept no data)."""
    calls = payments = 0
    lowest: int | None = None
    outages: dict[str, float] = {}
    outage_s = 0.0
    complaints: list[str] = []
    for occ in watched.events:
        data = occ.data
        if occ.type == "service.call":
            calls += 1
        elif occ.type == "payment.failed":
            payments += 1
        elif occ.type == "survey.response":
            score = data.get("score")
            if isinstance(score, int) and not isinstance(score, bool):
                lowest = score if lowest is None else min(lowest, score)
        elif occ.type == "outage.started":
            outages.setdefault(str(data.get("outage_id", "")), max(occ.ts, since))
        elif occ.type == "outage.resolved":
            started = outages.pop(str(data.get("outage_id", "")), since)
            outage_s += max(min(occ.ts, now) - started, 0.0)
        elif occ.type == "complaint.opened":
            complaints.append(str(data.get("complaint_id", "")))
        elif occ.type == "complaint.resolved":
            key = str(data.get("complaint_id", ""))
            if key in complaints:
                complaints.remove(key)
    outage_s += sum(max(now - started, 0.0) for started in outages.values())
    return Signals(calls, round(outage_s / 60), len(complaints), lowest, payments)


def at_risk(ctx: ApiContext, store: Store, limit: int) -> AtRiskPage:
    """The `limit` most valuable customers at risk; `truncated` when there are more (or more were not looked at)."""
    now = ctx.clock()
    since = now - WINDOW_S
    found: list[AtRiskOut] = []
    scanned = 0
    exhausted = False
    while len(found) <= limit and scanned < MAX_SCANNED:
        asked = min(CHUNK, MAX_SCANNED - scanned)
        chunk = store.customers_to_watch(since, SIGNAL_TYPES, asked, scanned)
        scanned += len(chunk)
        for watched in chunk:
            seen = signals(watched, since, now)
            why = [f"open case: {c.priority}, {c.status}" for c in watched.cases] + seen.why()
            if why:
                found.append(_item(watched, seen, why, now))
        if len(chunk) < asked:
            exhausted = True
            break
    truncated = len(found) > limit or not exhausted
    return AtRiskPage(items=found[:limit], since=format_time(since), limit=limit, truncated=truncated, scanned=scanned)


def _item(watched: WatchedCustomer, seen: Signals, why: list[str], now: float) -> AtRiskOut:
    segment = (watched.profile or {}).get("segment")
    return AtRiskOut(
        customer_id=watched.customer_id,
        annual_value=watched.annual_value,
        tier=watched.tier,
        segment=segment if isinstance(segment, str) else None,
        why=why,
        signals=SignalsOut(**dataclasses.asdict(seen)),
        cases=[CaseOut.of(c, now) for c in watched.cases],
    )
