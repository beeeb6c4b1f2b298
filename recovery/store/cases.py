"""A customer's case, snoozes and muted effects in SQL: the engine's side of cases (DESIGN.md, effects: a case groups
a customer's open tasks). The engine decides, in event time, which case a task joins, which playbooks are snoozed
for a customer and what an inhibition or a snooze muted; the store keeps it, so the decisions survive restarts."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from recovery.effects import Effect, Task, effect_from_dict
from recovery.store.records import CaseRecord, MutedRecord, Snooze
from recovery.store.statements import REAL, TEXT, Cursor, Insert, Params, Query, Statement, Trailing, Upsert, Write

PUT_CASE = Upsert(
    "put_case",
    "cases",
    (
        ("case_id", TEXT),
        ("customer_id", TEXT),
        ("opened_ts", REAL),
        ("closed_ts", REAL),
        ("closed_reason", TEXT),
        ("open_tasks", TEXT),
    ),
    key=("case_id",),
)
OPEN_CASE = Query(
    "open_case",
    "SELECT case_id, customer_id, opened_ts, closed_ts, closed_reason, open_tasks FROM cases "
    "WHERE customer_id = ? AND closed_ts IS NULL",
)
PRELOAD_CASES = Query(
    "preload_customers",
    "SELECT case_id, customer_id, opened_ts, closed_ts, closed_reason, open_tasks FROM cases "
    "WHERE customer_id {in_ids} AND closed_ts IS NULL",
)
PUT_SNOOZE = Upsert(
    "put_snooze",
    "snoozes",
    (("customer_id", TEXT), ("playbook", TEXT), ("until_ts", REAL), ("reason", TEXT), ("snoozed_by", TEXT)),
    key=("customer_id", "playbook"),
)
SNOOZES = Query("snoozes", "SELECT playbook, until_ts, reason, snoozed_by FROM snoozes WHERE customer_id = ?")
PRELOAD_SNOOZES = Query(
    "preload_customers",
    "SELECT customer_id, playbook, until_ts, reason, snoozed_by FROM snoozes WHERE customer_id {in_ids}",
)
PUT_MUTED = Insert(
    "put_muted",
    "muted",
    (
        ("id", TEXT),
        ("customer_id", TEXT),
        ("playbook", TEXT),
        ("kind", TEXT),
        ("at", REAL),
        ("muted_by", TEXT),
        ("reason", TEXT),
        ("body", TEXT),
    ),
    ignore=True,
)
MUTED = Query(
    "muted",
    "SELECT body, muted_by, reason, at FROM muted WHERE at >= ? AND at < ? ORDER BY at, id LIMIT ?",
)
MUTED_OF = Query(
    "muted",
    "SELECT body, muted_by, reason, at FROM muted WHERE customer_id = ? AND at >= ? AND at < ? ORDER BY at, id LIMIT ?",
)
JOIN_CLAIMED = Query(
    "join_claimed_case",
    "UPDATE tasks SET status = 'claimed', joined_claimed = 1, claimed_at = ?, claimed_by = (SELECT o.claimed_by "
    "FROM tasks o WHERE o.case_id = tasks.case_id AND o.status = 'claimed' AND o.id <> tasks.id "
    "ORDER BY o.claimed_at, o.id LIMIT 1) WHERE id {in_ids} AND {unindexed}status = 'open' "
    "AND EXISTS (SELECT 1 FROM tasks o WHERE o.case_id = tasks.case_id AND o.status = 'claimed' AND o.id <> tasks.id)",
)
CANCEL_TASKS = Query(
    "cancel_tasks",
    "UPDATE tasks SET status = 'cancelled', completed_at = ?, cancel_reason = ? "
    "WHERE id {in_ids} AND {unindexed}status IN ('open', 'claimed', 'escalated') RETURNING id",
)
TASK_BODIES = Query("cancel_tasks", "SELECT body FROM effects WHERE id {in_ids} ORDER BY id")
COMPLETE_FROM_EVENT = Trailing(
    "complete_from_event",
    "UPDATE tasks SET status = 'done', completed_at = ?, outcome = ?, reason_code = ?, "
    "claimed_by = coalesce(claimed_by, ?) WHERE id = ? AND status IN ('open', 'claimed', 'escalated')",
)


def case_params(case: CaseRecord) -> tuple[Any, ...]:
    return (
        case.case_id,
        case.customer_id,
        case.opened_ts,
        case.closed_ts,
        case.closed_reason,
        json.dumps(case.open_tasks, sort_keys=True),
    )


def case_record(row: Any) -> CaseRecord:
    case_id, customer_id, opened_ts, closed_ts, closed_reason, open_tasks = row
    return CaseRecord(case_id, customer_id, float(opened_ts), json.loads(open_tasks), closed_ts, closed_reason)


class SqlCases(ABC):
    """The cases' methods of a SQL store, run by the store (`_run`, `_write`); `_ids` passes a list of ids."""

    @abstractmethod
    def _run(self, statement: Statement, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def _write(self, write: Write, params: Params) -> None: ...

    @abstractmethod
    def _ids(self, values: list[str] | list[int]) -> Any: ...

    @abstractmethod
    def _cached_case(self, customer_id: str) -> tuple[bool, CaseRecord | None, dict[str, Snooze]]:
        """(preloaded, the open case, the snoozes) of a customer whose state is preloaded in this transaction."""

    @abstractmethod
    def _touched(self, customer_id: str) -> None:
        """A write about the customer: what was preloaded of it is stale."""

    def open_case(self, customer_id: str) -> CaseRecord | None:
        preloaded, case, _ = self._cached_case(customer_id)
        if preloaded:
            return case
        row = self._run(OPEN_CASE, (customer_id,)).fetchone()
        return case_record(row) if row else None

    def put_case(self, case: CaseRecord) -> None:
        self._touched(case.customer_id)
        self._write(PUT_CASE, case_params(case))

    def snoozes(self, customer_id: str) -> dict[str, Snooze]:
        preloaded, _, snoozes = self._cached_case(customer_id)
        if preloaded:
            return dict(snoozes)
        rows = self._run(SNOOZES, (customer_id,)).fetchall()
        return {playbook: Snooze(playbook, float(until), reason, by) for playbook, until, reason, by in rows}

    def put_snooze(self, customer_id: str, snooze: Snooze) -> None:
        self._touched(customer_id)
        self._write(PUT_SNOOZE, (customer_id, snooze.playbook, snooze.until, snooze.reason, snooze.by))

    def put_muted(self, effect: Effect, muted_by: str, reason: str, at: float) -> None:
        params = (effect.id, effect.customer_id, effect.playbook, effect.kind, at, muted_by, reason, effect.to_json())
        self._write(PUT_MUTED, params)

    def muted(self, customer_id: str | None, since: float, until: float, limit: int = 10_000) -> list[MutedRecord]:
        if customer_id is None:
            rows = self._run(MUTED, (since, until, limit)).fetchall()
        else:
            rows = self._run(MUTED_OF, (customer_id, since, until, limit)).fetchall()
        return [MutedRecord(effect_from_dict(json.loads(body)), by, reason, float(at)) for body, by, reason, at in rows]

    def cancel_tasks(self, task_ids: list[str], at: float, reason: str) -> list[Task]:
        if not task_ids:
            return []
        cancelled = [row[0] for row in self._run(CANCEL_TASKS, (at, reason, self._ids(task_ids))).fetchall()]
        if not cancelled:
            return []
        bodies = self._run(TASK_BODIES, (self._ids(sorted(cancelled)),)).fetchall()
        return [Task.model_validate_json(body).model_copy(update={"status": "cancelled"}) for (body,) in bodies]

    def complete_from_event(self, task_id: str, at: float, outcome: str, reason_code: str, agent: str) -> None:
        # Queued, not run: run at once it was a round trip per event (a third of the loop's time on PostgreSQL).
        self._write(COMPLETE_FROM_EVENT, (at, outcome, reason_code, agent, task_id))

    def _join_claimed_cases(self, task_ids: list[str], at: float) -> None:
        """Tasks that joined a case one of whose tasks an agent holds: that agent's now, marked new to them."""
        if task_ids:
            self._run(JOIN_CLAIMED, (at, self._ids(task_ids)))
