"""The memory store's task desk role, as `MemoryStore` has it: its base class, compiled with it (see setup.py). The
methods of `TaskDesk` run on the store's `MemoryDesk` (tasks, gestures, the audit trail) and `MemoryCaseDesk` (cases,
customers to watch), and count what they change in `_writes` (see `MemoryStore.rollback`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from recovery.effects import GestureStatus
from recovery.store.memory_case_desk import MemoryCaseDesk
from recovery.store.memory_desk import MemoryDesk
from recovery.store.records import (
    AuditEntry,
    CaseQuery,
    DeskCase,
    GestureRecord,
    TaskQuery,
    TaskRecord,
    WatchedCustomer,
)


class MemoryTaskDesk:
    """`TaskDesk` over `_desk` and `_case_desk`, which the store makes."""

    _desk: MemoryDesk
    _case_desk: MemoryCaseDesk
    _writes: int

    def _wrote(self, changes: int) -> int:
        self._writes += changes
        return changes

    def list_tasks(self, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        return self._desk.list_tasks(query)

    def get_task(self, task_id: str) -> TaskRecord | None:
        return self._desk.get_task(task_id)

    def claim_task(self, task_id: str, agent: str, at: float) -> bool:
        return bool(self._wrote(self._desk.claim_task(task_id, agent, at)))

    def release_task(self, task_id: str, agent: str | None, at: float) -> bool:
        return bool(self._wrote(self._desk.release_task(task_id, agent, at)))

    def complete_task(self, task_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str) -> bool:
        return bool(self._wrote(self._desk.complete_task(task_id, agent, at, outcome, reason_code, note)))

    def overdue_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        return self._desk.overdue_tasks(now, limit)

    def escalate_task(self, task_id: str, priority: str, queue: str, at: float) -> bool:
        return bool(self._wrote(self._desk.escalate_task(task_id, priority, queue, at)))

    def task_counts(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        return self._desk.task_counts(now)

    def list_cases(self, query: CaseQuery) -> tuple[list[DeskCase], int]:
        return self._case_desk.list_cases(query)

    def get_case(self, case_id: str) -> DeskCase | None:
        return self._case_desk.get_case(case_id)

    def claim_case(self, case_id: str, agent: str, at: float) -> list[str]:
        return self._case_desk.claim_case(case_id, agent, at)

    def release_case(self, case_id: str, agent: str | None, at: float) -> list[str]:
        return self._case_desk.release_case(case_id, agent, at)

    def complete_case(
        self, case_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str
    ) -> list[str]:
        return self._case_desk.complete_case(case_id, agent, at, outcome, reason_code, note)

    def case_seen(self, case_id: str, agent: str) -> int:
        return self._case_desk.case_seen(case_id, agent)

    def customers_to_watch(self, since: float, types: Sequence[str], limit: int, offset: int) -> list[WatchedCustomer]:
        return self._case_desk.customers_to_watch(since, types, limit, offset)

    def list_gestures(self, status: str | None, customer_id: str | None, limit: int) -> list[GestureRecord]:
        return self._desk.list_gestures(status, customer_id, limit)

    def get_gesture(self, gesture_id: str) -> GestureRecord | None:
        return self._desk.get_gesture(gesture_id)

    def decide_gesture(self, gesture_id: str, status: GestureStatus, actor: str, at: float) -> bool:
        return bool(self._wrote(self._desk.decide_gesture(gesture_id, status, actor, at)))

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
        self._writes += 1
        self._desk.add_audit(at, actor, action, customer_id, task_id, gesture_id, details)

    def audit(
        self, *, customer_id: str | None = None, task_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        return self._desk.audit(customer_id, task_id, limit)
