"""The memory store: what is its own beyond the contract. It cannot roll back, and says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recovery.exceptions import StoreError
from recovery.store import Deadline, MemoryStore
from recovery.store.records import TaskQuery
from tests.store.test_stores import occ, task

WRITES: dict[str, Callable[[MemoryStore], Any]] = {
    "add_event": lambda s: s.add_event("e9", 0.0),
    "append_history": lambda s: s.append_history(occ("e9", 5.0)),
    "put_profile": lambda s: s.put_profile("C1", 1.0, {"tier": "gold"}),
    "set_cooldown": lambda s: s.set_cooldown("C1", "p", 1.0),
    "add_deadline": lambda s: s.add_deadline(Deadline("d9", 9.0, "p", "C1", "k", occ("e9", 1.0))),
    "remove_deadline": lambda s: s.remove_deadline("d1"),
    "set_scope_customers": lambda s: s.set_scope_customers("o1", {"C1"}),
    "scope_log_add": lambda s: s.scope_log_add(1.0, "{}"),
    "mark_scope_applied": lambda s: s.mark_scope_applied("events/0", 1),
    "set_watermark": lambda s: s.set_watermark("events/0", 1.0),
    "put_effect": lambda s: s.put_effect(task("tsk-9")),
    "claim_task": lambda s: s.claim_task("tsk-1", "ann", 1.0),
    "add_audit": lambda s: s.add_audit(1.0, "ann", "claim"),
    "outbox_add": lambda s: s.outbox_add("t", None, b"v"),
    "outbox_claim": lambda s: s.outbox_claim("me", 10, 1.0, 60.0),
    "outbox_done": lambda s: s.outbox_done([1]),
    "outbox_retry": lambda s: s.outbox_retry([1], 5.0, "away"),
    "outbox_park": lambda s: s.outbox_park(1, 5.0, "too large"),
    "prune_ledger": lambda s: s.prune_ledger(10 * 86400.0),
    "prune_history": lambda s: s.prune_history(100.0),
}


@pytest.fixture
def store() -> MemoryStore:
    """A memory store with one committed row of each kind."""
    store = MemoryStore()
    store.add_event("e1", 0.0)
    store.append_history(occ("e1", 0.0))
    store.add_deadline(Deadline("d1", 9.0, "p", "C1", "k", occ("e1", 0.0)))
    store.put_effect(task("tsk-1"))
    store.outbox_add("t", None, b"v")
    store.commit()
    return store


class TestRollback:
    def test_without_writes_since_the_commit_it_does_nothing(self, store: MemoryStore) -> None:
        store.rollback()
        assert store.get_task("tsk-1") is not None and store.history("C1", 0.0) != []
        # Reads are not writes.
        store.history("C1", 0.0)
        store.list_tasks(TaskQuery())
        store.pending_deadlines()
        store.outbox_size()
        assert store.add_event("e1", 0.0) is False  # a duplicate writes nothing
        assert store.put_effect(task("tsk-1")) is False
        assert store.claim_task("nope", "ann", 1.0) is False
        assert store.outbox_claim("me", 0, 1.0, 60.0) == []
        assert store.outbox_parked(10) == ([], 0)
        store.rollback()

    @pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
    def test_after_a_write_it_raises(self, store: MemoryStore, write: Callable[[MemoryStore], Any]) -> None:
        write(store)
        with pytest.raises(StoreError, match=r"memory store cannot roll back \d+ writes.*replay, tests and benchmarks"):
            store.rollback()
        store.commit()
        store.rollback()  # committed: nothing to undo

    def test_the_message_counts_the_writes(self, store: MemoryStore) -> None:
        for n in range(3):
            store.outbox_add("t", None, b"%d" % n)
        with pytest.raises(StoreError, match="cannot roll back 3 writes"):
            store.rollback()
