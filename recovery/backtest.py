"""`recovery backtest`: the difference a new set of playbooks makes against a baseline over the same events.

Both sets replay the same lines (`replay.py`), each through an engine of its own over an in-memory store, and what
they raise is compared. An effect is matched across the two runs by its id, which derives from the playbook, the
customer, the cause and the action's place (docs/playbooks.md, "Effect ids"): an id only the new set raised is
*added*, one only the baseline raised is *removed*, and one both raised with other content is *changed*. The
content compared leaves out `playbook_version` (a new version of the same decision is no change) and `case_id` (it
names the task that opened the customer's case, which other playbooks decide). Each effect counts as first raised:
a task published again as cancelled is the same effect.

`compare` does the work and `report` gives the figures as plain data, sorted, for `render_text` and `render_json`:
the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from recovery.effects import Effect, Gesture, Task, effect_from_dict
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.replay import ReplaySummary, replay, replay_engine

IGNORED_FIELDS = ("playbook_version", "case_id")
"""Fields whose difference alone does not make an effect changed."""
CHANGES = ("added", "removed", "changed")


@dataclass(frozen=True)
class Run:
    """What one set of playbooks raised over the events: each effect as first raised, by id, in the order raised;
    and the replay's counts (lines, invalid events, effects muted per playbook and reason)."""

    playbooks: tuple[str, ...]
    effects: dict[str, Effect]
    summary: ReplaySummary


def run(
    lines: Sequence[str | bytes], playbooks: Sequence[CompiledPlaybook], err: TextIO, until: float | None = None
) -> Run:
    """Replay `lines` through an engine of `playbooks` (as `recovery replay` does); invalid lines are reported on
    `err` with their line numbers and skipped."""
    out = io.StringIO()
    summary = replay(lines, replay_engine(playbooks), out, err, until=until)
    effects: dict[str, Effect] = {}
    for line in out.getvalue().splitlines():
        effect = effect_from_dict(json.loads(line))
        effects.setdefault(effect.id, effect)
    return Run(tuple(pb.id for pb in playbooks), effects, summary)


@dataclass(frozen=True)
class Backtest:
    """The two runs and their differences: effects `added` (the new run's), `removed` (the baseline's) and `changed`
    (baseline, new), each sorted by id."""

    baseline: Run
    new: Run
    added: list[Effect] = field(default_factory=list)
    removed: list[Effect] = field(default_factory=list)
    changed: list[tuple[Effect, Effect]] = field(default_factory=list)


def backtest(
    lines: Sequence[str | bytes],
    new: Sequence[CompiledPlaybook],
    baseline: Sequence[CompiledPlaybook],
    err: TextIO,
    *,
    until: float | None = None,
) -> Backtest:
    """Replay `lines` through both sets and compare. Invalid lines are reported on `err` once (the baseline's run);
    `until` moves both clocks on after the last event."""
    old = run(lines, baseline, err, until)
    return compare(old, run(lines, new, io.StringIO(), until))


def compare(baseline: Run, new: Run) -> Backtest:
    """The effects of `new` against those of `baseline`, matched by id."""
    result = Backtest(baseline, new)
    for effect_id in sorted(baseline.effects.keys() | new.effects.keys()):
        old, now = baseline.effects.get(effect_id), new.effects.get(effect_id)
        if old is None and now is not None:
            result.added.append(now)
        elif now is None and old is not None:
            result.removed.append(old)
        elif old is not None and now is not None and changed_fields(old, now):
            result.changed.append((old, now))
    return result


def changed_fields(old: Effect, new: Effect) -> list[str]:
    """The fields that differ between two raisings of one effect, but for IGNORED_FIELDS; sorted."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return sorted(k for k in before.keys() | after.keys() if k not in IGNORED_FIELDS and before.get(k) != after.get(k))


def report(result: Backtest, examples: int = 3) -> dict[str, Any]:
    """The figures of a backtest as plain data (the JSON of `--format json`), `examples` customers per playbook
    and kind of change. Sorted throughout, so that the same backtest always gives the same report."""
    old, new = result.baseline, result.new
    summary = old.summary
    return {
        "lines": summary.lines,
        "events": summary.events,
        "duplicates": summary.duplicates,
        "invalid_events": summary.invalid,
        "added": len(result.added),
        "removed": len(result.removed),
        "changed": len(result.changed),
        "by_playbook": _by_playbook(result, examples),
        "tasks_per_day": _nested(_tasks(old, by_day=True), _tasks(new, by_day=True)),
        "tasks_per_queue": _nested(_tasks(old, by_day=False), _tasks(new, by_day=False)),
        "spend": _nested(_spend(old), _spend(new), cents=True),
        "customers_newly_reached": sorted(_reached(new) - _reached(old)),
        "muted": _nested(_muted(old), _muted(new)),
    }


def _by_playbook(result: Backtest, examples: int) -> dict[str, dict[str, Any]]:
    """Per playbook of either set: counts of each kind of change and of effects unchanged, the fields changed
    (how many effects each), and the first `examples` customers (by id) of each kind of change."""
    customers: dict[tuple[str, str], set[str]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    fields: dict[str, Counter[str]] = {}
    for kind, effects in (("added", result.added), ("removed", result.removed)):
        for effect in effects:
            counts[effect.playbook, kind] += 1
            customers.setdefault((effect.playbook, kind), set()).add(effect.customer_id)
    for before, after in result.changed:
        counts[after.playbook, "changed"] += 1
        customers.setdefault((after.playbook, "changed"), set()).add(after.customer_id)
        fields.setdefault(after.playbook, Counter()).update(changed_fields(before, after))
    raised = Counter(e.playbook for e in result.new.effects.values() if e.id in result.baseline.effects)
    playbooks = sorted({*result.baseline.playbooks, *result.new.playbooks, *(p for p, _ in counts)})
    return {
        playbook: {
            **{kind: counts[playbook, kind] for kind in CHANGES},
            "unchanged": raised[playbook] - counts[playbook, "changed"],
            "changed_fields": dict(sorted(fields.get(playbook, Counter()).items())),
            "examples": {kind: sorted(customers.get((playbook, kind), set()))[:examples] for kind in CHANGES},
        }
        for playbook in playbooks
    }


def _tasks(run: Run, by_day: bool) -> Counter[tuple[str, ...]]:
    """Tasks raised per (day of `created_at`, queue), or per queue."""
    found: Counter[tuple[str, ...]] = Counter()
    for e in run.effects.values():
        if isinstance(e, Task):
            found[(e.created_at[:10], e.queue) if by_day else (e.queue,)] += 1
    return found


def _spend(run: Run) -> dict[tuple[str, ...], float]:
    """The amounts of the gestures raised (issued at once, or proposed for approval) per (type, currency), summed in
    the order of their ids (a float sum depends on its order)."""
    found: dict[tuple[str, ...], float] = {}
    for e in sorted((e for e in run.effects.values() if isinstance(e, Gesture)), key=lambda e: e.id):
        found[e.type, e.currency] = found.get((e.type, e.currency), 0.0) + e.amount
    return found


def _reached(run: Run) -> set[str]:
    """The customers a run raised anything for."""
    return {e.customer_id for e in run.effects.values()}


def _muted(run: Run) -> Counter[tuple[str, ...]]:
    """Effects muted per (playbook, reason: inhibited or snoozed)."""
    return Counter({key: n for key, n in run.summary.muted.items()})


def _nested(
    old: Mapping[tuple[str, ...], float], new: Mapping[tuple[str, ...], float], cents: bool = False
) -> dict[str, Any]:
    """Two counts by the same keys as `{key1: {key2: {"baseline": .., "new": .., "difference": ..}}}`, keys sorted;
    amounts in `cents` are rounded to two decimals."""
    nested: dict[str, Any] = {}
    for key in sorted(old.keys() | new.keys()):
        *outer, last = key
        level = nested
        for part in outer:
            level = level.setdefault(part, {})
        before, after = old.get(key, 0), new.get(key, 0)
        if cents:  # + 0.0: never -0.0
            before, after = round(before, 2) + 0.0, round(after, 2) + 0.0
        level[last] = {
            "baseline": before,
            "new": after,
            "difference": round(after - before, 2) + 0.0 if cents else after - before,
        }
    return nested


def render_json(data: dict[str, Any]) -> str:
    """A report as JSON for tools: keys sorted, indented."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def render_text(data: dict[str, Any], examples: int = 3) -> str:
    """A report for people: the effects changed per playbook with example customers, then each table."""
    invalid = data["invalid_events"]
    rows = [
        f"{data['lines']} lines, {data['events']} events, {data['duplicates']} duplicates, {invalid} invalid"
        + (" (skipped: their lines are on stderr)" if invalid else ""),
        "",
        f"effects: {data['added']} added, {data['removed']} removed, {data['changed']} changed",
    ]
    playbooks = data["by_playbook"]
    table = [[pb, *(str(v[k]) for k in (*CHANGES, "unchanged"))] for pb, v in playbooks.items()]
    rows += _table(["playbook", *CHANGES, "unchanged"], table, numbers_from=1)
    for pb, figures in playbooks.items():
        parts = [f"{kind} {', '.join(figures['examples'][kind])}" for kind in CHANGES if figures["examples"][kind]]
        if figures["changed_fields"]:
            parts.append("fields changed: " + ", ".join(f"{k} {n}" for k, n in figures["changed_fields"].items()))
        if parts:
            rows.append(f"  {pb}: {'; '.join(parts)}")
    rows += ["", "tasks per queue per day"]
    day_rows = [
        [day, queue, *_figures(v)] for day, queues in data["tasks_per_day"].items() for queue, v in queues.items()
    ]
    day_rows += [["total", queue, *_figures(v)] for queue, v in data["tasks_per_queue"].items()]
    rows += _table(["day", "queue", "baseline", "new", "difference"], day_rows, numbers_from=2)
    rows += ["", "gesture spend per type"]
    spend = [[kind, cur, *_figures(v, cents=True)] for kind, by in data["spend"].items() for cur, v in by.items()]
    rows += _table(["type", "currency", "baseline", "new", "difference"], spend, numbers_from=2)
    reached = data["customers_newly_reached"]
    more = f" and {len(reached) - examples} more" if len(reached) > examples else ""
    shown = f" ({', '.join(reached[:examples])}{more})" if examples and reached else ""
    rows += ["", f"customers newly reached: {len(reached)}{shown}"]
    rows += ["", "effects muted per playbook and reason"]
    muted = [[pb, why, *_figures(v)] for pb, by in data["muted"].items() for why, v in by.items()]
    rows += _table(["playbook", "reason", "baseline", "new", "difference"], muted, numbers_from=2)
    return "\n".join(rows)


def _figures(value: dict[str, float], cents: bool = False) -> list[str]:
    """Baseline, new and the signed difference, as text."""
    shown = [f"{value[k]:.2f}" if cents else str(value[k]) for k in ("baseline", "new")]
    difference = value["difference"]
    if not difference:
        return [*shown, "0.00" if cents else "0"]
    return [*shown, f"{difference:+.2f}" if cents else f"{difference:+d}"]


def _table(header: list[str], rows: list[list[str]], numbers_from: int) -> list[str]:
    """Rows under a header, in columns, indented; the columns from `numbers_from` on aligned right. No rows: none."""
    if not rows:
        return ["  none"]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            c.rjust(w) if i >= numbers_from else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in (header, *rows)
    ]
