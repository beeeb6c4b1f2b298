"""The holdout comparison: per playbook with a holdout, the customers it treated against those it held out, and the
share of each lost soon after.

Definitions (docs/operations.md, "The customer-loss review"; docs/playbooks.md, "Shadow and holdout"):

- A playbook is compared when it held out at least one customer in `[from, to)` (an effect kept as `held-out`).
- Its **customers**: those it triggered in `[from, to)`: a task or gesture raised, an effect muted (inhibited or
  snoozed: still treated, as the customer was assigned to be) or held out. Each counts once, at their **first
  trigger** in the period, in the group of that trigger (`treated` or `held_out`; the group is fixed by the
  customer and the playbook's salt, so it changes only when the share does).
- **Lost within N days** (N = 30, 90): a `customer.lost` fact in `[first trigger, first trigger + N days)`. Only
  customers whose N days ended by `to` count for that window (the others are `pending`): no window is cut short.
- **Save effect** = share lost of the held out - share lost of the treated: the share of customers the playbook
  kept (positive: fewer of the treated were lost). Its 95% confidence interval is the two-proportion normal
  approximation (Wald, unpooled): effect ± 1.96 * sqrt(p_t (1 - p_t) / n_t + p_h (1 - p_h) / n_h). Below
  `MIN_CUSTOMERS` counted customers in either group the window is `sufficient: false`, and the effect and interval
  are null (the shares and counts are still given): the approximation needs the counts to mean anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, Final

from recovery.engine.cases import HELD_OUT, SHADOW
from recovery.report.customers import ratio
from recovery.store.fact_records import LifecycleFact
from recovery.store.records import GestureRecord, MutedRecord, TaskRecord
from recovery.times import parse_time

WINDOWS_DAYS: Final = (30, 90)
"""The windows after a customer's first trigger in which a loss counts."""
MIN_CUSTOMERS: Final = 30
"""Fewer customers than this in either group, and a window's comparison is marked insufficient."""
CONFIDENCE: Final = 0.95
Z: Final = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
"""1.959964: the standard normal's quantile for a two-sided 95% interval."""
METHOD: Final = "two-proportion normal approximation (Wald, unpooled)"
DAY_S: Final = 86400.0
_Json = dict[str, Any]


def _first_triggers(
    tasks: Sequence[TaskRecord], gestures: Sequence[GestureRecord], muted: Sequence[MutedRecord]
) -> dict[str, dict[str, tuple[float, bool]]]:
    """Per playbook, per customer: the time of the first trigger and whether it was held out (the earliest wins; at
    the same time, a held-out one)."""
    found: dict[str, dict[str, tuple[float, bool]]] = {}

    def add(playbook: str, customer_id: str, ts: float, held_out: bool) -> None:
        customers = found.setdefault(playbook, {})
        seen = customers.get(customer_id)
        if seen is None or (ts, not held_out) < (seen[0], not seen[1]):
            customers[customer_id] = (ts, held_out)

    for t in tasks:
        add(t.task.playbook, t.task.customer_id, t.created_ts, False)
    for g in gestures:
        add(g.gesture.playbook, g.gesture.customer_id, parse_time(g.gesture.created_at), False)
    for m in muted:
        if m.reason != SHADOW:
            add(m.effect.playbook, m.effect.customer_id, m.at, m.reason == HELD_OUT)
    return found


def _group(
    customers: list[tuple[str, float]], losses: dict[str, list[float]], days: int, until: float
) -> dict[str, Any]:
    window_s = days * DAY_S
    counted = [(cid, ts) for cid, ts in customers if ts + window_s <= until]
    lost = sum(1 for cid, ts in counted if any(ts <= at < ts + window_s for at in losses.get(cid, ())))
    return {
        "customers": len(counted),
        "lost": lost,
        "share_lost": ratio(lost, len(counted)),
        "pending": len(customers) - len(counted),
    }


def compare(treated: dict[str, Any], held_out: dict[str, Any]) -> dict[str, Any]:
    """The save effect of one window (held out's share lost minus treated's), its 95% interval and whether the
    counts suffice (`MIN_CUSTOMERS` in each group); effect and interval null when they do not."""
    n_t, n_h = treated["customers"], held_out["customers"]
    sufficient = n_t >= MIN_CUSTOMERS and n_h >= MIN_CUSTOMERS
    if not sufficient:
        return {"save_effect": None, "ci95": None, "sufficient": False}
    p_t, p_h = treated["lost"] / n_t, held_out["lost"] / n_h
    effect = p_h - p_t
    margin = Z * math.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    return {"save_effect": effect, "ci95": [effect - margin, effect + margin], "sufficient": True}


def holdout_comparison(
    tasks: Sequence[TaskRecord],
    gestures: Sequence[GestureRecord],
    muted: Sequence[MutedRecord],
    lifecycle: Sequence[LifecycleFact],
    since: float,
    until: float,
) -> dict[str, Any]:
    """The comparison of every playbook that held out a customer in `[since, until)`, by playbook id (sorted), with
    the method, confidence and floor it used. `tasks`, `gestures` and `muted` may start before `since` (only the
    period's are read); `lifecycle` must hold the losses up to `until`."""
    triggers = _first_triggers(
        [t for t in tasks if since <= t.created_ts < until],
        [g for g in gestures if since <= parse_time(g.gesture.created_at) < until],
        [m for m in muted if since <= m.at < until],
    )
    losses: dict[str, list[float]] = {}
    for fact in lifecycle:
        if fact.kind == "lost":
            losses.setdefault(fact.customer_id, []).append(fact.ts)
    playbooks: dict[str, Any] = {}
    for playbook, customers in sorted(triggers.items()):
        groups: dict[bool, list[tuple[str, float]]] = {False: [], True: []}
        for cid, (ts, held_out) in sorted(customers.items()):
            groups[held_out].append((cid, ts))
        if not groups[True]:
            continue
        n_t, n_h = len(groups[False]), len(groups[True])
        windows: dict[str, Any] = {}
        for days in WINDOWS_DAYS:
            treated, held = _group(groups[False], losses, days, until), _group(groups[True], losses, days, until)
            windows[f"{days}d"] = {"days": days, "treated": treated, "held_out": held, **compare(treated, held)}
        playbooks[playbook] = {
            "customers": {"treated": n_t, "held_out": n_h},
            "held_out_share": ratio(n_h, n_t + n_h),
            "windows": windows,
        }
    return {"method": METHOD, "confidence": CONFIDENCE, "min_customers": MIN_CUSTOMERS, "playbooks": playbooks}
