"""The store interface. The engine is a cache over it (DESIGN.md principle 3): everything needed to rebuild a
customer's state, and every pending deadline, is written here as it happens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from recovery.effects import Effect
from recovery.events import Occurrence


@dataclass(frozen=True)
class Deadline:
    """An absence playbook waiting: fires at `due` unless an event with the same key arrives first."""

    id: str
    due: float
    playbook: str
    customer_id: str
    key: str
    first: Occurrence


@dataclass(frozen=True)
class OutboxItem:
    """A message waiting to be published: an effect, a fan-out delivery or a DLQ record."""

    seq: int
    topic: str
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Store(Protocol):
    def add_event(self, event_id: str) -> bool:
        """Record an event id in the ledger; False when it was seen before (a duplicate)."""
        ...

    def preload_events(self, event_ids: list[str]) -> None:
        """A hint before a batch: the ids `add_event` is about to be asked about (a remote store checks them in
        one round trip). Stores where a lookup is cheap ignore it."""
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

    def add_deadline(self, deadline: Deadline) -> None: ...

    def remove_deadline(self, deadline_id: str) -> None: ...

    def pending_deadlines(self) -> list[Deadline]: ...

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

    def set_watermark(self, stream: str, ts: float) -> None:
        """Every scope event of `stream` (a partition) older than `ts` is in the scope log (inf: caught up)."""
        ...

    def watermarks(self, prefix: str) -> dict[str, float]:
        """The watermarks of the streams whose name starts with `prefix`."""
        ...

    def put_effect(self, effect: Effect) -> bool:
        """Store an effect; False when an effect with that id exists already (never raised twice)."""
        ...

    def effects(self) -> list[Effect]: ...

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        """Queue a message for the output topics, in the same transaction as the writes that caused it."""
        ...

    def outbox_take(self, limit: int) -> list[OutboxItem]:
        """Up to `limit` queued messages, oldest first, removed from the outbox in the open transaction: commit
        after they are published (a crash in between publishes them again, never loses them)."""
        ...

    def outbox_size(self) -> int: ...

    def commit(self) -> None:
        """Make every write so far durable (one transaction per batch)."""
        ...

    def rollback(self) -> None:
        """Forget every write since the last commit."""
        ...

    def close(self) -> None: ...
