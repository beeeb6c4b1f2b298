"""The task lifecycle in SQL, shared by the SQLite and PostgreSQL stores (`?` placeholders; PostgreSQL's store
turns them into `%s`). Every state change is one conditional UPDATE, so that of two agents claiming one task at
the same moment exactly one succeeds, whatever the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from recovery.effects import Gesture, GestureStatus, Task, TaskStatus
from recovery.store.records import AuditEntry, GestureRecord, TaskQuery, TaskRecord

TASK_COLUMNS = (
    "t.status, t.queue, t.priority, t.due_ts, t.created_ts, t.claimed_by, t.claimed_at, t.completed_at, t.outcome, "
    "t.reason_code, t.note, t.escalated_at, e.body"
)
TASK_FROM = "FROM tasks t JOIN effects e ON e.id = t.id"

INSERT_TASK = (
    "INSERT INTO tasks (id, customer_id, playbook, queue, priority, due_ts, created_ts, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
INSERT_GESTURE = "INSERT INTO gestures (id, customer_id, task_id, status) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
GET_TASK = f"SELECT {TASK_COLUMNS} {TASK_FROM} WHERE t.id = ?"
CLAIM = (
    "UPDATE tasks SET status = 'claimed', claimed_by = ?, claimed_at = ? "
    "WHERE id = ? AND status IN ('open', 'escalated')"
)
RELEASE = (
    "UPDATE tasks SET status = CASE WHEN escalated_at IS NULL THEN 'open' ELSE 'escalated' END, "
    "claimed_by = NULL, claimed_at = NULL WHERE id = ? AND status = 'claimed'"
)
COMPLETE = (
    "UPDATE tasks SET status = 'done', completed_at = ?, outcome = ?, reason_code = ?, note = ? "
    "WHERE id = ? AND status = 'claimed' AND claimed_by = ?"
)
OVERDUE = (
    f"SELECT {TASK_COLUMNS} {TASK_FROM} WHERE t.status IN ('open', 'claimed', 'escalated') "
    "AND t.escalated_at IS NULL AND t.due_ts < ? ORDER BY t.due_ts, t.id LIMIT ?"
)
ESCALATE = (
    "UPDATE tasks SET priority = ?, queue = ?, escalated_at = ?, "
    "status = CASE WHEN status = 'open' THEN 'escalated' ELSE status END "
    "WHERE id = ? AND escalated_at IS NULL AND status IN ('open', 'claimed')"
)
COUNTS = (
    "SELECT queue, count(*), sum(CASE WHEN due_ts < ? THEN 1 ELSE 0 END) FROM tasks "
    "WHERE status IN ('open', 'claimed', 'escalated') GROUP BY queue"
)
GESTURE_COLUMNS = "g.status, g.decided_by, g.decided_at, e.body"
GESTURE_FROM = "FROM gestures g JOIN effects e ON e.id = g.id"
GET_GESTURE = f"SELECT {GESTURE_COLUMNS} {GESTURE_FROM} WHERE g.id = ?"
DECIDE = "UPDATE gestures SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'proposed'"
INSERT_AUDIT = (
    "INSERT INTO audit (at, actor, action, customer_id, task_id, gesture_id, details) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def task_params(task: Task, due_ts: float, created_ts: float) -> tuple[Any, ...]:
    return (task.id, task.customer_id, task.playbook, task.queue, task.priority, due_ts, created_ts, task.status)


def gesture_params(gesture: Gesture) -> tuple[Any, ...]:
    return (gesture.id, gesture.customer_id, gesture.task_id, gesture.status)


def task_record(row: Sequence[Any]) -> TaskRecord:
    (status, queue, priority, due_ts, created_ts, claimed_by, claimed_at, completed_at, outcome, reason_code, note,
     escalated_at, body) = row  # fmt: skip
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
    )


def gesture_record(row: Sequence[Any]) -> GestureRecord:
    status, decided_by, decided_at, body = row
    return GestureRecord(Gesture.model_validate_json(body), cast(GestureStatus, status), decided_by, decided_at)


def audit_entry(row: Sequence[Any]) -> AuditEntry:
    seq, at, actor, action, customer_id, task_id, gesture_id, details = row
    return AuditEntry(int(seq), float(at), actor, action, customer_id, task_id, gesture_id, json.loads(details))


def list_tasks_sql(query: TaskQuery) -> tuple[str, str, list[Any]]:
    """The page's SELECT, the COUNT and their parameters (the page's ends with limit and offset)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("t.queue", query.queue),
        ("t.status", query.status),
        ("t.priority", query.priority),
        ("t.customer_id", query.customer_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.due_before is not None:
        where.append("t.due_ts < ?")
        params.append(query.due_before)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    # The clauses name fixed columns; every value is a parameter.
    select = f"SELECT {TASK_COLUMNS} {TASK_FROM}{clause} ORDER BY t.priority, t.due_ts, t.id LIMIT ? OFFSET ?"
    count = f"SELECT count(*) FROM tasks t{clause}"  # noqa: S608
    return select, count, params


def list_gestures_sql(status: str | None, customer_id: str | None) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("g.status = ?")
        params.append(status)
    if customer_id is not None:
        where.append("g.customer_id = ?")
        params.append(customer_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {GESTURE_COLUMNS} {GESTURE_FROM}{clause} ORDER BY e.seq LIMIT ?", params


def audit_sql(customer_id: str | None, task_id: str | None) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    if task_id is not None:
        where.append("task_id = ?")
        params.append(task_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    columns = "seq, at, actor, action, customer_id, task_id, gesture_id, details"
    return f"SELECT {columns} FROM audit{clause} ORDER BY seq LIMIT ?", params  # noqa: S608 (fixed columns)


def count_rows(rows: Sequence[Sequence[Any]]) -> tuple[dict[str, int], dict[str, int]]:
    active = {str(queue): int(n) for queue, n, _ in rows}
    overdue = {str(queue): int(late or 0) for queue, _, late in rows if late}
    return active, overdue
