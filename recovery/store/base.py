"""The store's roles, each a small protocol. The engine is a cache over its state (DESIGN.md principle 3): everything
needed to rebuild a customer's state, and every pending deadline, is written here as it happens.

`EngineState` is what the engine reads and writes (ledger, customers, deadlines, scope log, effect log, the report's
facts);
`TaskDesk` is what people act on through the API (tasks, gestures, the audit trail); `Outbox` holds what is waiting
to be published; `Transaction` makes it durable. `Store` is all of them: what a backend implements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from recovery.effects import Effect, GestureStatus, Task
from recovery.events import Occurrence
from recovery.store.fact_records import Fact, FactSet
from recovery.store.records import (
    AuditEntry,
    CaseQuery,
    CaseRecord,
    Deadline,
    DeskCase,
    GestureRecord,
    MutedRecord,
    OutboxItem,
    ParkedItem,
    Snooze,
    TaskQuery,
    TaskRecord,
    WatchedCustomer,
)


class Watermark(NamedTuple):
    """How far a stream (a partition) is known: every scope event of it older than `ts` is in the scope log, and so is
    every one in a record the broker took before `ended_at` (epoch seconds; -inf: none is known so). A partition
    read to its end says both: its stream time, and when it was found read to its end."""

    ts: float
    ended_at: float = float("-inf")


class Ledger(Protocol):
    """The ids of the events seen, so that a duplicate is recognised."""

    def add_event(self, event_id: str, ts: float) -> bool:
        """Record an event id (of an event of time `ts`) in the ledger; False when it was seen before (a
        duplicate)."""
        ...

    def prune_ledger(self, before: float) -> int:
        """Forget the ids of events of time before `before` (a duplicate of one is no longer recognised by the
        ledger: its effects still are, by their ids); returns how many (at least; a store may keep some longer)."""
        ...

    def preload_events(self, event_ids: list[str]) -> None:
        """A hint before a batch: the ids `add_event` is about to be asked about (a remote store checks them in
        one round trip). Stores where a lookup is cheap ignore it."""
        ...


class Customers(Protocol):
    """Each customer's state: kept occurrences, profile (and region), cooldowns."""

    def preload_customers(self, customer_ids: list[str], since: float) -> None:
        """A hint before a batch: the customers whose state (profile, cooldowns, history since `since`) is about
        to be read. Stores where a lookup is cheap ignore it."""
        ...

    def append_history(self, occurrence: Occurrence) -> None:
        """Keep an occurrence a playbook may look back to."""
        ...

    def history(self, customer_id: str, since: float) -> list[Occurrence]:
        """The customer's kept occurrences with `ts >= since`, oldest first."""
        ...

    def prune_history(self, before: float) -> int:
        """Forget occurrences and logged scope events older than `before` (no playbook looks back that far);
        returns how many occurrences."""
        ...

    def get_profile(self, customer_id: str) -> tuple[float, dict[str, Any]] | None: ...

    def put_profile(self, customer_id: str, ts: float, profile: dict[str, Any]) -> None: ...

    def customers_in_region(self, region: str) -> Iterable[str]: ...

    def get_cooldowns(self, customer_id: str) -> dict[str, float]: ...

    def set_cooldown(self, customer_id: str, playbook: str, ts: float) -> None: ...


class Deadlines(Protocol):
    """Absence playbooks waiting for their deadline."""

    def add_deadline(self, deadline: Deadline) -> None: ...

    def remove_deadline(self, deadline_id: str) -> None: ...

    def pending_deadlines(self) -> list[Deadline]: ...


class ScopeLog(Protocol):
    """Events about many customers (outages): whom they touched, and their log, applied once per partition."""

    def scope_customers(self, scope_id: str) -> set[str]:
        """The customers an open scope event (an outage) touched, by its id."""
        ...

    def set_scope_customers(self, scope_id: str, customers: set[str]) -> None: ...

    def scope_log_add(self, ts: float, event: str) -> int:
        """Log a scope event (an outage, as envelope JSON) for every partition's customers; returns its seq."""
        ...

    def scope_log(self, since: float) -> list[tuple[int, float, str]]:
        """Logged scope events with `ts >= since` as (seq, ts, event JSON), by time then seq."""
        ...

    def scope_applied(self, stream: str) -> set[int]:
        """The seqs of the logged scope events already applied to the customers of `stream` (a partition)."""
        ...

    def mark_scope_applied(self, stream: str, seq: int) -> None: ...

    def set_watermark(self, stream: str, ts: float, ended_at: float = float("-inf")) -> None:
        """Every scope event of `stream` (a partition) older than `ts` is in the scope log, and every one the broker
        took before `ended_at` (`Watermark`)."""
        ...

    def watermarks(self, prefix: str) -> dict[str, Watermark]:
        """The watermarks of the streams whose name starts with `prefix`."""
        ...

    def claim_streams(self, streams: list[str]) -> dict[str, int]:
        """Take `streams` (partitions just assigned) over: each one's epoch goes up by one; the new epochs. The
        caller commits at once, apart from any step."""
        ...

    def fenced(self, epochs: dict[str, int]) -> list[str]:
        """The streams of `epochs` whose epoch moved since (another instance claimed them): this instance lost them.
        Checked in the transaction, before its commit."""
        ...


class EffectLog(Protocol):
    """Every effect raised, by its deterministic id: none is raised twice."""

    def put_effect(self, effect: Effect) -> bool:
        """Store an effect; False when an effect with that id exists already (never raised twice). A store shared
        by several processes may answer True for an id another connection stored before it started: the row is
        not written twice, and the effect is at most published once more with the same id and content."""
        ...

    def effects(self) -> list[Effect]: ...


class Cases(Protocol):
    """A customer's case, its snoozes, and what was muted: decided by the engine in event time (see cases.py)."""

    def open_case(self, customer_id: str) -> CaseRecord | None:
        """The customer's open case, if any."""
        ...

    def put_case(self, case: CaseRecord) -> None:
        """Keep a case as it is now (opened, joined, a task done, closed)."""
        ...

    def snoozes(self, customer_id: str) -> dict[str, Snooze]:
        """The customer's snoozes, by playbook (expired ones included: the caller compares `until`)."""
        ...

    def put_snooze(self, customer_id: str, snooze: Snooze) -> None: ...

    def put_muted(self, effect: Effect, muted_by: str, reason: str, at: float) -> None:
        """Keep an effect that was muted, with what muted it and why (written once per id)."""
        ...

    def muted(self, customer_id: str | None, since: float, until: float, limit: int = 10_000) -> list[MutedRecord]:
        """Muted effects with `since <= at < until`, of one customer or all, oldest first."""
        ...

    def cancel_tasks(self, task_ids: list[str], at: float, reason: str) -> list[Task]:
        """Cancel those of these tasks not done yet (`reason`: why, such as `customer-lost`); returns them as
        effects with status `cancelled`, to publish."""
        ...

    def complete_from_event(self, task_id: str, at: float, outcome: str, reason_code: str, agent: str) -> None:
        """A `task.completed` event for a task not done in this store yet (a stream replayed, another store):
        done with its outcome. Nothing changes when it is done already (the API closed it) or unknown. A SQL store
        queues it with the transaction's other writes, after the tasks they insert."""
        ...


class ReportFacts(Protocol):
    """What the loss review and its metrics read, kept as events go by (see facts.py): lifecycle facts, the profile
    history, weekly counts and outages; and the tasks and gestures of a period."""

    def put_fact(self, fact: Fact) -> None:
        """Keep a lifecycle, profile or outage fact (once per event id: a repeat changes nothing)."""
        ...

    def add_count(self, metric: str, key: str, week: float, n: int = 1) -> None:
        """Add `n` to a weekly count (`week`: the start of its ISO week); a SQL store sums them in memory until
        commit."""
        ...

    def report_facts(self, until: float, weeks_since: float) -> FactSet:
        """Every lifecycle fact and profile before `until`; the counts of the weeks in `[weeks_since, until)` and the
        outages started then."""
        ...

    def tasks_created(self, since: float, until: float) -> list[TaskRecord]:
        """The tasks raised (`created_ts`) in `[since, until)`, as they stand now, oldest first."""
        ...

    def gestures_created(self, since: float, until: float) -> list[GestureRecord]:
        """The gestures raised in `[since, until)`, as they stand now."""
        ...


class EngineState(Ledger, Customers, Deadlines, ScopeLog, EffectLog, Cases, ReportFacts, Protocol):
    """What the engine reads and writes."""


class TaskDesk(Protocol):
    """Tasks and gestures as people act on them, and the audit trail. A task effect gets its task row, and a
    gesture its status row, in `put_effect`'s transaction. State changes are conditional updates: of two agents
    claiming one task, exactly one gets True."""

    def list_tasks(self, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        """The tasks matching `query`, by priority, then due time, then id: one page and the total count."""
        ...

    def get_task(self, task_id: str) -> TaskRecord | None: ...

    def claim_task(self, task_id: str, agent: str, at: float) -> bool:
        """Open or escalated -> claimed by `agent`; False when the task is not claimable (or unknown)."""
        ...

    def release_task(self, task_id: str, agent: str | None, at: float) -> bool:
        """Claimed (by `agent`, or by anyone when None) -> open again (escalated if it was)."""
        ...

    def complete_task(self, task_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str) -> bool:
        """Claimed by `agent` -> done with an outcome; False otherwise."""
        ...

    def overdue_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        """Tasks not done and never escalated whose due time is before `now`, earliest due first."""
        ...

    def escalate_task(self, task_id: str, priority: str, queue: str, at: float) -> bool:
        """Escalate once: the new priority and queue; an open task becomes `escalated` (a claimed one stays with
        its agent). False when it was escalated already or is not active."""
        ...

    def task_counts(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        """Active tasks per queue, and those of them overdue at `now`."""
        ...

    def list_cases(self, query: CaseQuery) -> tuple[list[DeskCase], int]:
        """The cases matching `query` (each with every task of it), by priority, then the customer's annual value
        (highest first), then due time, then id: one page and the total count."""
        ...

    def get_case(self, case_id: str) -> DeskCase | None:
        """A case with every task of it, active or not."""
        ...

    def claim_case(self, case_id: str, agent: str, at: float) -> list[str]:
        """Every open or escalated task of the case -> claimed by `agent`, unless another agent holds one of its
        tasks: the ids claimed ([] when nothing was: of two agents claiming a case at once, one gets [])."""
        ...

    def release_case(self, case_id: str, agent: str | None, at: float) -> list[str]:
        """The case's tasks claimed (by `agent`, or by anyone when None) -> open again (escalated if they were);
        the ids released."""
        ...

    def complete_case(
        self, case_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str
    ) -> list[str]:
        """The case's tasks `agent` holds -> done with one outcome, but those still marked new (they joined the
        case after the agent last opened it: not seen yet); the ids done."""
        ...

    def case_seen(self, case_id: str, agent: str) -> int:
        """The case's holder opened it: its tasks that joined it are marked new no more; returns how many were."""
        ...

    def customers_to_watch(self, since: float, types: Sequence[str], limit: int, offset: int) -> list[WatchedCustomer]:
        """Customers with kept events of `types` since `since` or a task not done yet, most valuable first (annual
        value, then tier, then id): one page (`limit`, `offset`), each with those events and its open cases."""
        ...

    def list_gestures(self, status: str | None, customer_id: str | None, limit: int) -> list[GestureRecord]: ...

    def get_gesture(self, gesture_id: str) -> GestureRecord | None: ...

    def decide_gesture(self, gesture_id: str, status: GestureStatus, actor: str, at: float) -> bool:
        """Proposed -> `status` (approved or rejected); False when it is not proposed (or unknown)."""
        ...

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
    ) -> None: ...

    def audit(
        self, *, customer_id: str | None = None, task_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Audit entries, oldest first, optionally of one customer or one task."""
        ...


class Outbox(Protocol):
    """Messages waiting to be published (effects, fan-out deliveries, DLQ records)."""

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        """Queue a message for the output topics, in the same transaction as the writes that caused it."""
        ...

    def outbox_claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[OutboxItem]:
        """Up to `limit` messages, oldest first, now `owner`'s to publish until `now + lease_s`: messages neither
        parked, nor waiting to be tried again after `now`, nor another owner's whose claim runs past `now`. The
        caller commits the claim at once, publishes, then settles each message (`outbox_done`, `outbox_retry`,
        `outbox_park`) in a transaction of its own; a crash in between publishes them again once the claim runs out,
        never loses them."""
        ...

    def outbox_done(self, seqs: list[int]) -> None:
        """The broker has these messages: they leave the outbox."""
        ...

    def outbox_retry(self, seqs: list[int], not_before: float, error: str) -> None:
        """Publishing these failed for a reason that may pass: try them again from `not_before` on (epoch seconds),
        by whoever claims them."""
        ...

    def outbox_park(self, seq: int, at: float, error: str) -> None:
        """The broker refused this message for good: keep it, publish it no more (until `outbox_unpark`)."""
        ...

    def outbox_release(self) -> int:
        """Give up every claim (at the start of the only instance that publishes this outbox: its earlier claims
        died with it); returns how many."""
        ...

    def outbox_size(self) -> int:
        """Messages waiting to be published (parked ones aside)."""
        ...

    def outbox_parked(self, limit: int) -> tuple[list[ParkedItem], int]:
        """The parked messages, oldest first: at most `limit` of them, and how many there are."""
        ...

    def outbox_unpark(self, seqs: list[int] | None) -> int:
        """Publish these parked messages again (None: all of them); returns how many."""
        ...


class Transaction(Protocol):
    """One open transaction at a time: every write since the last commit is made durable, or forgotten, at once."""

    def commit(self) -> None:
        """Make every write so far durable (one transaction per batch)."""
        ...

    def rollback(self) -> None:
        """Forget every write since the last commit."""
        ...

    def close(self) -> None: ...


class OutboxStore(Outbox, Transaction, Protocol):
    """The outbox and its transaction: what the outbox publisher needs."""


class Store(EngineState, TaskDesk, Outbox, Transaction, Protocol):
    """Every role: what a backend implements."""
