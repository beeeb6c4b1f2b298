"""The report, computed from a store (its facts, tasks, gestures, muted and withheld effects) for `[from, to)`: a
JSON-ready dict whose keys other tools read (DESIGN.md, `recovery report`). Rendering is apart (html.py, charts.py)."""

from __future__ import annotations

from typing import Any, Protocol

from recovery.exceptions import ReportError
from recovery.report.customers import customer_metrics, sweep
from recovery.report.holdout import holdout_comparison
from recovery.report.losses import LOOKBACK_S, loss_review
from recovery.report.periods import BY, By, periods
from recovery.report.results import playbook_results
from recovery.report.trends import trends
from recovery.store.base import ReportFacts
from recovery.store.fact_records import week_of
from recovery.store.records import MutedRecord
from recovery.times import format_time, parse_time

MUTED_LIMIT = 1_000_000
"""At most this many muted effects are read; past it the report says so (`notes`)."""


class ReportSource(ReportFacts, Protocol):
    """What a report reads of a store."""

    def muted(self, customer_id: str | None, since: float, until: float, limit: int = 10_000) -> list[MutedRecord]: ...


def build_report(store: ReportSource, since: float, until: float, by: By = "week") -> dict[str, Any]:
    """The report of `[since, until)` (epoch seconds), with its guerrilla metrics by `by` (week or month)."""
    if not since < until:
        raise ReportError(f"the period is empty: from {format_time(since)} is not before to {format_time(until)}")
    if by not in BY:
        raise ReportError(f"by {by!r}: a report is by week or by month")
    facts = store.report_facts(until, week_of(since))
    shown = periods(since, until, by)
    events, standings = sweep(facts, {since, until} | {p.start for p in shown} | {p.end for p in shown})
    in_range = [e for e in events if since <= e.ts < until]
    notes: list[str] = []
    tasks = store.tasks_created(since - LOOKBACK_S, until)
    gestures = store.gestures_created(since - LOOKBACK_S, until)
    muted = store.muted(None, since - LOOKBACK_S, until, MUTED_LIMIT + 1)
    if len(muted) > MUTED_LIMIT:
        notes.append(
            f"Only the first {MUTED_LIMIT} muted effects from {format_time(since - LOOKBACK_S)} on were read: the "
            f"muted counts and the loss review's muted effects stop at {format_time(muted[MUTED_LIMIT - 1].at)}."
        )
        muted = muted[:MUTED_LIMIT]
    lost, loss_totals = loss_review([e for e in in_range if e.fact.kind == "lost"], tasks, gestures, muted)
    results = playbook_results(
        [t for t in tasks if t.created_ts >= since],
        [g for g in gestures if parse_time(g.gesture.created_at) >= since],
        [m for m in muted if m.at >= since],
        until,
    )
    around = [(standings[p.start], standings[p.end]) for p in shown]
    return {
        "period": {"from": format_time(since), "to": format_time(until), "by": by},
        "customers": customer_metrics(in_range, standings[since], standings[until]),
        "periods": [
            {**p.to_json(), **customer_metrics([e for e in in_range if p.start <= e.ts < p.end], *around[i])}
            for i, p in enumerate(shown)
        ],
        "lost": lost,
        "loss_review": loss_totals,
        "playbooks": results,
        "holdout": holdout_comparison(tasks, gestures, muted, facts.lifecycle, since, until),
        "trends": trends(facts, since, until),
        "notes": notes,
    }
