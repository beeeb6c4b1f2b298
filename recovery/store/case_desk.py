"""The case desk in SQL: a customer's tasks grouped by their case (DESIGN.md, effects: a case groups a customer's
open tasks; the queue lists cases), as people act on them (`SqlCaseDesk`, mixed into `SqlStore`).

A case here is its tasks: those whose `case_id` is the case's id (a task raised without one, before cases, is a
case of its own under the task's id). The queue is ordered by the case's priority (the highest of its active tasks),
then its customer's `annual_value` (highest first), then its earliest due time, then its id. Claiming, releasing
and completing a case are each one conditional UPDATE over its tasks, so that of two agents claiming one case at the
same moment exactly one wins, whatever the database.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from recovery.events import Occurrence
from recovery.store.desk import TASK_COLUMNS, TASK_FROM, task_record
from recovery.store.records import CaseQuery, DeskCase, TaskRecord, WatchedCustomer, group_cases
from recovery.store.statements import Cursor, Params, Query, Statement

ACTIVE_SQL = "('open', 'claimed', 'escalated')"
TASKS = f"SELECT {TASK_COLUMNS} {TASK_FROM} "
# A case's tasks are those of its `case_id`, and the one task raised without a case under its own id: each statement
# below says so with `(case_id = ? OR (case_id IS NULL AND id = ?))`, the case's id twice.

CASE_PROFILES = Query("case_profiles", "SELECT customer_id, data FROM profiles WHERE customer_id {in_ids}")
CASE_TASKS = Query(
    "case_tasks",
    TASKS + "WHERE t.case_id {in_ids} OR (t.case_id IS NULL AND t.id {in_ids})",
)
CLAIM_CASE = Query(
    "claim_case",
    "UPDATE tasks SET status = 'claimed', claimed_by = ?, claimed_at = ?, joined_claimed = 0 "
    "WHERE (case_id = ? OR (case_id IS NULL AND id = ?)) AND status IN ('open', 'escalated') "
    "AND NOT EXISTS (SELECT 1 FROM tasks o WHERE (o.case_id = ? OR (o.case_id IS NULL AND o.id = ?)) "
    "AND o.status = 'claimed' AND o.claimed_by <> ?) RETURNING id",
)
_RELEASE_CASE = (
    "UPDATE tasks SET status = CASE WHEN escalated_at IS NULL THEN 'open' ELSE 'escalated' END, claimed_by = NULL, "
    "claimed_at = NULL, joined_claimed = 0 WHERE (case_id = ? OR (case_id IS NULL AND id = ?)) AND status = 'claimed'"
)
RELEASE_CASE = Query("release_case", _RELEASE_CASE + " RETURNING id")
RELEASE_CASE_BY = Query("release_case", _RELEASE_CASE + " AND claimed_by = ? RETURNING id")
COMPLETE_CASE = Query(
    "complete_case",
    "UPDATE tasks SET status = 'done', completed_at = ?, outcome = ?, reason_code = ?, note = ? "
    "WHERE (case_id = ? OR (case_id IS NULL AND id = ?)) AND status = 'claimed' AND claimed_by = ? "
    "AND joined_claimed = 0 RETURNING id",
)
CASE_SEEN = Query(
    "case_seen",
    "UPDATE tasks SET joined_claimed = 0 WHERE (case_id = ? OR (case_id IS NULL AND id = ?)) AND status = 'claimed' "
    "AND claimed_by = ? AND joined_claimed = 1",
)
WATCHED = Query(
    "customers_to_watch",
    "SELECT c.customer_id, pr.data FROM (SELECT h.customer_id FROM history h WHERE h.ts >= ? AND h.type {in_ids} "
    "UNION SELECT t.customer_id FROM tasks t WHERE t.status IN ('open', 'claimed', 'escalated')) c "
    "LEFT JOIN profiles pr ON pr.customer_id = c.customer_id ORDER BY {profile_value} DESC, "
    "CASE {profile_tier} WHEN 'platinum' THEN 3 WHEN 'gold' THEN 2 WHEN 'silver' THEN 1 ELSE 0 END DESC, "
    "c.customer_id LIMIT ? OFFSET ?",
)
WATCHED_EVENTS = Query(
    "customers_to_watch",
    "SELECT customer_id, event_id, type, ts, data FROM history WHERE customer_id {in_ids} AND ts >= ? "
    "AND type {in_ids} ORDER BY customer_id, ts, {history_seq}",
)
WATCHED_TASKS = Query(
    "customers_to_watch",
    TASKS + "WHERE t.customer_id {in_ids} AND {unindexed}t.status IN ('open', 'claimed', 'escalated')",
)

# The queue: one row per case (its tasks grouped by case), `{where}` the tasks looked at, then the cases' filters.
_GROUPED = (
    "SELECT coalesce(t.case_id, t.id) AS case_key, min(t.customer_id) AS customer_id, "
    "coalesce(min(CASE WHEN t.status IN ('open', 'claimed', 'escalated') THEN t.priority END), min(t.priority)) "
    "AS priority, "
    "coalesce(min(CASE WHEN t.status IN ('open', 'claimed', 'escalated') THEN t.due_ts END), min(t.due_ts)) AS due_ts, "
    "sum(CASE WHEN t.status IN ('open', 'claimed', 'escalated') THEN 1 ELSE 0 END) AS active, "
    "sum(CASE WHEN t.status = 'claimed' THEN 1 ELSE 0 END) AS claimed, "
    "sum(CASE WHEN t.status = 'escalated' THEN 1 ELSE 0 END) AS escalated "
    "FROM tasks t{where} GROUP BY coalesce(t.case_id, t.id)"
)
_CASE_QUEUE = (
    "(SELECT q.queue FROM tasks q WHERE (q.case_id = c.case_key OR (q.case_id IS NULL AND q.id = c.case_key)) "
    "AND (c.active = 0 OR q.status IN ('open', 'claimed', 'escalated')) ORDER BY q.priority, q.due_ts, q.id LIMIT 1)"
)
STATUS_FILTERS = {
    "active": "c.active > 0",
    "open": "c.active > 0 AND c.claimed = 0 AND c.escalated = 0",
    "escalated": "c.claimed = 0 AND c.escalated > 0",
    "claimed": "c.claimed > 0",
    "closed": "c.active = 0",
    "all": "",
}


def list_cases_sql(query: CaseQuery) -> tuple[str, str, list[Any]]:
    """The page's SELECT of case ids, the COUNT, and their parameters (the page's end with limit and offset), with
    `?` placeholders and slots (see statements.py)."""
    if query.status not in STATUS_FILTERS:
        raise ValueError(f"case status {query.status!r} is not one of {', '.join(STATUS_FILTERS)}")
    inner: list[str] = []
    params: list[Any] = []
    if query.status not in ("closed", "all"):
        inner.append(f"t.status IN {ACTIVE_SQL}")  # active cases: their active tasks are all that count
    if query.customer_id is not None:
        inner.append("t.customer_id = ?")
        params.append(query.customer_id)
    grouped = _GROUPED.replace("{where}", f" WHERE {' AND '.join(inner)}" if inner else "")
    outer = [STATUS_FILTERS[query.status]] if STATUS_FILTERS[query.status] else []
    for condition, value in (
        ("c.priority = ?", query.priority),
        (f"{_CASE_QUEUE} = ?", query.queue),
        (
            "c.case_key IN (SELECT coalesce(o.case_id, o.id) FROM tasks o WHERE o.status = 'claimed' "
            "AND o.claimed_by = ?)",
            query.claimed_by,
        ),
    ):
        if value is not None:
            outer.append(condition)
            params.append(value)
    clause = f" WHERE {' AND '.join(outer)}" if outer else ""
    # Fixed columns and conditions; every value is a parameter.
    joined = f"SELECT c.case_key FROM ({grouped}) c LEFT JOIN profiles pr ON pr.customer_id = c.customer_id"  # noqa: S608
    select = joined + clause + " ORDER BY c.priority, {profile_value} DESC, c.due_ts, c.case_key LIMIT ? OFFSET ?"
    count = f"SELECT count(*) FROM ({grouped}) c{clause}"  # noqa: S608
    return select, count, params


class SqlCaseDesk(ABC):
    """The case desk's methods of a SQL store: its statements above, run by the store (`_run`; `_select` for a
    statement made for the call, `_render` writes it in the dialect); `_ids` passes a list of ids."""

    @abstractmethod
    def _run(self, statement: Statement, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def _select(self, what: str, sql: str, params: Params) -> Cursor: ...

    @abstractmethod
    def _render(self, sql: str) -> str: ...

    @abstractmethod
    def _ids(self, values: list[str] | list[int]) -> Any: ...

    def _cases(self, keys: Sequence[str]) -> dict[str, DeskCase]:
        """The cases of these ids, every task of each, with their customers' profiles."""
        if not keys:
            return {}
        ids = self._ids(list(keys))
        tasks = [task_record(row) for row in self._run(CASE_TASKS, (ids, ids)).fetchall()]
        return group_cases(tasks, self._profiles({t.task.customer_id for t in tasks}).get)

    def _profiles(self, customers: set[str]) -> dict[str, dict[str, Any]]:
        if not customers:
            return {}
        rows = self._run(CASE_PROFILES, (self._ids(sorted(customers)),)).fetchall()
        return {cid: json.loads(data) for cid, data in rows}

    def list_cases(self, query: CaseQuery) -> tuple[list[DeskCase], int]:
        select, count, params = list_cases_sql(query)
        page = self._select("list_cases", self._render(select), [*params, query.limit, query.offset])
        keys = [row[0] for row in page.fetchall()]
        row = self._select("list_cases", self._render(count), params).fetchone()
        cases = self._cases(keys)
        return [cases[key] for key in keys if key in cases], int(row[0]) if row else 0

    def get_case(self, case_id: str) -> DeskCase | None:
        return self._cases([case_id]).get(case_id)

    def claim_case(self, case_id: str, agent: str, at: float) -> list[str]:
        rows = self._run(CLAIM_CASE, (agent, at, case_id, case_id, case_id, case_id, agent)).fetchall()
        return sorted(row[0] for row in rows)

    def release_case(self, case_id: str, agent: str | None, at: float) -> list[str]:
        if agent is None:
            rows = self._run(RELEASE_CASE, (case_id, case_id)).fetchall()
        else:
            rows = self._run(RELEASE_CASE_BY, (case_id, case_id, agent)).fetchall()
        return sorted(row[0] for row in rows)

    def complete_case(
        self, case_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str
    ) -> list[str]:
        params = (at, outcome, reason_code, note, case_id, case_id, agent)
        return sorted(row[0] for row in self._run(COMPLETE_CASE, params).fetchall())

    def case_seen(self, case_id: str, agent: str) -> int:
        return self._run(CASE_SEEN, (case_id, case_id, agent)).rowcount

    def customers_to_watch(self, since: float, types: Sequence[str], limit: int, offset: int) -> list[WatchedCustomer]:
        kinds = self._ids(sorted(types))
        rows = self._run(WATCHED, (since, kinds, limit, offset)).fetchall()
        if not rows:
            return []
        ids = self._ids([row[0] for row in rows])
        events: dict[str, list[Occurrence]] = {}
        for cid, eid, etype, ts, data in self._run(WATCHED_EVENTS, (ids, since, kinds)).fetchall():
            events.setdefault(cid, []).append(Occurrence(eid, etype, float(ts), cid, json.loads(data)))
        tasks: list[TaskRecord] = [task_record(row) for row in self._run(WATCHED_TASKS, (ids,)).fetchall()]
        profiles = {cid: json.loads(data) for cid, data in rows if data is not None}
        cases: dict[str, list[DeskCase]] = {}
        for case in sorted(group_cases(tasks, profiles.get).values(), key=DeskCase.order):
            cases.setdefault(case.customer_id, []).append(case)
        return [
            WatchedCustomer(cid, profiles.get(cid), tuple(events.get(cid, ())), tuple(cases.get(cid, ())))
            for cid, _ in rows
        ]
