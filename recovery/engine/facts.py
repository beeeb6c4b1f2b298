"""The facts the customer-loss review and its metrics need (`recovery report`), recorded as events go by: the
store's history keeps only what playbooks look back to, and profiles only the latest (see store/facts.py).

The engine calls `FactRecorder.record` once per new event (a duplicate is dropped by the ledger before), for the
types in `FACT_TYPES` only. It never reads the store: a lifecycle event is kept as it came (the report resolves its
value, tier, segment and region at that time from the profile history), a count is added in the store's memory
until its transaction commits, and every other fact is one queued insert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recovery.events import Event
from recovery.store.base import ReportFacts
from recovery.store.fact_records import CALLS, COMPLAINTS, LifecycleFact, OutageFact, ProfileFact, week_of

UNCATEGORIZED = "uncategorized"
"""The category of a complaint that names none."""
UNSPECIFIED = "unspecified"
"""The reason of a service call that names none."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


_HANDLERS = {
    "customer.joined": "_lifecycle",
    "customer.renewed": "_lifecycle",
    "customer.referred": "_lifecycle",
    "customer.lost": "_lifecycle",
    "customer.updated": "_profile",
    "complaint.opened": "_complaint",
    "service.call": "_call",
    "outage.started": "_outage",
    "outage.resolved": "_outage",
}
"""Each recorded type and the method that records it."""


class FactRecorder:
    """Records the report's facts of each event into `store` (its `ReportFacts` role)."""

    def __init__(self, store: ReportFacts) -> None:
        self.store = store
        self._handlers: dict[str, Callable[[Event, float], None]] = {
            event_type: getattr(self, name) for event_type, name in _HANDLERS.items()
        }

    def record(self, event: Event, ts: float) -> None:
        """Record what the report needs of `event`, which occurred at `ts` (nothing for a type it does not read)."""
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event, ts)

    def _lifecycle(self, event: Event, ts: float) -> None:
        data = event.data
        fact = LifecycleFact(
            event_id=event.id,
            kind=event.type.rsplit(".", 1)[1],
            customer_id=event.customer_id or "",
            ts=ts,
            value=_number(data.get("annual_value")),
            segment=_text(data.get("segment")),
            reason=_text(data.get("reason")),
            channel=_text(data.get("channel")),
            referred_id=_text(data.get("referred_customer_id")),
        )
        self.store.put_fact(fact)

    def _profile(self, event: Event, ts: float) -> None:
        data = event.data
        fact = ProfileFact(
            event_id=event.id,
            customer_id=event.customer_id or "",
            ts=ts,
            tier=str(data.get("tier") or "standard"),
            segment=_text(data.get("segment")),
            region=_text(data.get("region")),
            value=_number(data.get("annual_value")),
        )
        self.store.put_fact(fact)

    def _complaint(self, event: Event, ts: float) -> None:
        category = event.data.get("category")
        self.store.add_count(COMPLAINTS, UNCATEGORIZED if category is None else str(category), week_of(ts))

    def _call(self, event: Event, ts: float) -> None:
        reason = event.data.get("reason")
        self.store.add_count(CALLS, UNSPECIFIED if reason is None else str(reason), week_of(ts))

    def _outage(self, event: Event, ts: float) -> None:
        data = event.data
        kind = event.type.rsplit(".", 1)[1]
        outage_id = str(data.get("outage_id") or event.id)
        self.store.put_fact(OutageFact(outage_id, kind, ts, _text(data.get("region")), event.id))


FACT_TYPES = frozenset(_HANDLERS)
"""The event types whose facts are recorded: the engine calls the recorder for these only."""
