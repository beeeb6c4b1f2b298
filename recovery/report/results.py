"""Recovery results per playbook: what became of the tasks it raised in the period, what its gestures cost, and
what was muted.

Definitions (docs/operations.md, "The customer-loss review"), over the tasks raised (`created_at`) in `[from, to)`, as
they stand now:

- `tasks`: raised; `completed`: done (any outcome); `saved`, `lost`, `unreachable`, `not_needed`: done with that
  outcome; `cancelled` (of which `cancelled_customer_lost`); `open`: not done yet (open, claimed or escalated).
- `save_rate` = saved / (saved + lost + unreachable): of the customers a call was needed for and made or tried,
  the share kept. `not-needed` is left out (nothing to save), and so are tasks not done yet and cancelled ones (no
  outcome); an unreachable customer counts against (not saved). Null when the denominator is 0.
- `median_completion_s`: the median of (completed - raised) over the completed tasks, in seconds; null when none.
- `overdue`: completed after their due time, or not done yet with a due time before `to`.
- Gestures raised in `[from, to)`, per type and currency: `count`, `spend` (the amounts approved or issued),
  `pending` (the amounts proposed, waiting for approval), `rejected` (how many).
- `muted`: the tasks muted in `[from, to)` (by an inhibition or a snooze), by what muted them.
- `shadow`: the effects the playbook would have raised in shadow mode in `[from, to)` (tasks, gestures, and the
  gestures' amounts per currency), in all and `by_version` (the playbook's version as text).
- `held_out`: the tasks and gestures it kept for customers in its holdout in `[from, to)` (holdout.py compares them).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from recovery.effects import Gesture
from recovery.engine.cases import HELD_OUT, SHADOW
from recovery.store.records import ACTIVE, GestureRecord, MutedRecord, TaskRecord

OUTCOMES = ("saved", "lost", "unreachable", "not-needed")
SPENT = ("approved", "issued")


def _empty() -> dict[str, Any]:
    return {
        "tasks": 0,
        "completed": 0,
        "saved": 0,
        "lost": 0,
        "unreachable": 0,
        "not_needed": 0,
        "cancelled": 0,
        "cancelled_customer_lost": 0,
        "open": 0,
        "save_rate": None,
        "median_completion_s": None,
        "overdue": 0,
        "gestures": [],
        "muted": {"tasks": 0, "by": {}},
        "shadow": {**_withheld(), "by_version": {}},
        "held_out": {"tasks": 0, "gestures": 0},
    }


def _withheld() -> dict[str, Any]:
    return {"tasks": 0, "gestures": 0, "gesture_amount": {}}


def _count(found: dict[str, Any], m: MutedRecord) -> None:
    """Add a shadow effect to `found` (made by `_withheld`): a task, or a gesture and its amount."""
    effect = m.effect
    if isinstance(effect, Gesture):
        found["gestures"] += 1
        found["gesture_amount"][effect.currency] = found["gesture_amount"].get(effect.currency, 0.0) + effect.amount
    else:
        found["tasks"] += 1


def playbook_results(
    tasks: Sequence[TaskRecord], gestures: Sequence[GestureRecord], muted: Sequence[MutedRecord], until: float
) -> dict[str, dict[str, Any]]:
    """Per playbook id (sorted), the results of the tasks, gestures and muted tasks of one period (`until`: its
    end, for what is overdue)."""
    results: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[float]] = {}
    for t in tasks:
        r = results.setdefault(t.task.playbook, _empty())
        r["tasks"] += 1
        if t.status == "done":
            r["completed"] += 1
            if t.outcome in OUTCOMES:
                r[str(t.outcome).replace("-", "_")] += 1
            if t.completed_at is not None:
                durations.setdefault(t.task.playbook, []).append(t.completed_at - t.created_ts)
                r["overdue"] += t.completed_at > t.due_ts
        elif t.status == "cancelled":
            r["cancelled"] += 1
            r["cancelled_customer_lost"] += t.cancel_reason == "customer-lost"
        elif t.status in ACTIVE:
            r["open"] += 1
            r["overdue"] += t.due_ts < until
    spend: dict[tuple[str, str, str], dict[str, Any]] = {}
    for g in gestures:
        e = g.gesture
        entry = spend.setdefault(
            (e.playbook, e.type, e.currency),
            {"type": e.type, "currency": e.currency, "count": 0, "spend": 0.0, "pending": 0.0, "rejected": 0},
        )
        entry["count"] += 1
        if g.status in SPENT:
            entry["spend"] += e.amount
        elif g.status == "proposed":
            entry["pending"] += e.amount
        elif g.status == "rejected":
            entry["rejected"] += 1
    for (playbook, _, _), entry in sorted(spend.items()):
        results.setdefault(playbook, _empty())["gestures"].append(entry)
    for m in muted:
        if m.reason == SHADOW:
            shadow = results.setdefault(m.effect.playbook, _empty())["shadow"]
            _count(shadow, m)
            _count(shadow["by_version"].setdefault(str(m.effect.playbook_version), _withheld()), m)
            continue
        if m.reason == HELD_OUT:
            results.setdefault(m.effect.playbook, _empty())["held_out"][m.effect.kind + "s"] += 1
            continue
        if m.effect.kind != "task":
            continue
        found = results.setdefault(m.effect.playbook, _empty())["muted"]
        found["tasks"] += 1
        found["by"][m.muted_by] = found["by"].get(m.muted_by, 0) + 1
    for playbook, r in results.items():
        tried = r["saved"] + r["lost"] + r["unreachable"]
        r["save_rate"] = r["saved"] / tried if tried else None
        if durations.get(playbook):
            r["median_completion_s"] = statistics.median(durations[playbook])
    return dict(sorted(results.items()))
