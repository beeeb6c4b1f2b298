"""Trends: complaints per category, service calls per reason and outage minutes per region, week by week, with the
rising ones named.

Definitions (docs/operations.md, "The customer-loss review"):

- Weeks are ISO weeks (Monday 00:00 UTC). The trends show every week that overlaps `[from, to)`, each counted
  whole (the store keeps the counts by week); a week that ends after `to` is **partial** (still running, or cut by
  `--to`).
- Outage minutes: an outage (`outage.started` and `outage.resolved` paired by `outage_id`) counts from its start to
  its resolution, all of it in the week it started, under its region (`unspecified` when it names none: an outage
  of listed customers). One not resolved by `to` counts until `to` and is counted as unresolved.
- **Rising**: in the last complete week, the series is above `RISE_FACTOR` (1.5) times its mean over the earlier
  complete weeks shown, and at least `MIN_RISE` (3 complaints or calls, 60 outage minutes). It takes two complete
  weeks at least; partial weeks are left out of the test (they would look like a fall).
"""

from __future__ import annotations

from typing import Any

from recovery.report.customers import UNSPECIFIED
from recovery.report.periods import week_label, weeks
from recovery.store.fact_records import CALLS, COMPLAINTS, WEEK_S, FactSet, week_of
from recovery.times import format_time

OUTAGE_MINUTES = "outage_minutes"
METRICS = (COMPLAINTS, CALLS, OUTAGE_MINUTES)
RISE_FACTOR = 1.5
MIN_RISE = {COMPLAINTS: 3.0, CALLS: 3.0, OUTAGE_MINUTES: 60.0}


def rising(values: list[float], complete: list[bool], minimum: float) -> bool:
    """Whether a weekly series is rising (see the module's docstring)."""
    shown = [v for v, whole in zip(values, complete, strict=True) if whole]
    if len(shown) < 2:
        return False
    last, earlier = shown[-1], shown[:-1]
    return last >= minimum and last > RISE_FACTOR * sum(earlier) / len(earlier)


def trends(facts: FactSet, since: float, until: float) -> dict[str, Any]:
    """The weekly series of `facts` over the weeks overlapping `[since, until)`."""
    starts = weeks(since, until)
    index = {week: i for i, week in enumerate(starts)}
    complete = [week + WEEK_S <= until for week in starts]
    series: dict[str, dict[str, list[float]]] = {metric: {} for metric in METRICS}
    for count in facts.counts:
        i = index.get(count.week)
        if i is not None and count.metric in series:
            series[count.metric].setdefault(count.key, [0.0] * len(starts))[i] += count.n
    unresolved = 0
    for outage in facts.outages:
        i = index.get(week_of(outage.started))
        if i is None:
            continue
        end = outage.resolved
        if end is None:
            unresolved += 1
            end = until
        minutes = max(0.0, end - outage.started) / 60
        series[OUTAGE_MINUTES].setdefault(outage.region or UNSPECIFIED, [0.0] * len(starts))[i] += minutes
    out: dict[str, Any] = {
        "weeks": [
            {"label": week_label(w), "from": format_time(w), "to": format_time(w + WEEK_S), "complete": whole}
            for w, whole in zip(starts, complete, strict=True)
        ],
        "rule": {"factor": RISE_FACTOR, "minimum": MIN_RISE},
    }
    for metric, found in series.items():
        ordered = sorted(found.items(), key=lambda item: (-sum(item[1]), item[0]))
        out[metric] = {
            "series": {key: [_number(v) for v in values] for key, values in ordered},
            "totals": {key: _number(sum(values)) for key, values in ordered},
            "rising": [key for key, values in ordered if rising(values, complete, MIN_RISE[metric])],
        }
    out[OUTAGE_MINUTES]["unresolved"] = unresolved
    return out


def _number(value: float) -> float | int:
    """Counts as whole numbers, minutes rounded to a tenth."""
    return int(value) if value == int(value) else round(value, 1)
