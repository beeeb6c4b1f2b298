"""The memory store's case desk (`MemoryStore` hands its case methods to it): a customer's tasks grouped by their
case, in the order and with the semantics of the SQL stores' (see case_desk.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from recovery.effects import TaskStatus
from recovery.events import Occurrence
from recovery.store.memory_desk import MemoryDesk
from recovery.store.records import (
    ACTIVE,
    CASE_STATUSES,
    CLAIMABLE,
    CaseQuery,
    DeskCase,
    TaskRecord,
    WatchedCustomer,
    case_key,
    group_cases,
)


def _matches(case: DeskCase, query: CaseQuery) -> bool:
    status = case.status
    wanted = {
        "active": status != "closed",
        "closed": status == "closed",
        "all": True,
    }.get(query.status, status == query.status)
    return (
        wanted
        and (query.priority is None or case.priority == query.priority)
        and (query.queue is None or case.queue == query.queue)
        and (query.customer_id is None or case.customer_id == query.customer_id)
        and (query.claimed_by is None or query.claimed_by in case.holders)
    )


class MemoryCaseDesk:
    """Cases over the memory store's task desk, its profiles and its history (shared, not copied); `wrote(n)` tells
    the store of `n` changes (see `MemoryStore.rollback`)."""

    def __init__(
        self,
        desk: MemoryDesk,
        profiles: dict[str, tuple[float, dict[str, Any]]],
        history: dict[str, list[Occurrence]],
        wrote: Callable[[int], int],
    ) -> None:
        self._desk = desk
        self._profiles = profiles
        self._history = history
        self._wrote = wrote

    def list_cases(self, query: CaseQuery) -> tuple[list[DeskCase], int]:
        if query.status not in CASE_STATUSES:
            raise ValueError(f"case status {query.status!r} is not one of {', '.join(CASE_STATUSES)}")
        cases = [c for c in group_cases(self._desk.tasks(), self._profile).values() if _matches(c, query)]
        cases.sort(key=DeskCase.order)
        return cases[query.offset : query.offset + query.limit], len(cases)

    def get_case(self, case_id: str) -> DeskCase | None:
        members = [t for t in self._desk.tasks() if case_key(t.task) == case_id]
        return group_cases(members, self._profile).get(case_id)

    def _profile(self, customer_id: str) -> dict[str, Any] | None:
        found = self._profiles.get(customer_id)
        return found[1] if found is not None else None

    def _changed(self, ids: list[str]) -> list[str]:
        self._wrote(len(ids))
        return ids

    def claim_case(self, case_id: str, agent: str, at: float) -> list[str]:
        def allowed(members: list[TaskRecord]) -> bool:
            return not any(t.status == "claimed" and t.claimed_by != agent for t in members)

        def claim(t: TaskRecord) -> TaskRecord | None:
            if t.status not in CLAIMABLE:
                return None
            return dataclasses.replace(t, status="claimed", claimed_by=agent, claimed_at=at, joined_claimed=False)

        return self._changed(self._desk.change_case(case_id, allowed, claim))

    def release_case(self, case_id: str, agent: str | None, at: float) -> list[str]:
        def release(t: TaskRecord) -> TaskRecord | None:
            if t.status != "claimed" or agent not in (None, t.claimed_by):
                return None
            status: TaskStatus = "open" if t.escalated_at is None else "escalated"
            return dataclasses.replace(t, status=status, claimed_by=None, claimed_at=None, joined_claimed=False)

        return self._changed(self._desk.change_case(case_id, lambda _: True, release))

    def complete_case(
        self, case_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str
    ) -> list[str]:
        def complete(t: TaskRecord) -> TaskRecord | None:
            if t.status != "claimed" or t.claimed_by != agent or t.joined_claimed:
                return None
            return dataclasses.replace(
                t, status="done", completed_at=at, outcome=outcome, reason_code=reason_code, note=note
            )

        return self._changed(self._desk.change_case(case_id, lambda _: True, complete))

    def case_seen(self, case_id: str, agent: str) -> int:
        def seen(t: TaskRecord) -> TaskRecord | None:
            if t.status != "claimed" or t.claimed_by != agent or not t.joined_claimed:
                return None
            return dataclasses.replace(t, joined_claimed=False)

        return len(self._changed(self._desk.change_case(case_id, lambda _: True, seen)))

    def customers_to_watch(self, since: float, types: Sequence[str], limit: int, offset: int) -> list[WatchedCustomer]:
        kinds = set(types)
        events = {
            cid: tuple(o for o in items if o.ts >= since and o.type in kinds) for cid, items in self._history.items()
        }
        active = [t for t in self._desk.tasks() if t.status in ACTIVE]
        by_customer: dict[str, list[DeskCase]] = {}
        for case in sorted(group_cases(active, self._profile).values(), key=DeskCase.order):
            by_customer.setdefault(case.customer_id, []).append(case)
        watched: list[WatchedCustomer] = []
        for cid in {cid for cid, found in events.items() if found} | set(by_customer):
            cases = tuple(by_customer.get(cid, ()))
            watched.append(WatchedCustomer(cid, self._profile(cid), events.get(cid, ()), cases))
        watched.sort(key=WatchedCustomer.order)
        return watched[offset : offset + limit]
