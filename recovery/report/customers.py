"""The customers' side of the report: who was active at an instant and for how much (revenue), and the lifecycle
events of a period with their value, tier, segment and region at their time (the guerrilla metrics).

Definitions (docs/operations.md, "The customer-loss review"):

- A customer's **value** at an instant is the `annual_value` of their latest profile (`customer.updated`),
  `customer.joined` or `customer.renewed` at or before it that carries one (a renewal at a new price changes it);
  none known: 0. A lifecycle event's value is its own `annual_value`, or else the customer's value at its time.
- Their **tier**, **region** are their latest profile's (a customer without one is `standard`, region
  `unspecified`); their **segment** is the latest profile's or `customer.joined`'s that names one.
- A customer is **active** from their first profile, joining or renewal on, until a `customer.lost`; a later
  joining or renewal makes them active again (won back), a profile does not.
- **Revenue** at an instant: the sum of the active customers' values, by segment, tier and region; "at the start"
  of a period counts the facts before its start, "at the end" those before its end (periods are `[start, end)`).
- Facts at the same instant are taken profiles first, then by event id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from recovery.store.fact_records import FactSet, LifecycleFact, ProfileFact

UNSPECIFIED = "unspecified"


@dataclass
class _State:
    value: float | None = None
    tier: str = "standard"
    segment: str | None = None
    region: str | None = None
    known: bool = False  # a profile, joining or renewal seen
    lost: bool = False  # lost since, not won back

    @property
    def active(self) -> bool:
        return self.known and not self.lost


@dataclass(frozen=True)
class LifecycleEvent:
    """A lifecycle fact with the customer's value, tier, segment and region resolved at its time."""

    fact: LifecycleFact
    value: float
    tier: str
    segment: str
    region: str

    @property
    def ts(self) -> float:
        return self.fact.ts

    @property
    def reason(self) -> str:
        return self.fact.reason or UNSPECIFIED


@dataclass(frozen=True)
class Share:
    customers: int = 0
    value: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"customers": self.customers, "value": self.value}


@dataclass(frozen=True)
class Standing:
    """The active customers at an instant (`at`): how many, their value, by segment, tier and region."""

    at: float
    customers: int = 0
    value: float = 0.0
    by_segment: dict[str, Share] = field(default_factory=dict)
    by_tier: dict[str, Share] = field(default_factory=dict)
    by_region: dict[str, Share] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "value": self.value,
            "by_segment": {k: s.to_json() for k, s in sorted(self.by_segment.items())},
            "by_tier": {k: s.to_json() for k, s in sorted(self.by_tier.items())},
            "by_region": {k: s.to_json() for k, s in sorted(self.by_region.items())},
        }


def _standing(at: float, states: Iterable[_State]) -> Standing:
    groups: tuple[dict[str, list[float]], ...] = ({}, {}, {})
    customers, total = 0, 0.0
    for state in states:
        if not state.active:
            continue
        value = state.value or 0.0
        customers += 1
        total += value
        for group, key in zip(groups, (state.segment, state.tier, state.region), strict=True):
            entry = group.setdefault(key or UNSPECIFIED, [0, 0.0])
            entry[0] += 1
            entry[1] += value
    by_segment, by_tier, by_region = ({k: Share(int(n), v) for k, (n, v) in g.items()} for g in groups)
    return Standing(at, customers, total, by_segment, by_tier, by_region)


def sweep(facts: FactSet, instants: Iterable[float]) -> tuple[list[LifecycleEvent], dict[float, Standing]]:
    """Every lifecycle fact resolved at its time, and the standing at each of `instants` (of the facts before it),
    in one pass over the facts in time order."""
    points: list[tuple[float, int, str, ProfileFact | LifecycleFact]] = [
        (p.ts, 0, p.event_id, p) for p in facts.profiles
    ]
    points += [(f.ts, 1, f.event_id, f) for f in facts.lifecycle]
    points.sort(key=lambda point: point[:3])
    pending = sorted(set(instants))
    standings: dict[float, Standing] = {}
    states: dict[str, _State] = {}
    events: list[LifecycleEvent] = []
    i = 0
    for ts, _, _, fact in points:
        while i < len(pending) and pending[i] <= ts:
            standings[pending[i]] = _standing(pending[i], states.values())
            i += 1
        state = states.get(fact.customer_id)
        if state is None:
            state = states[fact.customer_id] = _State()
        if isinstance(fact, ProfileFact):
            state.known = True
            state.tier, state.region = fact.tier, fact.region
            state.segment = fact.segment or state.segment
            if fact.value is not None:
                state.value = fact.value
            continue
        value = fact.value if fact.value is not None else state.value or 0.0
        segment = (fact.segment if fact.kind == "joined" else None) or state.segment
        events.append(LifecycleEvent(fact, value, state.tier, segment or UNSPECIFIED, state.region or UNSPECIFIED))
        if fact.kind in ("joined", "renewed"):
            state.known, state.lost = True, False
            state.segment = segment
            if fact.value is not None:
                state.value = fact.value
        elif fact.kind == "lost":
            state.lost = True
    for at in pending[i:]:
        standings[at] = _standing(at, states.values())
    return events, standings


def _tally(events: list[LifecycleEvent]) -> dict[str, Any]:
    return {"count": len(events), "value": sum((e.value for e in events), 0.0)}


def ratio(part: float, whole: float) -> float | None:
    """`part / whole`, or None (JSON null) when `whole` is 0: a share of nothing is not 0."""
    return part / whole if whole else None


def customer_metrics(events: list[LifecycleEvent], start: Standing, end: Standing) -> dict[str, Any]:
    """The guerrilla metrics of one period's lifecycle events: new, lost, net, renewed (by reason), referrals, churn
    against the standing at the start, and the revenue at the start and end."""
    by_kind: dict[str, list[LifecycleEvent]] = {kind: [] for kind in ("joined", "renewed", "referred", "lost")}
    for event in events:
        by_kind[event.fact.kind].append(event)
    new, lost, renewed = _tally(by_kind["joined"]), _tally(by_kind["lost"]), _tally(by_kind["renewed"])
    reasons: dict[str, list[LifecycleEvent]] = {}
    for event in by_kind["renewed"]:
        reasons.setdefault(event.reason, []).append(event)
    return {
        "new": new,
        "lost": lost,
        "net": {"count": new["count"] - lost["count"], "value": new["value"] - lost["value"]},
        "renewed": {**renewed, "by_reason": {reason: _tally(found) for reason, found in sorted(reasons.items())}},
        "referrals": len(by_kind["referred"]),
        "churn": {
            "count_share": ratio(lost["count"], start.customers),
            "value_share": ratio(lost["value"], start.value),
        },
        "revenue_start": start.to_json(),
        "revenue_end": end.to_json(),
    }
