"""The loss review: every customer lost in the period, most valuable first, with their recovery history.

Definitions (docs/operations.md, "The customer-loss review"):

- A loss is a `customer.lost` event in `[from, to)`; its value, tier, segment and region are resolved at its time
  (customers.py). A customer lost twice in the period is two rows.
- Their **recovery history**: the tasks and gestures raised for them in the `LOOKBACK_S` (90 days) before the loss
  (`created_at` in `[lost - 90 d, lost)`), as they stand now (a task still open when the customer was lost is
  `cancelled`, reason `customer-lost`), and the effects muted for them in that window (by an inhibition or a snooze).
  The playbooks that fired are those of the tasks and gestures.
- **Recovery attempted**: at least one task or gesture in that window. A muted effect is not an attempt: nothing
  reached the customer.
- Totals: count and value, by reason (`unspecified` when the event names none); the lost value (and count) with no
  recovery attempt, and its share of the lost value (null when nothing of value was lost).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from recovery.report.customers import LifecycleEvent, ratio
from recovery.store.records import GestureRecord, MutedRecord, TaskRecord
from recovery.times import format_time, parse_time

LOOKBACK_S = 90 * 86400.0
"""How long before a loss the tasks and gestures raised for the customer count as attempts to recover them."""
CUSTOMER_LOST = "customer-lost"
T = TypeVar("T")


def _by_customer(items: Sequence[T], customer_of: Callable[[T], str]) -> dict[str, list[T]]:
    found: dict[str, list[T]] = {}
    for item in items:
        found.setdefault(customer_of(item), []).append(item)
    return found


def _task(t: TaskRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "playbook": t.task.playbook,
        "title": t.task.title,
        "created_at": format_time(t.created_ts),
        "status": t.status,
        "outcome": t.outcome,
        "reason_code": t.reason_code,
        "cancel_reason": t.cancel_reason,
    }


def _gesture(g: GestureRecord) -> dict[str, Any]:
    e = g.gesture
    return {
        "id": g.id,
        "playbook": e.playbook,
        "type": e.type,
        "amount": e.amount,
        "currency": e.currency,
        "status": g.status,
        "created_at": e.created_at,
    }


def _muted(m: MutedRecord) -> dict[str, Any]:
    return {
        "playbook": m.effect.playbook,
        "kind": m.effect.kind,
        "muted_by": m.muted_by,
        "reason": m.reason,
        "at": format_time(m.at),
    }


def loss_review(
    losses: list[LifecycleEvent],
    tasks: Sequence[TaskRecord],
    gestures: Sequence[GestureRecord],
    muted: Sequence[MutedRecord],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of the review, most valuable first (then earliest, then by customer id), and their totals. `tasks`,
    `gestures` and `muted` must cover `LOOKBACK_S` before the first loss."""
    tasks_of = _by_customer(tasks, lambda t: t.task.customer_id)
    gestures_of = _by_customer(gestures, lambda g: g.gesture.customer_id)
    muted_of = _by_customer(muted, lambda m: m.effect.customer_id)
    rows: list[dict[str, Any]] = []
    for loss in sorted(losses, key=lambda e: (-e.value, e.ts, e.fact.customer_id)):
        cid, since = loss.fact.customer_id, loss.ts - LOOKBACK_S
        found_tasks = [t for t in tasks_of.get(cid, ()) if since <= t.created_ts < loss.ts]
        found_gestures = [g for g in gestures_of.get(cid, ()) if since <= parse_time(g.gesture.created_at) < loss.ts]
        found_muted = [m for m in muted_of.get(cid, ()) if since <= m.at < loss.ts]
        playbooks = {t.task.playbook for t in found_tasks} | {g.gesture.playbook for g in found_gestures}
        rows.append(
            {
                "customer_id": cid,
                "at": format_time(loss.ts),
                "value": loss.value,
                "tier": loss.tier,
                "segment": loss.segment,
                "region": loss.region,
                "reason": loss.reason,
                "recovery_attempted": bool(found_tasks or found_gestures),
                "playbooks": sorted(playbooks),
                "tasks": [_task(t) for t in found_tasks],
                "gestures": [_gesture(g) for g in found_gestures],
                "muted": [_muted(m) for m in found_muted],
            }
        )
    return rows, _totals(rows)


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_reason: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = by_reason.setdefault(row["reason"], {"count": 0, "value": 0.0})
        entry["count"] += 1
        entry["value"] += row["value"]
    value = sum((row["value"] for row in rows), 0.0)
    unattempted = [row for row in rows if not row["recovery_attempted"]]
    unattempted_value = sum((row["value"] for row in unattempted), 0.0)
    cancelled = sum(1 for row in rows for t in row["tasks"] if t["cancel_reason"] == CUSTOMER_LOST)
    return {
        "count": len(rows),
        "value": value,
        "by_reason": dict(sorted(by_reason.items(), key=lambda item: (-item[1]["value"], item[0]))),
        "unattempted": {"count": len(unattempted), "value": unattempted_value},
        "unattempted_value_share": ratio(unattempted_value, value),
        "unattempted_count_share": ratio(len(unattempted), len(rows)),
        "tasks_cancelled_by_loss": cancelled,
    }
