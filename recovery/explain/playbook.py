"""One playbook for one customer: its last trigger, re-evaluated as the engine evaluated it (`engine.py`,
`_on_customer_event`, `_fire` and `_evaluate`): the let values and each part of the condition in a `Context` like the
engine's, the effects that trigger makes (their ids derive from the cause, so the store says whether they were
raised or muted), and whatever holds the playbook back."""

from __future__ import annotations

import re
from dataclasses import dataclass

from recovery.effects import Effect, Task
from recovery.engine.actions import build_effects
from recovery.engine.cases import WITHHELD_COOLDOWN
from recovery.events import Occurrence
from recovery.explain.conditions import Condition, condition_of, customer_fields, missing_fields
from recovery.explain.model import (
    Blocker,
    ConditionResult,
    DeadlineRef,
    EffectRef,
    EventRef,
    LetValue,
    MutedRef,
    PartResult,
    PlaybookExplanation,
    Trigger,
)
from recovery.explain.view import CustomerView
from recovery.expressions.context import Context
from recovery.expressions.templates import render_value
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.times import format_duration, format_time, parse_time


@dataclass(frozen=True)
class _Found:
    """The last trigger, and how the engine evaluated it (nothing to evaluate while it waits or once answered)."""

    trigger: Trigger
    ctx: Context | None = None
    cause: str = ""
    anchor: float = 0.0
    evidence: tuple[Occurrence, ...] = ()


def _ref(occ: Occurrence) -> EventRef:
    return EventRef(occ.id, occ.type, occ.ts)


def find_trigger(pb: CompiledPlaybook, view: CustomerView, by_type: dict[str, list[Occurrence]]) -> _Found | None:
    """The last time `pb`'s trigger came for the customer, up to `view.at`."""
    cid = view.customer_id
    if pb.kind == "event":
        types = set(pb.event_types)
        occ = next((o for o in reversed(view.occurrences) if o.type in types), None)
        if occ is None and not view.complete:
            occ = _from_effects(pb, view)
        if occ is None:
            return None
        ctx = Context(occ, cid, view.profile_at(occ.ts), occ.ts, by_type)
        return _Found(Trigger(_ref(occ), "evaluated", occ.ts), ctx, occ.id, occ.ts, (occ,))
    if pb.kind == "sequence":
        for then in reversed(by_type.get(pb.event_type, ())):
            first = _paired(pb, by_type, then)
            if first is not None:
                ctx = Context(then, cid, view.profile_at(then.ts), then.ts, by_type, first, then.ts - first.ts)
                trigger = Trigger(_ref(then), "evaluated", then.ts, first=_ref(first))
                return _Found(trigger, ctx, f"{first.id}+{then.id}", then.ts, (first, then))
        return None
    return _absence(pb, view, by_type)


def _from_effects(pb: CompiledPlaybook, view: CustomerView) -> Occurrence | None:
    """A store keeps no event of a type no playbook looks back to: the trigger of the latest effect `pb` raised (or
    had muted) for the customer then, the one of its evidence the store's history does not hold (its data unknown)."""
    effects = [t.task for t in view.tasks] + [g.gesture for g in view.gestures] + [m.effect for m in view.muted]
    mine = sorted((e for e in effects if e.playbook == pb.id), key=lambda e: (e.created_at, e.id))
    if not mine:
        return None
    kept = {o.id for o in view.occurrences}
    unknown = [i for i in mine[-1].evidence if i not in kept]
    if len(unknown) != 1:
        return None
    return Occurrence(unknown[0], "/".join(pb.event_types), parse_time(mine[-1].created_at), view.customer_id, {})


def _paired(pb: CompiledPlaybook, by_type: dict[str, list[Occurrence]], occ: Occurrence) -> Occurrence | None:
    """The engine's pairing (`Engine._paired`): the latest `first` (with the same key) at most `within` before."""
    value = None
    if pb.key is not None:
        value = occ.data.get(pb.key)
        if value is None:
            return None
    earliest = occ.ts - pb.within_s
    for candidate in reversed(by_type.get(pb.first_type or "", ())):
        same = pb.key is None or str(candidate.data.get(pb.key)) == str(value)
        if earliest <= candidate.ts <= occ.ts and same:
            return candidate
    return None


def _absence(pb: CompiledPlaybook, view: CustomerView, by_type: dict[str, list[Occurrence]]) -> _Found | None:
    pending = {d.first.id: d for d in view.deadlines if d.playbook == pb.id}
    firsts = {o.id: o for o in by_type.get(pb.first_type or "", ())}
    for deadline in pending.values():  # a store keeps a deadline's first event even where it keeps no history
        firsts.setdefault(deadline.first.id, deadline.first)
    if not firsts:
        return None
    first = max(firsts.values(), key=lambda o: o.ts)
    due = first.ts + pb.within_s
    if first.id in pending:
        return _Found(Trigger(_ref(first), "waiting", deadline=due))
    key = first.data.get(pb.key) if pb.key is not None else ""
    if key is None:  # the engine sets no deadline for it (and logs a warning)
        return _Found(Trigger(_ref(first), "no key"))
    for occ in by_type.get(pb.end_type or "", ()):
        answers = pb.key is None or str(occ.data.get(pb.key)) == str(key)
        if answers and first.ts <= occ.ts <= due:
            return _Found(Trigger(_ref(first), "answered", deadline=due, answered_by=_ref(occ)))
    if due >= view.at:  # the clock has not passed it (a deadline fires strictly before the clock)
        return _Found(Trigger(_ref(first), "waiting", deadline=due))
    ctx = Context(first, view.customer_id, view.profile_at(due), due, by_type, first)
    return _Found(Trigger(_ref(first), "evaluated", due, deadline=due), ctx, f"{first.id}@deadline", first.ts, (first,))


def explain_playbook(
    pb: CompiledPlaybook, view: CustomerView, by_type: dict[str, list[Occurrence]]
) -> PlaybookExplanation:
    found = find_trigger(pb, view, by_type)
    out = PlaybookExplanation(pb.id, pb.version, pb.kind, pb.mode, pb.holdout, "not triggered", "")
    out.effects = _effects(pb, view, set())
    out.muted = [MutedRef(m.effect.id, m.effect.kind, m.at, m.muted_by, m.reason)
                 for m in view.muted if m.effect.playbook == pb.id]  # fmt: skip
    out.deadlines = [DeadlineRef(d.id, d.due, _ref(d.first), d.key) for d in view.deadlines if d.playbook == pb.id]
    if not view.complete and not any(t in by_type for t in pb.event_types):
        what = "found from its latest effect, without the event's data" if found is not None else "may be missing"
        out.notes.append(
            f"the store keeps no {'/'.join(pb.event_types)} events (only the types playbooks look back to): its last "
            f"trigger {what}; explain from the events file to see it whole"
        )
    checked = view.at
    if found is None:
        out.summary = f"no {_awaited(pb)} for {view.customer_id} up to {format_time(view.at)}"
    else:
        out.trigger = found.trigger
        if found.ctx is None:
            out.verdict, out.summary = _unevaluated(found.trigger, pb)
        else:
            checked = _evaluated(pb, view, found, out)
    out.blockers = _blockers(pb, view, out, checked)
    if out.verdict == "held back" and not out.blockers:
        out.notes.append("the condition held, yet nothing was raised nor muted on record: the store may have raised "
                         "these effects before (a replayed stream), or predate this playbook version")  # fmt: skip
    return out


def _awaited(pb: CompiledPlaybook) -> str:
    if pb.kind == "sequence":
        key = f" with the same {pb.key}" if pb.key else ""
        return f"{pb.first_type} then {pb.event_type}{key} within {format_duration(pb.within_s)}"
    return " or ".join(pb.event_types)


def _unevaluated(trigger: Trigger, pb: CompiledPlaybook) -> tuple[str, str]:
    if trigger.state == "no key":
        return "not triggered", f"{trigger.event.type} {trigger.event.id} has no data.{pb.key}: no deadline was set"
    due = format_time(trigger.deadline or 0.0)
    if trigger.state == "answered" and trigger.answered_by is not None:
        by = trigger.answered_by
        return "answered", f"{by.type} {by.id} at {format_time(by.at)} answered {trigger.event.id} in time"
    return "waiting", f"waiting for {pb.end_type} until {due}: raises then if none has come"


def _evaluated(pb: CompiledPlaybook, view: CustomerView, found: _Found, out: PlaybookExplanation) -> float:
    """Re-evaluate the last trigger into `out`; returns the instant its blockers are checked at."""
    ctx = found.ctx
    assert ctx is not None  # noqa: S101 - the caller checked
    for name, compiled in pb.lets.items():
        value = ctx.lets[name] if name in ctx.lets else compiled.fn(ctx)
        ctx.lets[name] = value
        out.lets.append(LetValue(name, compiled.type, value, render_value(value, compiled.type)))
    condition = condition_of(pb)
    out.condition = _condition(condition, ctx)
    if not out.condition.holds:
        failed = [p.text + _values(p.text, out.lets) for p in out.condition.parts if not p.holds]
        out.verdict, out.summary = "not matched", "the condition failed: " + "; ".join(failed)
        return view.at
    would = build_effects(pb, ctx, found.cause, found.anchor, list(found.evidence))
    ids = {e.id for e in would}
    out.effects = _effects(pb, view, ids)
    raised = [e for e in out.effects if e.at_trigger]
    muted = [m for m in view.muted if m.effect.id in ids]
    if raised:
        out.verdict, out.summary = "raised", f"raised {_count(raised)} at {format_time(ctx.at)}"
        return view.at
    if muted:
        m = muted[0]
        why = f"snoozed by {m.muted_by}" if m.reason == "snoozed" else f"muted by {m.muted_by} ({m.reason})"
        out.verdict, out.summary = "muted", f"matched at {format_time(ctx.at)}, {why}: {_would(would)} kept as muted"
        return ctx.at
    if not would:
        out.verdict = "no action"
        out.summary = f"matched at {format_time(ctx.at)}, but no action's `when` held: nothing to raise"
        return ctx.at
    out.verdict, out.summary = "held back", f"matched at {format_time(ctx.at)}, {_would(would)} not raised"
    return ctx.at


def _values(text: str, lets: list[LetValue]) -> str:
    """` (calls = 2)`: the let values a part of the condition names."""
    named = [f"{v.name} = {v.text}" for v in lets if re.search(rf"\b{re.escape(v.name)}\b", text)]
    return f" ({', '.join(named)})" if named else ""


def _condition(condition: Condition, ctx: Context) -> ConditionResult:
    customers = [PartResult(p.section, p.text, p.holds(ctx)) for p in condition.customers]
    when = [PartResult(p.section, p.text, p.holds(ctx)) for p in condition.when]
    holds = all(p.holds for p in customers) and condition.when_holds([p.holds for p in when])
    return ConditionResult(holds, condition.op, tuple(customers + when))


def _count(effects: list[EffectRef]) -> str:
    kinds = [e.kind for e in effects]
    return ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) > 1 else ''}" for k in dict.fromkeys(kinds))


def _would(effects: list[Effect]) -> str:
    return "what it would raise (" + ", ".join(_describe(e) for e in effects) + ")"


def _describe(effect: Effect) -> str:
    if isinstance(effect, Task):
        return f"task {effect.queue} {effect.priority}"
    return f"gesture {effect.type} {effect.amount:g} {effect.currency}"


def _effects(pb: CompiledPlaybook, view: CustomerView, at_trigger: set[str]) -> list[EffectRef]:
    found = [EffectRef(t.id, "task", t.created_ts, t.status, f"{t.queue} {t.priority}: {t.task.title}",
                       t.id in at_trigger) for t in view.tasks if t.task.playbook == pb.id]  # fmt: skip
    for g in view.gestures:
        if g.gesture.playbook == pb.id:
            ts = parse_time(g.gesture.created_at)
            what = f"{g.gesture.type} {g.gesture.amount:g} {g.gesture.currency}"
            found.append(EffectRef(g.id, "gesture", ts, g.status, what, g.id in at_trigger))
    return sorted(found, key=lambda e: (e.created_at, e.id))


def _blockers(pb: CompiledPlaybook, view: CustomerView, out: PlaybookExplanation, checked: float) -> list[Blocker]:
    """What holds `pb` back for the customer at `checked`: the last trigger's instant when it matched and raised
    nothing, else `view.at` (what stands in the way of the next trigger)."""
    found: list[Blocker] = []
    cid = view.customer_id
    for m in view.muted:
        if out.verdict == "muted" and m.effect.playbook == pb.id and m.at == checked:
            kind = "snoozed" if m.reason == "snoozed" else "muted"
            snooze = view.snoozes.get(pb.id) if kind == "snoozed" else None
            detail = f"snoozed by {m.muted_by}" if kind == "snoozed" else f"muted by {m.muted_by} ({m.reason})"
            until = snooze.until if snooze is not None else None
            found.append(Blocker(kind, detail, checked, until=until, by=m.muted_by,
                                 reason=snooze.reason if snooze is not None else m.reason))  # fmt: skip
            break
    for key, what in ((pb.id, "the raise"), (pb.id + WITHHELD_COOLDOWN, "the withheld match")):
        last = view.cooldowns.get(key)
        if pb.cooldown_s is not None and last is not None and abs(checked - last) < pb.cooldown_s:
            until = last + pb.cooldown_s
            detail = f"cooldown active until {format_time(until)} ({format_duration(pb.cooldown_s)} after {what} at " \
                     f"{format_time(last)})"  # fmt: skip
            found.append(Blocker("cooldown", detail, checked, until=until))
            break
    snooze = view.snoozes.get(pb.id)
    if snooze is not None and checked < snooze.until and not any(b.kind == "snoozed" for b in found):
        detail = f"snoozed by {snooze.by or 'ops'} until {format_time(snooze.until)}: {snooze.reason}"
        found.append(Blocker("snoozed", detail, checked, until=snooze.until, by=snooze.by or "ops",
                             reason=snooze.reason))  # fmt: skip
    if not any(b.kind == "muted" for b in found):
        found += _inhibited(pb, view, checked)
    if pb.held_out(cid):
        share = f"{pb.holdout * 100:g}%"
        found.append(Blocker("held-out", f"{cid} is in the {share} holdout: gets nothing from it", checked))
    if pb.mode == "shadow":
        found.append(Blocker("shadow", "shadow mode: its effects are kept as shadow effects, never published",
                             checked))  # fmt: skip
    if out.trigger is None:  # what the profile lacks matters once a trigger comes
        return found
    at = out.trigger.evaluated_at if out.trigger.evaluated_at is not None else view.at
    lacking = missing_fields(customer_fields(pb), view.profile_at(at))
    if lacking:
        shown = ", ".join(f + (" (read as standard)" if f == "tier" else "") for f in lacking)
        found.append(Blocker("missing-profile", f"the profile lacks {shown}", at, fields=tuple(lacking)))
    return found


def _inhibited(pb: CompiledPlaybook, view: CustomerView, checked: float) -> list[Blocker]:
    """The engine's inhibition (`CaseKeeper.muted_by`): an open task of the inhibitor in the customer's case (known
    for now only), or its raise at most its look-back before `checked`."""
    open_playbooks = set(view.case.open_tasks.values()) if view.case is not None and checked == view.at else set()
    for other, within_s in pb.inhibited_by:
        if other in open_playbooks:
            return [Blocker("muted", f"muted by {other}: its task is open in the customer's case", checked, by=other,
                            reason="inhibited")]  # fmt: skip
        last = view.cooldowns.get(other)
        if within_s is not None and last is not None and 0 <= checked - last <= within_s:
            until = last + within_s
            detail = f"muted by {other} until {format_time(until)}: it raised at {format_time(last)}"
            return [Blocker("muted", detail, checked, until=until, by=other, reason="inhibited")]
    return []
