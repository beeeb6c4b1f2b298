"""The task desk on every store: task rows with their effect, conditional state changes (one claim wins),
escalation once, gesture decisions, the audit trail."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from recovery.effects import Gesture, Task
from recovery.store import SqliteStore, Store
from recovery.store.postgres import PostgresStore
from recovery.store.records import TaskQuery
from recovery.times import parse_time
from tests.store.older import postgres_at, sqlite_at
from tests.store.test_stores import StoreFactory

DUE = "2026-11-02T10:00:00Z"


def make_task(task_id: str, **changes: object) -> Task:
    values: dict[str, object] = {
        "id": task_id,
        "playbook": "p",
        "playbook_version": 1,
        "customer_id": "C1",
        "queue": "q",
        "priority": "P2",
        "title": "t",
        "reason": "r",
        "evidence": ["e1"],
        "due_at": DUE,
        "created_at": "2026-11-02T09:00:00Z",
        "talking_points": ["say sorry"],
    }
    values.update(changes)
    return Task.model_validate(values)


def make_gesture(gesture_id: str, status: str = "proposed") -> Gesture:
    return Gesture.model_validate(
        {
            "id": gesture_id,
            "playbook": "p",
            "playbook_version": 1,
            "customer_id": "C1",
            "type": "service-credit",
            "amount": 10.0,
            "currency": "USD",
            "status": status,
            "requires_approval": status == "proposed",
            "reason": "r",
            "evidence": [],
            "created_at": "2026-11-02T09:00:00Z",
            "task_id": "tsk-1",
        }
    )


class TestTasks:
    def test_a_task_effect_gets_its_task_row(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        assert store.put_effect(make_task("tsk-1"))
        assert not store.put_effect(make_task("tsk-1", queue="other"))
        store.commit()
        record = store.get_task("tsk-1")
        assert record is not None
        assert (record.status, record.queue, record.priority) == ("open", "q", "P2")
        assert record.due_ts == parse_time(DUE)
        assert record.task == make_task("tsk-1")
        assert record.view().status == "open"
        assert store.get_task("nope") is None

    def test_list_filters_sorts_and_pages(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.put_effect(make_task("a", priority="P3", due_at="2026-11-02T08:00:00Z"))
        store.put_effect(make_task("b", priority="P1", due_at="2026-11-02T12:00:00Z"))
        store.put_effect(make_task("c", priority="P1", due_at="2026-11-02T11:00:00.500Z", queue="other"))
        store.put_effect(make_task("d", priority="P2", customer_id="C2"))
        store.commit()
        page, total = store.list_tasks(TaskQuery())
        assert [t.id for t in page] == ["c", "b", "d", "a"]
        assert total == 4
        page, total = store.list_tasks(TaskQuery(limit=2, offset=1))
        assert ([t.id for t in page], total) == (["b", "d"], 4)
        assert [t.id for t in store.list_tasks(TaskQuery(queue="other"))[0]] == ["c"]
        assert [t.id for t in store.list_tasks(TaskQuery(priority="P1"))[0]] == ["c", "b"]
        assert [t.id for t in store.list_tasks(TaskQuery(customer_id="C2"))[0]] == ["d"]
        due_before = parse_time("2026-11-02T11:00:01Z")
        assert [t.id for t in store.list_tasks(TaskQuery(due_before=due_before))[0]] == ["c", "d", "a"]
        store.claim_task("a", "ann", 1.0)
        assert [t.id for t in store.list_tasks(TaskQuery(status="claimed"))[0]] == ["a"]

    def test_claim_release_complete(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.put_effect(make_task("tsk-1"))
        assert store.claim_task("tsk-1", "ann", 100.0)
        assert not store.claim_task("tsk-1", "bob", 101.0)
        assert not store.claim_task("nope", "bob", 101.0)
        assert not store.release_task("tsk-1", "bob", 102.0)  # not bob's
        assert not store.complete_task("tsk-1", "bob", 102.0, "saved", "x", "")
        record = store.get_task("tsk-1")
        assert record is not None
        assert (record.status, record.claimed_by, record.claimed_at) == ("claimed", "ann", 100.0)
        assert store.release_task("tsk-1", "ann", 103.0)
        record = store.get_task("tsk-1")
        assert record is not None
        assert (record.status, record.claimed_by) == ("open", None)
        assert store.claim_task("tsk-1", "bob", 104.0)
        assert store.release_task("tsk-1", None, 105.0)  # ops releases anyone's
        assert store.claim_task("tsk-1", "bob", 106.0)
        assert store.complete_task("tsk-1", "bob", 107.0, "saved", "offer-accepted", "happy again")
        store.commit()
        record = store.get_task("tsk-1")
        assert record is not None
        assert (record.status, record.outcome, record.reason_code, record.note, record.completed_at) == (
            "done",
            "saved",
            "offer-accepted",
            "happy again",
            107.0,
        )
        assert not store.claim_task("tsk-1", "ann", 108.0)
        assert not store.complete_task("tsk-1", "bob", 109.0, "lost", "x", "")

    def test_escalation_happens_once(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.put_effect(make_task("open-1"))
        store.put_effect(make_task("held-1", due_at="2026-11-02T09:30:00Z"))
        store.put_effect(make_task("later", due_at="2026-11-03T10:00:00Z"))
        store.claim_task("held-1", "ann", 1.0)
        now = parse_time("2026-11-02T11:00:00Z")
        assert [t.id for t in store.overdue_tasks(now, 10)] == ["held-1", "open-1"]
        assert store.task_counts(now) == ({"q": 3}, {"q": 2})
        assert store.escalate_task("open-1", "P1", "supervisors", now)
        assert store.escalate_task("held-1", "P1", "q", now)
        assert not store.escalate_task("open-1", "P1", "supervisors", now + 1)
        store.commit()
        assert store.overdue_tasks(now + 10, 10) == []
        opened, held = store.get_task("open-1"), store.get_task("held-1")
        assert opened is not None and held is not None
        assert (opened.status, opened.priority, opened.queue, opened.escalated_at) == (
            "escalated",
            "P1",
            "supervisors",
            now,
        )
        assert (held.status, held.claimed_by, held.priority) == ("claimed", "ann", "P1")
        assert opened.task.queue == "q"  # as raised
        assert store.claim_task("open-1", "bob", now)
        assert store.release_task("open-1", "bob", now)
        again = store.get_task("open-1")
        assert again is not None and again.status == "escalated"

    def test_gestures_are_decided_once(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.put_effect(make_gesture("gst-1"))
        store.put_effect(make_gesture("gst-2", status="issued"))
        assert [g.id for g in store.list_gestures("proposed", None, 10)] == ["gst-1"]
        assert [g.id for g in store.list_gestures(None, "C1", 10)] == ["gst-1", "gst-2"]
        assert store.decide_gesture("gst-1", "approved", "olga", 5.0)
        assert not store.decide_gesture("gst-1", "rejected", "olga", 6.0)
        assert not store.decide_gesture("gst-2", "rejected", "olga", 6.0)
        assert not store.decide_gesture("nope", "rejected", "olga", 6.0)
        store.commit()
        record = store.get_gesture("gst-1")
        assert record is not None
        assert (record.status, record.decided_by, record.decided_at) == ("approved", "olga", 5.0)
        assert record.gesture.status == "proposed"  # as raised
        assert store.get_gesture("nope") is None

    def test_audit_trail(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.add_audit(1.0, "ann", "claim", customer_id="C1", task_id="tsk-1")
        store.add_audit(2.0, "olga", "approve", customer_id="C1", gesture_id="gst-1", details={"amount": 10})
        store.add_audit(3.0, "bob", "claim", customer_id="C2", task_id="tsk-2")
        store.commit()
        assert [(a.actor, a.action) for a in store.audit()] == [("ann", "claim"), ("olga", "approve"), ("bob", "claim")]
        entries = store.audit(customer_id="C1")
        assert [a.seq for a in entries] == sorted(a.seq for a in entries)
        assert entries[1].details == {"amount": 10}
        assert entries[1].gesture_id == "gst-1"
        assert [a.actor for a in store.audit(task_id="tsk-2")] == ["bob"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_task_row_is_in_the_transaction_of_its_effect(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = _open(kind, request, tmp_path)
    store.put_effect(make_task("tsk-1"))
    store.put_effect(make_gesture("gst-1"))
    store.rollback()
    assert store.get_task("tsk-1") is None
    assert store.get_gesture("gst-1") is None
    assert store.list_tasks(TaskQuery()) == ([], 0)
    store.close()


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if kind == "sqlite":
        return SqliteStore(tmp_path / "r.db")
    return PostgresStore(request.getfixturevalue("postgres_database"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_parallel_claims_exactly_one_wins(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Each agent on a connection of its own, all at once (as the API's requests do)."""
    first = _open(kind, request, tmp_path)
    first.put_effect(make_task("tsk-1"))
    first.commit()
    agents = 8
    stores = [_open(kind, request, tmp_path) for _ in range(agents)] if kind == "postgres" else []
    barrier = threading.Barrier(agents)
    won: list[str] = []
    failures: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            # SQLite connections belong to the thread that opens them.
            store = stores[n] if stores else _open(kind, request, tmp_path)
            barrier.wait(timeout=30)
            if store.claim_task("tsk-1", f"agent-{n}", float(n)):
                won.append(f"agent-{n}")
            store.commit()
            if not stores:
                store.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(won) == 1
    record = first.get_task("tsk-1")
    assert record is not None and record.claimed_by == won[0]
    first.close()
    for store in stores:
        store.close()


def test_sqlite_migration_fills_tasks_from_existing_effects(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    effects = (make_task("tsk-1", due_at="2026-11-02T10:00:00.250Z"), make_gesture("gst-1"))
    insert = "INSERT INTO effects (id, kind, customer_id, body) VALUES (?, ?, ?, ?)"
    sqlite_at(path, 3, *((insert, (e.id, e.kind, e.customer_id, e.to_json())) for e in effects))
    store = SqliteStore(path)
    record = store.get_task("tsk-1")
    assert record is not None
    assert record.status == "open"
    assert record.due_ts == pytest.approx(parse_time("2026-11-02T10:00:00.250Z"), abs=0.01)
    gesture = store.get_gesture("gst-1")
    assert gesture is not None and gesture.status == "proposed"
    store.close()


def test_postgres_migration_fills_tasks_from_existing_effects(postgres_database: str) -> None:
    effects = (make_task("tsk-1", due_at="2026-11-02T10:00:00.250Z"), make_gesture("gst-1"))
    insert = "INSERT INTO effects (id, kind, customer_id, body) VALUES (%s, %s, %s, %s)"
    postgres_at(postgres_database, 2, *((insert, (e.id, e.kind, e.customer_id, e.to_json())) for e in effects))
    store = PostgresStore(postgres_database)
    record = store.get_task("tsk-1")
    assert record is not None
    assert record.due_ts == pytest.approx(parse_time("2026-11-02T10:00:00.250Z"), abs=0.001)
    gesture = store.get_gesture("gst-1")
    assert gesture is not None and gesture.status == "proposed"
    store.close()


def test_sqlite_migration_keeps_the_ledger_and_dates_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_at(path, 4, ("INSERT INTO ledger VALUES ('e1')", ()))
    store = SqliteStore(path)
    assert store.add_event("e1", 0.0) is False  # still recognised
    assert store.prune_ledger(time.time() - 3600) == 0  # dated as of the migration: kept for the retention
    assert store.prune_ledger(time.time() + 3600) == 1
    store.close()


def test_postgres_migration_keeps_the_ledger_and_dates_it(postgres_database: str) -> None:
    postgres_at(postgres_database, 3, ("INSERT INTO ledger VALUES ('e1')", ()))
    store = PostgresStore(postgres_database)
    assert store.add_event("e1", 0.0) is False
    assert store.prune_ledger(time.time() - 3600) == 0
    assert store.prune_ledger(time.time() + 3600) == 1
    store.close()
