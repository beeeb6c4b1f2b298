"""The memory store's task desk: tasks, gestures and the audit trail, in dicts (for the API's tests and replay)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from recovery.effects import Effect, GestureStatus, Task
from recovery.store.records import ACTIVE, CLAIMABLE, AuditEntry, GestureRecord, TaskQuery, TaskRecord, case_key
from recovery.times import parse_time


class MemoryDesk:
    """Tasks and gestures as raised, where they stand now, and who did what. API threads share one memory store
    in tests: the conditional updates are atomic."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskRecord] = {}
        self._gestures: dict[str, GestureRecord] = {}
        self._audit: list[AuditEntry] = []
        self._by_case: dict[str, list[str]] = {}  # the ids of each case's tasks
        self._lock = threading.Lock()

    def add(self, effect: Effect) -> None:
        """A new effect: its task or gesture row (a task joining a case an agent holds is theirs, marked new)."""
        if not isinstance(effect, Task):
            self._gestures[effect.id] = GestureRecord(effect, effect.status)
            return
        record = TaskRecord(
            effect,
            effect.status,
            effect.queue,
            effect.priority,
            parse_time(effect.due_at),
            parse_time(effect.created_at),
        )
        with self._lock:
            in_case = self._by_case.setdefault(effect.case_id, []) if effect.case_id else []
            holder = next((t for tid in in_case if (t := self._tasks[tid]).status == "claimed"), None)
            if effect.case_id:
                in_case.append(effect.id)
            if holder is not None and record.status == "open":
                record = dataclasses.replace(
                    record,
                    status="claimed",
                    claimed_by=holder.claimed_by,
                    claimed_at=holder.claimed_at,
                    joined_claimed=True,
                )
            self._tasks[effect.id] = record

    def cancel(self, task_ids: list[str], at: float, reason: str) -> list[Task]:
        cancelled: list[Task] = []
        with self._lock:
            for task_id in sorted(task_ids):
                record = self._tasks.get(task_id)
                if record is not None and record.status in ACTIVE:
                    self._tasks[task_id] = dataclasses.replace(
                        record, status="cancelled", completed_at=at, cancel_reason=reason
                    )
                    cancelled.append(record.task.model_copy(update={"status": "cancelled"}))
        return cancelled

    def complete_from_event(self, task_id: str, at: float, outcome: str, reason_code: str, agent: str) -> bool:
        with self._lock:
            record = self._tasks.get(task_id)
            if record is None or record.status not in ACTIVE:
                return False
            self._tasks[task_id] = dataclasses.replace(
                record,
                status="done",
                completed_at=at,
                outcome=outcome,
                reason_code=reason_code,
                claimed_by=record.claimed_by or agent,
            )
            return True

    def list_tasks(self, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        found = [
            t
            for t in self._tasks.values()
            if (query.queue is None or t.queue == query.queue)
            and (query.status is None or t.status == query.status)
            and (query.priority is None or t.priority == query.priority)
            and (query.customer_id is None or t.task.customer_id == query.customer_id)
            and (query.due_before is None or t.due_ts < query.due_before)
        ]
        found.sort(key=lambda t: (t.priority, t.due_ts, t.id))
        return found[query.offset : query.offset + query.limit], len(found)

    def get_task(self, task_id: str) -> TaskRecord | None:
        return self._tasks.get(task_id)

    def tasks(self) -> list[TaskRecord]:
        """Every task as it stands now."""
        with self._lock:
            return list(self._tasks.values())

    def change_case(
        self,
        case_id: str,
        allowed: Callable[[list[TaskRecord]], bool],
        change: Callable[[TaskRecord], TaskRecord | None],
    ) -> list[str]:
        """At once: when `allowed(the case's tasks)`, each of them that `change` changes (None: unchanged); returns
        the ids changed, sorted."""
        with self._lock:
            members = [t for t in self._tasks.values() if case_key(t.task) == case_id]
            if not allowed(members):
                return []
            changed: list[str] = []
            for record in members:
                new = change(record)
                if new is not None:
                    self._tasks[record.id] = new
                    changed.append(record.id)
            return sorted(changed)

    def _change_task(self, task_id: str, allowed: bool, **changes: Any) -> bool:
        if not allowed:
            return False
        self._tasks[task_id] = dataclasses.replace(self._tasks[task_id], **changes)
        return True

    def claim_task(self, task_id: str, agent: str, at: float) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            ok = task is not None and task.status in CLAIMABLE
            return self._change_task(task_id, ok, status="claimed", claimed_by=agent, claimed_at=at)

    def release_task(self, task_id: str, agent: str | None, at: float) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            ok = task is not None and task.status == "claimed" and agent in (None, task.claimed_by)
            status = "open" if task is None or task.escalated_at is None else "escalated"
            return self._change_task(task_id, ok, status=status, claimed_by=None, claimed_at=None)

    def complete_task(self, task_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            ok = task is not None and task.status == "claimed" and task.claimed_by == agent
            changes = {"outcome": outcome, "reason_code": reason_code, "note": note}
            return self._change_task(task_id, ok, status="done", completed_at=at, **changes)

    def overdue_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        found = [t for t in self._tasks.values() if t.status in ACTIVE and t.escalated_at is None and t.due_ts < now]
        return sorted(found, key=lambda t: (t.due_ts, t.id))[:limit]

    def escalate_task(self, task_id: str, priority: str, queue: str, at: float) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            ok = task is not None and task.escalated_at is None and task.status in ("open", "claimed")
            status = "escalated" if task is not None and task.status == "open" else "claimed"
            return self._change_task(task_id, ok, priority=priority, queue=queue, escalated_at=at, status=status)

    def task_counts(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        active: dict[str, int] = {}
        overdue: dict[str, int] = {}
        for t in self._tasks.values():
            if t.status in ACTIVE:
                active[t.queue] = active.get(t.queue, 0) + 1
                if t.due_ts < now:
                    overdue[t.queue] = overdue.get(t.queue, 0) + 1
        return active, overdue

    def list_gestures(self, status: str | None, customer_id: str | None, limit: int) -> list[GestureRecord]:
        found = [
            g
            for g in self._gestures.values()
            if (status is None or g.status == status) and (customer_id is None or g.gesture.customer_id == customer_id)
        ]
        return found[:limit]

    def get_gesture(self, gesture_id: str) -> GestureRecord | None:
        return self._gestures.get(gesture_id)

    def decide_gesture(self, gesture_id: str, status: GestureStatus, actor: str, at: float) -> bool:
        with self._lock:
            gesture = self._gestures.get(gesture_id)
            if gesture is None or gesture.status != "proposed":
                return False
            self._gestures[gesture_id] = dataclasses.replace(gesture, status=status, decided_by=actor, decided_at=at)
            return True

    def add_audit(
        self,
        at: float,
        actor: str,
        action: str,
        customer_id: str | None,
        task_id: str | None,
        gesture_id: str | None,
        details: dict[str, Any] | None,
    ) -> None:
        with self._lock:
            entry = AuditEntry(len(self._audit) + 1, at, actor, action, customer_id, task_id, gesture_id)
            self._audit.append(dataclasses.replace(entry, details=dict(details or {})))

    def audit(self, customer_id: str | None, task_id: str | None, limit: int) -> list[AuditEntry]:
        found = [
            a
            for a in self._audit
            if (customer_id is None or a.customer_id == customer_id) and (task_id is None or a.task_id == task_id)
        ]
        return found[:limit]
