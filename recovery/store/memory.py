"""An in-memory store, for `recovery replay`, playbook tests and benchmarks: it keeps nothing across a restart and
cannot roll back, so `recovery serve` does not use it."""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from recovery.effects import Effect, Task
from recovery.events import Occurrence
from recovery.exceptions import StoreError
from recovery.store.base import Watermark
from recovery.store.fact_records import Fact, FactSet
from recovery.store.memory_case_desk import MemoryCaseDesk
from recovery.store.memory_desk import MemoryDesk
from recovery.store.memory_facts import MemoryFacts
from recovery.store.memory_outbox import MemoryOutbox
from recovery.store.memory_task_desk import MemoryTaskDesk
from recovery.store.records import (
    CaseRecord,
    Deadline,
    GestureRecord,
    MutedRecord,
    OutboxItem,
    ParkedItem,
    Snooze,
    TaskRecord,
)

DAY_S = 86400.0
_task_json = Task.__pydantic_serializer__.to_json
"""A task as JSON, without pydantic's per-call Python layer."""


class MemoryStore(MemoryTaskDesk):
    """Everything in dicts. `keep_effects=False` keeps only effect ids (enough to never raise one twice), and the
    tasks not done yet (a lost customer's are published again as cancelled).

    Writes take effect at once, and `commit()` has nothing to do; `rollback()` cannot undo them: it raises
    `StoreError` when anything was written since the last commit."""

    def __init__(self, *, keep_effects: bool = True) -> None:
        self._keep_effects = keep_effects
        self._writes = 0  # since the last commit: what a rollback would have to undo
        self._effect_ids: set[str] = set()
        self._ledger: set[str] = set()
        self._ledger_days: dict[int, list[str]] = {}  # the ids by day of their event, for pruning
        self._ledger_day: tuple[float, float, list[str]] = (math.inf, -math.inf, [])  # the last day used
        self._history: dict[str, list[Occurrence]] = {}
        self._profiles: dict[str, tuple[float, dict[str, Any]]] = {}
        self._regions: dict[str, set[str]] = {}
        self._cooldowns: dict[str, dict[str, float]] = {}
        self._deadlines: dict[str, Deadline] = {}
        self._scopes: dict[str, set[str]] = {}
        self._effects: dict[str, Effect] = {}
        self._outbox = MemoryOutbox()
        self._scope_log: dict[int, tuple[float, str]] = {}
        self._scope_applied: dict[str, set[int]] = {}
        self._watermarks: dict[str, Watermark] = {}
        self._epochs: dict[str, int] = {}  # not rolled back: a claim is written at once
        self._desk = MemoryDesk()
        self._cases: dict[str, CaseRecord] = {}  # the open case of each customer
        self._snoozes: dict[str, dict[str, Snooze]] = {}
        self._muted: dict[str, MutedRecord] = {}
        # keep_effects=False: the tasks not done, to cancel, as JSON (a third of a Task's memory: a replay holds every
        # task its customers raised, 110,000 of them over `bench.memory`'s million customers)
        self._open_tasks: dict[str, bytes] = {}
        self._case_desk = MemoryCaseDesk(self._desk, self._profiles, self._history, self._wrote)
        self._facts = MemoryFacts(self._desk)

    def add_event(self, event_id: str, ts: float) -> bool:
        if event_id in self._ledger:
            return False
        self._ledger.add(event_id)
        self._writes += 1
        start, end, ids = self._ledger_day
        if not start <= ts < end:  # another day than the last event's (rarely: events come in time order)
            day = math.floor(ts / DAY_S) if math.isfinite(ts) else 0
            ids = self._ledger_days.setdefault(day, [])
            self._ledger_day = (day * DAY_S, (day + 1) * DAY_S, ids)
        ids.append(event_id)
        return True

    def prune_ledger(self, before: float) -> int:
        """Whole days only: ids of the day `before` falls in stay until the next prune."""
        last = math.floor(before / DAY_S) if math.isfinite(before) else None
        if last is None:
            return 0
        dropped = 0
        self._ledger_day = (math.inf, -math.inf, [])  # its list may be dropped here
        for day in [d for d in self._ledger_days if d < last]:
            ids = self._ledger_days.pop(day)
            self._ledger.difference_update(ids)
            dropped += len(ids)
        self._writes += dropped
        return dropped

    def preload_events(self, event_ids: list[str]) -> None:
        """Nothing to do: a lookup here is cheap."""

    def preload_customers(self, customer_ids: list[str], since: float) -> None:
        """Nothing to do: a lookup here is cheap."""

    def append_history(self, occurrence: Occurrence) -> None:
        self._writes += 1
        items = self._history.get(occurrence.customer_id)
        if items is None:
            self._history[occurrence.customer_id] = [occurrence]
        elif items[-1].ts <= occurrence.ts:
            items.append(occurrence)
        else:  # a late event
            bisect.insort(items, occurrence, key=lambda o: o.ts)

    def history(self, customer_id: str, since: float) -> list[Occurrence]:
        items = self._history.get(customer_id, [])
        start = bisect.bisect_left(items, since, key=lambda o: o.ts)
        return items[start:]

    def prune_history(self, before: float) -> int:
        for seq in [seq for seq, (ts, _) in self._scope_log.items() if ts < before]:
            self._writes += 1
            del self._scope_log[seq]
            for applied in self._scope_applied.values():
                applied.discard(seq)
        dropped = 0
        for cid in list(self._history):  # the keys only: a million customers' pairs would weigh on the peak
            items = self._history[cid]
            if items[0].ts >= before:  # most customers: nothing to drop
                continue
            cut = 1
            while cut < len(items) and items[cut].ts < before:
                cut += 1
            dropped += cut
            if cut == len(items):
                del self._history[cid]
            else:
                del items[:cut]
        self._writes += dropped
        return dropped

    def get_profile(self, customer_id: str) -> tuple[float, dict[str, Any]] | None:
        return self._profiles.get(customer_id)

    def put_profile(self, customer_id: str, ts: float, profile: dict[str, Any]) -> None:
        self._writes += 1
        old = self._profiles.get(customer_id)
        if old is not None and old[1].get("region") is not None:
            self._regions.get(old[1]["region"], set()).discard(customer_id)
        self._profiles[customer_id] = (ts, profile)
        region = profile.get("region")
        if region is not None:
            self._regions.setdefault(str(region), set()).add(customer_id)

    def customers_in_region(self, region: str) -> Iterable[str]:
        return sorted(self._regions.get(region, ()))

    def get_cooldowns(self, customer_id: str) -> dict[str, float]:
        return dict(self._cooldowns.get(customer_id, {}))

    def set_cooldown(self, customer_id: str, playbook: str, ts: float) -> None:
        self._writes += 1
        self._cooldowns.setdefault(customer_id, {})[playbook] = ts

    def add_deadline(self, deadline: Deadline) -> None:
        self._writes += 1
        self._deadlines.setdefault(deadline.id, deadline)  # a pending id keeps its deadline, as in the SQL stores

    def remove_deadline(self, deadline_id: str) -> None:
        self._writes += 1
        self._deadlines.pop(deadline_id, None)

    def pending_deadlines(self) -> list[Deadline]:
        return sorted(self._deadlines.values(), key=lambda d: (d.due, d.id))

    def scope_customers(self, scope_id: str) -> set[str]:
        return set(self._scopes.get(scope_id, ()))

    def set_scope_customers(self, scope_id: str, customers: set[str]) -> None:
        self._writes += 1
        if customers:
            self._scopes[scope_id] = set(customers)
        else:
            self._scopes.pop(scope_id, None)

    def scope_log_add(self, ts: float, event: str) -> int:
        self._writes += 1
        seq = max(self._scope_log, default=0) + 1
        self._scope_log[seq] = (ts, event)
        return seq

    def scope_log(self, since: float) -> list[tuple[int, float, str]]:
        rows = [(seq, ts, event) for seq, (ts, event) in self._scope_log.items() if ts >= since]
        return sorted(rows, key=lambda row: (row[1], row[0]))

    def scope_applied(self, stream: str) -> set[int]:
        return set(self._scope_applied.get(stream, ()))

    def mark_scope_applied(self, stream: str, seq: int) -> None:
        self._writes += 1
        self._scope_applied.setdefault(stream, set()).add(seq)

    def set_watermark(self, stream: str, ts: float, ended_at: float = float("-inf")) -> None:
        self._writes += 1
        self._watermarks[stream] = Watermark(ts, ended_at)

    def watermarks(self, prefix: str) -> dict[str, Watermark]:
        return {k: v for k, v in self._watermarks.items() if k.startswith(prefix)}

    def claim_streams(self, streams: list[str]) -> dict[str, int]:
        for stream in streams:
            self._epochs[stream] = self._epochs.get(stream, 0) + 1
        return {stream: self._epochs[stream] for stream in streams}

    def fenced(self, epochs: dict[str, int]) -> list[str]:
        return sorted(stream for stream, epoch in epochs.items() if self._epochs.get(stream) != epoch)

    def put_effect(self, effect: Effect) -> bool:
        if effect.id in self._effect_ids:
            return False
        self._effect_ids.add(effect.id)
        self._writes += 1
        if self._keep_effects:
            self._effects[effect.id] = effect
            self._desk.add(effect)
        elif isinstance(effect, Task):
            self._open_tasks[effect.id] = _task_json(effect)
        return True

    def effects(self) -> list[Effect]:
        return list(self._effects.values())

    # ------------------------------------------------------------------------------------------- cases

    def open_case(self, customer_id: str) -> CaseRecord | None:
        case = self._cases.get(customer_id)
        return dataclasses.replace(case, open_tasks=dict(case.open_tasks)) if case is not None else None

    def put_case(self, case: CaseRecord) -> None:
        self._writes += 1
        if case.closed_ts is None:
            self._cases[case.customer_id] = dataclasses.replace(case, open_tasks=dict(case.open_tasks))
        else:
            self._cases.pop(case.customer_id, None)

    def snoozes(self, customer_id: str) -> dict[str, Snooze]:
        return dict(self._snoozes.get(customer_id, {}))

    def put_snooze(self, customer_id: str, snooze: Snooze) -> None:
        self._writes += 1
        self._snoozes.setdefault(customer_id, {})[snooze.playbook] = snooze

    def put_muted(self, effect: Effect, muted_by: str, reason: str, at: float) -> None:
        self._writes += 1
        self._muted.setdefault(effect.id, MutedRecord(effect, muted_by, reason, at))

    def muted(self, customer_id: str | None, since: float, until: float, limit: int = 10_000) -> list[MutedRecord]:
        found = [
            m
            for m in self._muted.values()
            if since <= m.at < until and (customer_id is None or m.effect.customer_id == customer_id)
        ]
        return sorted(found, key=lambda m: (m.at, m.effect.id))[:limit]

    def cancel_tasks(self, task_ids: list[str], at: float, reason: str) -> list[Task]:
        if not self._keep_effects:
            tasks = [t for tid in sorted(task_ids) if (t := self._open_tasks.pop(tid, None)) is not None]
            self._writes += len(tasks)
            return [Task.model_validate_json(t).model_copy(update={"status": "cancelled"}) for t in tasks]
        cancelled = self._desk.cancel(task_ids, at, reason)
        self._writes += len(cancelled)
        return cancelled

    def complete_from_event(self, task_id: str, at: float, outcome: str, reason_code: str, agent: str) -> None:
        if not self._keep_effects:
            self._open_tasks.pop(task_id, None)
            return
        self._wrote(self._desk.complete_from_event(task_id, at, outcome, reason_code, agent))

    # ------------------------------------------------------------------------------------------- report facts

    def put_fact(self, fact: Fact) -> None:
        self._writes += 1
        self._facts.put(fact)

    def add_count(self, metric: str, key: str, week: float, n: int = 1) -> None:
        self._writes += 1
        self._facts.add_count(metric, key, week, n)

    def report_facts(self, until: float, weeks_since: float) -> FactSet:
        return self._facts.facts(until, weeks_since)

    def tasks_created(self, since: float, until: float) -> list[TaskRecord]:
        return self._facts.tasks_created(since, until)

    def gestures_created(self, since: float, until: float) -> list[GestureRecord]:
        return self._facts.gestures_created(since, until)

    # ------------------------------------------------------------------------------------------- outbox

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        self._writes += 1
        self._outbox.add(topic, key, value, headers)

    def outbox_claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[OutboxItem]:
        claimed = self._outbox.claim(owner, limit, now, lease_s)
        self._writes += len(claimed)
        return claimed

    def outbox_done(self, seqs: list[int]) -> None:
        self._writes += len(seqs)
        self._outbox.done(seqs)

    def outbox_retry(self, seqs: list[int], not_before: float, error: str) -> None:
        self._writes += len(seqs)
        self._outbox.retry(seqs, not_before, error)

    def outbox_park(self, seq: int, at: float, error: str) -> None:
        self._writes += 1
        self._outbox.park(seq, at, error)

    def outbox_release(self) -> int:
        released = self._outbox.release()
        self._writes += released
        return released

    def outbox_size(self) -> int:
        return self._outbox.size()

    def outbox_parked(self, limit: int) -> tuple[list[ParkedItem], int]:
        return self._outbox.parked(limit)

    def outbox_unpark(self, seqs: list[int] | None) -> int:
        unparked = self._outbox.unpark(seqs)
        self._writes += unparked
        return unparked

    def commit(self) -> None:
        """Nothing to write: memory is as durable as it gets."""
        self._writes = 0

    def rollback(self) -> None:
        """Nothing to do when nothing was written since the last commit; else `StoreError`: memory keeps what was
        written."""
        if self._writes:
            raise StoreError(
                f"the memory store cannot roll back {self._writes} writes made since the last commit: it is for "
                "replay, tests and benchmarks (use sqlite:///FILE or postgresql://... to roll back)"
            )

    def close(self) -> None:
        """Nothing to release."""
