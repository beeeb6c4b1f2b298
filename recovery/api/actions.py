"""What people do to tasks and gestures, shared by the JSON API and the task page. Each action checks, changes
the store with a conditional update (of two racing agents exactly one wins), records who did what in the audit
trail, queues what it tells other systems in the outbox (`task.completed`, a decided gesture), and updates the
metrics. The caller's session commits."""

from __future__ import annotations

import math

from recovery.api.auth import Caller
from recovery.api.context import ApiContext
from recovery.api.errors import ApiError
from recovery.api.models import (
    AuditOut,
    EvidenceOut,
    GestureOut,
    Outcome,
    TaskDetail,
    TaskOut,
    Timeline,
    TimelineItem,
)
from recovery.effects import GestureStatus
from recovery.lifecycle import emit_gesture_decision, emit_task_completed
from recovery.store.base import Store
from recovery.store.records import GestureRecord, TaskQuery, TaskRecord
from recovery.times import format_time

MAX_PER_CUSTOMER = 1000
RECENT_EVENTS = 20


def find_task(store: Store, task_id: str) -> TaskRecord:
    record = store.get_task(task_id)
    if record is None:
        raise ApiError(404, f"no task with id {task_id!r}")
    return record


def find_gesture(store: Store, gesture_id: str) -> GestureRecord:
    record = store.get_gesture(gesture_id)
    if record is None:
        raise ApiError(404, f"no gesture with id {gesture_id!r}")
    return record


def refresh_gauges(ctx: ApiContext, store: Store, now: float) -> None:
    """The task gauges, read again after a write of the desk."""
    if ctx.metrics is not None:
        ctx.metrics.set_tasks(*store.task_counts(now))


def claim(ctx: ApiContext, store: Store, caller: Caller, task_id: str) -> TaskRecord:
    # Each action writes first and reads after (explaining a refusal by reading): on SQLite a transaction that
    # read before it writes cannot wait for a concurrent writer, it fails at once.
    now = ctx.clock()
    if not store.claim_task(task_id, caller.name, now):
        current = find_task(store, task_id)
        if current.status == "claimed":
            raise ApiError(409, f"task {task_id!r} is claimed by '{current.claimed_by}' already")
        raise ApiError(409, f"task {task_id!r} is {current.status}: only an open or escalated task can be claimed")
    record = find_task(store, task_id)
    first = not any(entry.action == "claim" for entry in store.audit(task_id=task_id))
    store.add_audit(now, caller.name, "claim", customer_id=record.task.customer_id, task_id=task_id)
    if ctx.metrics is not None and first:
        ctx.metrics.observe_claim(now - record.created_ts)
    refresh_gauges(ctx, store, now)
    return record


def release(ctx: ApiContext, store: Store, caller: Caller, task_id: str) -> TaskRecord:
    now = ctx.clock()
    before = store.get_task(task_id) if caller.may("ops") else None  # who held it, for the audit trail
    if not store.release_task(task_id, None if caller.may("ops") else caller.name, now):
        record = find_task(store, task_id)
        if record.status != "claimed":
            raise ApiError(409, f"task {task_id!r} is {record.status}, not claimed: nothing to release")
        raise ApiError(403, f"task {task_id!r} is held by '{record.claimed_by}': only they (or ops) can release it")
    record = find_task(store, task_id)
    details = {"held_by": before.claimed_by if before is not None else caller.name}
    store.add_audit(now, caller.name, "release", customer_id=record.task.customer_id, task_id=task_id, details=details)
    refresh_gauges(ctx, store, now)
    return record


def complete(
    ctx: ApiContext, store: Store, caller: Caller, task_id: str, outcome: Outcome, reason_code: str, note: str
) -> TaskRecord:
    now = ctx.clock()
    if not store.complete_task(task_id, caller.name, now, outcome, reason_code, note):
        record = find_task(store, task_id)
        if record.status != "claimed":
            raise ApiError(409, f"task {task_id!r} is {record.status}: claim it before completing it")
        raise ApiError(
            403, f"task {task_id!r} is held by '{record.claimed_by}': an agent completes only a task it holds"
        )
    done = find_task(store, task_id)
    store.add_audit(
        now,
        caller.name,
        "complete",
        customer_id=done.task.customer_id,
        task_id=task_id,
        details={"outcome": outcome, "reason_code": reason_code, "note": note},
    )
    emit_task_completed(store, ctx.settings.topic_events, done, caller.name, now)
    if ctx.metrics is not None:
        ctx.metrics.observe_completion(done.task.playbook, outcome, now - done.created_ts)
    refresh_gauges(ctx, store, now)
    return done


def decide(
    ctx: ApiContext, store: Store, caller: Caller, gesture_id: str, status: GestureStatus, note: str
) -> GestureRecord:
    now = ctx.clock()
    if not store.decide_gesture(gesture_id, status, caller.name, now):
        current = find_gesture(store, gesture_id)
        raise ApiError(409, f"gesture {gesture_id!r} is {current.status}: only a proposed gesture can be decided")
    record = find_gesture(store, gesture_id)
    gesture = record.gesture
    store.add_audit(
        now,
        caller.name,
        "approve" if status == "approved" else "reject",
        customer_id=gesture.customer_id,
        task_id=gesture.task_id,
        gesture_id=gesture_id,
        details={"amount": gesture.amount, "currency": gesture.currency, "note": note},
    )
    emit_gesture_decision(store, ctx.settings.topic_gestures, record)
    if ctx.metrics is not None:
        ctx.metrics.observe_gesture_status(gesture.type, status, gesture.amount, gesture.currency)
    return record


def detail(ctx: ApiContext, store: Store, task_id: str) -> TaskDetail:
    record = find_task(store, task_id)
    customer = record.task.customer_id
    history = store.history(customer, -math.inf)
    kept = {o.id: o for o in history}

    def shown(event_id: str) -> EvidenceOut:
        occ = kept.get(event_id)
        if occ is None:
            return EvidenceOut(id=event_id)
        return EvidenceOut(id=event_id, type=occ.type, occurred_at=format_time(occ.ts), data=occ.data)

    evidence = [shown(event_id) for event_id in record.task.evidence]
    recent = [shown(o.id) for o in history if o.ts <= record.created_ts][-RECENT_EVENTS:]
    gestures = [
        GestureOut.of(g) for g in store.list_gestures(None, customer, MAX_PER_CUSTOMER) if g.gesture.task_id == task_id
    ]
    audit = [AuditOut.of(a) for a in store.audit(task_id=task_id)]
    task = TaskOut.of(record, ctx.clock())
    return TaskDetail(task=task, evidence=evidence, recent_events=recent, gestures=gestures, audit=audit)


def timeline(ctx: ApiContext, store: Store, customer_id: str) -> Timeline:
    """Everything known of a customer, oldest first: kept events, tasks, gestures, outcomes, audit entries."""
    items: list[tuple[float, int, TimelineItem]] = []

    def add(ts: float, item: TimelineItem) -> None:
        items.append((ts, len(items), item))

    for occ in store.history(customer_id, -math.inf):
        add(occ.ts, TimelineItem(at=format_time(occ.ts), kind="event", id=occ.id, summary=occ.type, details=occ.data))
    tasks, _ = store.list_tasks(TaskQuery(customer_id=customer_id, limit=MAX_PER_CUSTOMER))
    for t in tasks:
        summary = f"{t.task.title} ({t.priority}, {t.queue}, {t.status})"
        add(t.created_ts, TimelineItem(at=t.task.created_at, kind="task", id=t.id, summary=summary, details={}))
        if t.completed_at is not None:
            details = {"outcome": t.outcome, "reason_code": t.reason_code, "note": t.note, "by": t.claimed_by}
            at = format_time(t.completed_at)
            add(t.completed_at, TimelineItem(at=at, kind="outcome", id=t.id, summary=str(t.outcome), details=details))
    for g in store.list_gestures(None, customer_id, MAX_PER_CUSTOMER):
        gesture = g.gesture
        summary = f"{gesture.type} {gesture.amount:g} {gesture.currency} ({g.status})"
        details = {"task_id": gesture.task_id, "reason": gesture.reason}
        at = gesture.created_at
        add(_ts(at), TimelineItem(at=at, kind="gesture", id=gesture.id, summary=summary, details=details))
    for a in store.audit(customer_id=customer_id):
        summary = f"{a.actor} {a.action}"
        add(a.at, TimelineItem(at=format_time(a.at), kind="audit", id=a.task_id or a.gesture_id, summary=summary,
                               details=a.details))  # fmt: skip
    profile = store.get_profile(customer_id)
    if not items and profile is None:
        raise ApiError(404, f"no customer {customer_id!r}: no events, tasks or gestures are kept for it")
    items.sort(key=lambda entry: (entry[0], entry[1]))
    return Timeline(customer_id=customer_id, profile=profile[1] if profile else None, items=[i for _, _, i in items])


def _ts(text: str) -> float:
    from recovery.times import parse_time

    try:
        return parse_time(text)
    except ValueError:
        return -math.inf
