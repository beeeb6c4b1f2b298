"""What people do to cases, shared by the JSON API and the task page: claim a case (all its tasks), release it,
complete it with one outcome (each task done sends its own `task.completed`), and a case's detail (every reason,
the evidence and talking points together, its tasks side by side, gestures, muted effects, snoozes, audit trail).

As for tasks (actions.py), each action writes with conditional updates (of two agents claiming a case at once,
exactly one wins), then records who did what in the audit trail, for each task and for the case; the caller's
session commits. A holder who opens a case, or claims it, has seen what is in it: the answer shows the tasks that
joined it since as `new`, once. Completing a case is for what its holder has seen: a task still marked new stays
open (and marked) until they open the case again.
"""

from __future__ import annotations

import math

from recovery.api.actions import MAX_PER_CUSTOMER, find_task, refresh_gauges
from recovery.api.auth import Caller
from recovery.api.context import ApiContext
from recovery.api.errors import ApiError
from recovery.api.models import (
    AuditOut,
    CaseDetail,
    CaseEvidenceOut,
    CaseOut,
    GestureOut,
    MutedOut,
    Outcome,
    ReasonOut,
    SnoozeOut,
)
from recovery.engine.cases import WITHHELD
from recovery.lifecycle import emit_task_completed
from recovery.store.base import Store
from recovery.store.records import DeskCase
from recovery.times import format_time

MUTED_LOOKBACK_S = 30 * 86400.0
"""A case shows its customer's muted effects from this long before it opened."""
MAX_MUTED = 200


def find_case(store: Store, case_id: str) -> DeskCase:
    case = store.get_case(case_id)
    if case is None:
        raise ApiError(404, f"no case with id {case_id!r}")
    return case


def claim(ctx: ApiContext, store: Store, caller: Caller, case_id: str) -> DeskCase:
    """Every open or escalated task of the case to the caller; 409 when another agent holds it, or nothing is left
    to claim."""
    now = ctx.clock()
    claimed = store.claim_case(case_id, caller.name, now)  # write first, read after (see actions.claim)
    if not claimed:
        current = find_case(store, case_id)
        others = [h for h in current.holders if h != caller.name]
        if others:
            raise ApiError(409, f"case {case_id!r} is claimed by '{', '.join(others)}' already")
        if current.status == "closed":
            raise ApiError(409, f"case {case_id!r} is closed: every task of it is done or cancelled")
        raise ApiError(409, f"case {case_id!r} is yours already: nothing left to claim")
    case = find_case(store, case_id)
    customer = case.customer_id
    for task_id in claimed:
        first = not any(entry.action == "claim" for entry in store.audit(task_id=task_id))
        store.add_audit(now, caller.name, "claim", customer_id=customer, task_id=task_id, details={"case_id": case_id})
        if ctx.metrics is not None and first:
            ctx.metrics.observe_claim(now - find_task(store, task_id).created_ts)
    details = {"case_id": case_id, "tasks": claimed}
    store.add_audit(now, caller.name, "claim-case", customer_id=customer, details=details)
    store.case_seen(case_id, caller.name)
    refresh_gauges(ctx, store, now)
    return case


def release(ctx: ApiContext, store: Store, caller: Caller, case_id: str) -> DeskCase:
    """The case's claimed tasks back to their queue: the caller's own, or anyone's for ops."""
    now = ctx.clock()
    anyone = caller.may("ops")
    before = store.get_case(case_id) if anyone else None  # who held it, for the audit trail
    released = store.release_case(case_id, None if anyone else caller.name, now)
    if not released:
        current = find_case(store, case_id)
        if not current.holders:
            raise ApiError(409, f"case {case_id!r} is {current.status}, not claimed: nothing to release")
        by = ", ".join(current.holders)
        raise ApiError(403, f"case {case_id!r} is held by '{by}': only they (or ops) can release it")
    case = find_case(store, case_id)
    held = {t.id: t.claimed_by for t in before.tasks} if before is not None else {}
    for task_id in released:
        per_task = {"case_id": case_id, "held_by": held.get(task_id, caller.name)}
        store.add_audit(now, caller.name, "release", customer_id=case.customer_id, task_id=task_id, details=per_task)
    holders = sorted({str(held.get(task_id, caller.name)) for task_id in released})
    summary = {"case_id": case_id, "tasks": released, "held_by": holders}
    store.add_audit(now, caller.name, "release-case", customer_id=case.customer_id, details=summary)
    refresh_gauges(ctx, store, now)
    return case


def complete(
    ctx: ApiContext, store: Store, caller: Caller, case_id: str, outcome: Outcome, reason_code: str, note: str
) -> DeskCase:
    """One outcome for each task of the case the caller holds and has seen (a task that joined the case since the
    caller last opened it stays open, marked new); each task done sends its `task.completed`."""
    now = ctx.clock()
    done = store.complete_case(case_id, caller.name, now, outcome, reason_code, note)
    if not done:
        current = find_case(store, case_id)
        mine = [t.id for t in current.active if t.status == "claimed" and t.claimed_by == caller.name]
        others = [h for h in current.holders if h != caller.name]
        if current.status == "closed":
            raise ApiError(409, f"case {case_id!r} is closed: every task of it is done or cancelled")
        if mine:
            raise ApiError(
                409,
                f"case {case_id!r}: {', '.join(mine)} joined it since you last opened it: open the case to see "
                "what is new, then complete it",
            )
        if others:
            raise ApiError(
                403, f"case {case_id!r} is held by '{', '.join(others)}': an agent completes only a case it holds"
            )
        raise ApiError(409, f"case {case_id!r} is {current.status}: claim it before completing it")
    customer = ""
    for task_id in done:
        record = find_task(store, task_id)
        customer = record.task.customer_id
        per_task = {"case_id": case_id, "outcome": outcome, "reason_code": reason_code, "note": note}
        store.add_audit(now, caller.name, "complete", customer_id=customer, task_id=task_id, details=per_task)
        emit_task_completed(store, ctx.settings.topic_events, record, caller.name, now)
        if ctx.metrics is not None:
            ctx.metrics.observe_completion(record.task.playbook, outcome, now - record.created_ts)
    summary = {"case_id": case_id, "tasks": done, "outcome": outcome, "reason_code": reason_code, "note": note}
    store.add_audit(now, caller.name, "complete-case", customer_id=customer, details=summary)
    case = find_case(store, case_id)
    refresh_gauges(ctx, store, now)
    return case


def detail(ctx: ApiContext, store: Store, caller: Caller, case_id: str) -> CaseDetail:
    """Everything about a case; opening it is seeing it (its holder's `new` marks are cleared after this answer)."""
    case = find_case(store, case_id)
    now = ctx.clock()
    customer = case.customer_id
    task_ids = {t.id for t in case.tasks}
    kept = {o.id: o for o in store.history(customer, -math.inf)}
    cited: dict[str, list[str]] = {}
    points: dict[str, None] = {}
    for record in case.tasks:
        for event_id in record.task.evidence:
            cited.setdefault(event_id, []).append(record.id)
        points.update(dict.fromkeys(record.task.talking_points))

    def shown(event_id: str) -> CaseEvidenceOut:
        occ = kept.get(event_id)
        if occ is None:
            return CaseEvidenceOut(id=event_id, tasks=cited[event_id])
        when = format_time(occ.ts)
        return CaseEvidenceOut(id=event_id, type=occ.type, occurred_at=when, data=occ.data, tasks=cited[event_id])

    evidence = sorted((shown(e) for e in cited), key=lambda e: kept[e.id].ts if e.id in kept else math.inf)
    gestures = store.list_gestures(None, customer, MAX_PER_CUSTOMER + 1)
    ours = [GestureOut.of(g) for g in gestures[:MAX_PER_CUSTOMER] if g.gesture.task_id in task_ids]
    read = store.muted(customer, case.opened_ts - MUTED_LOOKBACK_S, math.inf, MAX_MUTED + 1)
    # What shadow mode or a holdout kept is for the figures: a case never shows it (an agent could act on it).
    muted = [m for m in read[:MAX_MUTED] if m.reason not in WITHHELD]
    entries = store.audit(customer_id=customer, limit=MAX_PER_CUSTOMER + 1)
    gesture_ids = {g.id for g in ours}
    trail = [
        AuditOut.of(a)
        for a in entries[:MAX_PER_CUSTOMER]
        if a.task_id in task_ids or a.gesture_id in gesture_ids or a.details.get("case_id") == case_id
    ]
    answer = CaseDetail(
        case=CaseOut.of(case, now),
        reasons=[
            ReasonOut(task_id=t.id, playbook=t.task.playbook, title=t.task.title, reason=t.task.reason, status=t.status)
            for t in case.tasks
        ],
        evidence=evidence,
        talking_points=list(points),
        gestures=ours,
        gestures_truncated=len(gestures) > MAX_PER_CUSTOMER,
        muted=[MutedOut.of(m) for m in muted],
        muted_truncated=len(read) > MAX_MUTED,
        snoozes=[SnoozeOut.of(s, now) for s in sorted(store.snoozes(customer).values(), key=lambda s: s.playbook)],
        audit=trail,
        audit_truncated=len(entries) > MAX_PER_CUSTOMER,
    )
    if caller.name in case.holders and case.new:
        store.case_seen(case_id, caller.name)
    return answer
