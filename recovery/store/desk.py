"""The task desk in SQL: tasks, gestures and the audit trail of a SQL store (`SqlTaskDesk`, mixed into `SqlStore`).
Every state change is one conditional UPDATE, so that of two agents claiming one task at the same moment exactly one
succeeds, whatever the database."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, cast

from recovery.effects import Gesture, GestureStatus, Task, TaskStatus
from recovery.store.records import AuditEntry, GestureRecord, TaskQuery, TaskRecord
from recovery.store.statements import REAL, TEXT, Cursor, Insert, Params, Query, Statement, Write

TASK_COLUMNS = (
    "t.status, t.queue, t.priority, t.due_ts, t.created_ts, t.claimed_by, t.claimed_at, t.completed_at, t.outcome, "
    "t.reason_code, t.note, t.escalated_at, t.joined_claimed, t.cancel_reason, e.body"
)
TASK_FROM = "FROM tasks t JOIN effects e ON e.id = t.id"
GESTURE_COLUMNS = "g.status, g.decided_by, g.decided_at, e.body"
GESTURE_FROM = "FROM gestures g JOIN effects e ON e.id = g.id"
AUDIT_COLUMNS = "seq, at, actor, action, customer_id, task_id, gesture_id, details"

INSERT_TASK = Insert(
    "put_effect",
    "tasks",
    (
        ("id", TEXT),
        ("customer_id", TEXT),
        ("playbook", TEXT),
        ("queue", TEXT),
        ("priority", TEXT),
        ("due_ts", REAL),
        ("created_ts", REAL),
        ("status", TEXT),
        ("case_id", TEXT),
    ),
    ignore=True,
)
INSERT_GESTURE = Insert(
    "put_effect", "gestures", (("id", TEXT), ("customer_id", TEXT), ("task_id", TEXT), ("status", TEXT)), ignore=True
)
ADD_AUDIT = Insert(
    "add_audit",
    "audit",
    (
        ("at", REAL),
        ("actor", TEXT),
        ("action", TEXT),
        ("customer_id", TEXT),
        ("task_id", TEXT),
        ("gesture_id", TEXT),
        ("details", TEXT),
    ),
)
GET_TASK = Query("get_task", f"SELECT {TASK_COLUMNS} {TASK_FROM} WHERE t.id = ?")
CLAIM = Query(
    "claim_task",
    "UPDATE tasks SET status = 'claimed', claimed_by = ?, claimed_at = ? "
    "WHERE id = ? AND status IN ('open', 'escalated')",
)
_RELEASE = (
    "UPDATE tasks SET status = CASE WHEN escalated_at IS NULL THEN 'open' ELSE 'escalated' END, "
    "claimed_by = NULL, claimed_at = NULL WHERE id = ? AND status = 'claimed'"
)
RELEASE = Query("release_task", _RELEASE)
RELEASE_BY = Query("release_task", _RELEASE + " AND claimed_by = ?")
COMPLETE = Query(
    "complete_task",
    "UPDATE tasks SET status = 'done', completed_at = ?, outcome = ?, reason_code = ?, note = ? "
    "WHERE id = ? AND status = 'claimed' AND claimed_by = ?",
)
OVERDUE = Query(
    "overdue_tasks",
    f"SELECT {TASK_COLUMNS} {TASK_FROM} WHERE t.status IN ('open', 'claimed', 'escalated') "
    "AND t.escalated_at IS NULL AND t.due_ts < ? ORDER BY t.due_ts, t.id LIMIT ?",
)
ESCALATE = Query(
    "escalate_task",
    "UPDATE tasks SET priority = ?, queue = ?, escalated_at = ?, "
    "status = CASE WHEN status = 'open' THEN 'escalated' ELSE status END "
    "WHERE id = ? AND escalated_at IS NULL AND status IN ('open', 'claimed')",
)
COUNTS = Query(
    "task_counts",
    "SELECT queue, count(*), sum(CASE WHEN due_ts < ? THEN 1 ELSE 0 END) FROM tasks "
    "WHERE status IN ('open', 'claimed', 'escalated') GROUP BY queue",
)
GET_GESTURE = Query("get_gesture", f"SELECT {GESTURE_COLUMNS} {GESTURE_FROM} WHERE g.id = ?")
DECIDE = Query(
    "decide_gesture",
    "UPDATE gestures SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'proposed'",
)


def task_params(task: Task, due_ts: float, created_ts: float) -> tuple[Any, ...]:
    t = task
    return (t.id, t.customer_id, t.playbook, t.queue, t.priority, due_ts, created_ts, t.status, t.case_id or None)


def gesture_params(gesture: Gesture) -> tuple[Any, ...]:
    return (gesture.id, gesture.customer_id, gesture.task_id, gesture.status)


def task_record(row: Sequence[Any]) -> TaskRecord:
    (status, queue, priority, due_ts, created_ts, claimed_by, claimed_at, completed_at, outcome, reason_code, note,
     escalated_at, joined_claimed, cancel_reason, body) = row  # fmt: skip
    return TaskRecord(
        task=Task.model_validate_json(body),
        status=cast(TaskStatus, status),
        queue=queue,
        priority=priority,
        due_ts=float(due_ts),
        created_ts=float(created_ts),
        claimed_by=claimed_by,
        claimed_at=claimed_at,
        completed_at=completed_at,
        outcome=outcome,
        reason_code=reason_code,
        note=note,
        escalated_at=escalated_at,
        joined_claimed=bool(joined_claimed),
        cancel_reason=cancel_reason,
    )


def gesture_record(row: Sequence[Any]) -> GestureRecord:
    status, decided_by, decided_at, body = row
    return GestureRecord(Gesture.model_validate_json(body), cast(GestureStatus, status), decided_by, decided_at)


def audit_entry(row: Sequence[Any]) -> AuditEntry:
    seq, at, actor, action, customer_id, task_id, gesture_id, details = row
    return AuditEntry(int(seq), float(at), actor, action, customer_id, task_id, gesture_id, json.loads(details))


def where(p: str, filters: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """A WHERE clause (or nothing) of the filters whose value is not None, `p` the placeholder: (clause, values).
    A filter is a fixed condition on one value (`column = ` or `column < `); every value is a parameter."""
    given = [(condition, value) for condition, value in filters if value is not None]
    clause = f" WHERE {' AND '.join(f'{condition} {p}' for condition, _ in given)}" if given else ""
    return clause, [value for _, value in given]


def list_tasks_sql(query: TaskQuery, p: str) -> tuple[str, str, list[Any]]:
    """The page's SELECT, the COUNT and their parameters (the page's end with limit and offset)."""
    clause, params = where(
        p,
        (
            ("t.queue =", query.queue),
            ("t.status =", query.status),
            ("t.priority =", query.priority),
            ("t.customer_id =", query.customer_id),
            ("t.due_ts <", query.due_before),
        ),
    )
    select = f"SELECT {TASK_COLUMNS} {TASK_FROM}{clause} ORDER BY t.priority, t.due_ts, t.id LIMIT {p} OFFSET {p}"
    count = f"SELECT count(*) FROM tasks t{clause}"  # noqa: S608 (fixed columns)
    return select, count, params


def count_rows(rows: Sequence[Sequence[Any]]) -> tuple[dict[str, int], dict[str, int]]:
    active = {str(queue): int(n) for queue, n, _ in rows}
    overdue = {str(queue): int(late or 0) for queue, _, late in rows if late}
    return active, overdue


class SqlTaskDesk(ABC):
    """The task desk's methods of a SQL store: its statements above, run by the store (`_run`, `_select` for a
    statement made for the call, `_write`); `_p` is the dialect's placeholder."""

    _p: str

    @abstractmethod
    def _run(self, statement: Statement, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def _select(self, what: str, sql: str, params: Params) -> Cursor: ...

    @abstractmethod
    def _write(self, write: Write, params: Params) -> None: ...

    def list_tasks(self, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        select, count, params = list_tasks_sql(query, self._p)
        rows = self._select("list_tasks", select, [*params, query.limit, query.offset]).fetchall()
        row = self._select("list_tasks", count, params).fetchone()
        return [task_record(r) for r in rows], int(row[0]) if row else 0

    def get_task(self, task_id: str) -> TaskRecord | None:
        row = self._run(GET_TASK, (task_id,)).fetchone()
        return task_record(row) if row else None

    def claim_task(self, task_id: str, agent: str, at: float) -> bool:
        return self._run(CLAIM, (agent, at, task_id)).rowcount == 1

    def release_task(self, task_id: str, agent: str | None, at: float) -> bool:
        if agent is None:
            return self._run(RELEASE, (task_id,)).rowcount == 1
        return self._run(RELEASE_BY, (task_id, agent)).rowcount == 1

    def complete_task(self, task_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str) -> bool:
        return self._run(COMPLETE, (at, outcome, reason_code, note, task_id, agent)).rowcount == 1

    def overdue_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        return [task_record(row) for row in self._run(OVERDUE, (now, limit)).fetchall()]

    def escalate_task(self, task_id: str, priority: str, queue: str, at: float) -> bool:
        return self._run(ESCALATE, (priority, queue, at, task_id)).rowcount == 1

    def task_counts(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        return count_rows(self._run(COUNTS, (now,)).fetchall())

    def list_gestures(self, status: str | None, customer_id: str | None, limit: int) -> list[GestureRecord]:
        clause, params = where(self._p, (("g.status =", status), ("g.customer_id =", customer_id)))
        select = f"SELECT {GESTURE_COLUMNS} {GESTURE_FROM}{clause} ORDER BY e.seq LIMIT {self._p}"
        return [gesture_record(row) for row in self._select("list_gestures", select, [*params, limit]).fetchall()]

    def get_gesture(self, gesture_id: str) -> GestureRecord | None:
        row = self._run(GET_GESTURE, (gesture_id,)).fetchone()
        return gesture_record(row) if row else None

    def decide_gesture(self, gesture_id: str, status: GestureStatus, actor: str, at: float) -> bool:
        return self._run(DECIDE, (status, actor, at, gesture_id)).rowcount == 1

    def add_audit(
        self,
        at: float,
        actor: str,
        action: str,
        *,
        customer_id: str | None = None,
        task_id: str | None = None,
        gesture_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._write(ADD_AUDIT, (at, actor, action, customer_id, task_id, gesture_id, json.dumps(details or {})))

    def audit(
        self, *, customer_id: str | None = None, task_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        clause, params = where(self._p, (("customer_id =", customer_id), ("task_id =", task_id)))
        select = f"SELECT {AUDIT_COLUMNS} FROM audit{clause} ORDER BY seq LIMIT {self._p}"  # noqa: S608 (fixed columns)
        return [audit_entry(row) for row in self._select("audit", select, [*params, limit]).fetchall()]
