"""The escalation clock (injected), once per task across restarts, on every store; task.completed's shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from recovery import lifecycle
from recovery.events import Event
from recovery.lifecycle import Catalog, Escalator, escalate_overdue, raised_priority, task_completed_event
from recovery.metrics import Metrics
from recovery.playbooks.loader import load_playbook_text
from recovery.store import Store
from recovery.store.records import TaskQuery
from recovery.times import parse_time
from tests.api.test_ops import VALID
from tests.store import test_stores
from tests.store.test_desk import make_task
from tests.store.test_stores import StoreFactory

DUE = parse_time("2026-11-02T10:00:00Z")
store_factory = test_stores.store_factory  # memory, SQLite and PostgreSQL


@pytest.mark.parametrize(("before", "after"), [("P4", "P3"), ("P3", "P2"), ("P2", "P1"), ("P1", "P1")])
def test_priority_goes_one_step_up(before: str, after: str) -> None:
    assert raised_priority(before) == after


def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path, [load_playbook_text(VALID, "vip-callback.yaml")])


def seed(store: Store) -> None:
    store.put_effect(make_task("vip", playbook="vip-callback", queue="vip", priority="P3"))
    store.put_effect(make_task("plain", priority="P2"))
    store.put_effect(make_task("later", due_at="2026-11-03T10:00:00Z"))
    store.put_effect(make_task("done", due_at="2026-11-02T09:30:00Z"))
    store.claim_task("done", "ann", 1.0)
    store.complete_task("done", "ann", 2.0, "saved", "x", "")
    store.commit()


def test_escalation_once_surviving_restarts(store_factory: StoreFactory, tmp_path: Path) -> None:
    store = store_factory()
    seed(store)
    pbs = catalog(tmp_path)
    assert escalate_overdue(store, pbs, DUE - 1) == []  # not late yet
    assert escalate_overdue(store, pbs, DUE) == []  # due at DUE: late only after it
    escalated = escalate_overdue(store, pbs, DUE + 1)
    store.commit()
    assert sorted(r.id for r in escalated) == ["plain", "vip"]
    vip, plain = store.get_task("vip"), store.get_task("plain")
    assert vip is not None and plain is not None
    assert (vip.status, vip.priority, vip.queue, vip.escalated_at) == ("escalated", "P2", "supervisors", DUE + 1)
    assert (plain.status, plain.priority, plain.queue) == ("escalated", "P1", "q")  # no escalate_to: stays
    audit = [a for a in store.audit(task_id="vip") if a.action == "escalate"]
    assert [(a.actor, a.details) for a in audit] == [
        ("recovery", {"priority": ["P3", "P2"], "queue": ["vip", "supervisors"]})
    ]
    # A restart: a new connection (the memory store's data does not outlive it; the others' do).
    store.commit()  # the reads above began a transaction: end it (one writer at a time)
    again = store_factory()
    if again.get_task("vip") is not None:
        assert escalate_overdue(again, pbs, DUE + 3600) == []
        record = again.get_task("vip")
        assert record is not None and record.priority == "P2"  # not raised twice
        assert len([a for a in again.audit(task_id="vip") if a.action == "escalate"]) == 1
    later = escalate_overdue(again, pbs, parse_time("2026-11-04T00:00:00Z")) if again.get_task("later") else []
    assert [r.id for r in later] == ["later"] or again.get_task("later") is None


def test_the_escalator_runs_at_most_every_few_seconds_and_sets_gauges(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    store = store_factory()
    seed(store)
    registry = CollectorRegistry()
    escalator = Escalator(catalog(tmp_path), Metrics(registry), every_s=5.0)
    escalator(store, DUE - 2)
    assert registry.get_sample_value("recovery_tasks_open", {"queue": "q"}) == 2
    assert registry.get_sample_value("recovery_tasks_overdue", {"queue": "q"}) == 0
    escalator(store, DUE + 1)  # within 5 s of the last run: nothing yet
    record = store.get_task("plain")
    assert record is not None and record.escalated_at is None
    escalator(store, DUE + 10)
    record = store.get_task("plain")
    assert record is not None and record.escalated_at == DUE + 10
    assert registry.get_sample_value("recovery_tasks_open", {"queue": "supervisors"}) == 1
    assert registry.get_sample_value("recovery_tasks_overdue", {"queue": "q"}) == 1


def test_a_pile_of_overdue_tasks_is_escalated_a_batch_per_step(
    store_factory: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a backlog every task may be overdue at once: one step must not escalate them all (it held the loop,
    # and on SQLite the frontline's writes, for half a minute with a few thousand).
    monkeypatch.setattr(lifecycle, "ESCALATE_BATCH", 3)
    store = store_factory()
    for n in range(7):
        store.put_effect(make_task(f"t{n}"))
    store.commit()
    escalator = Escalator(catalog(tmp_path), every_s=5.0)
    done = []
    for step in range(4):  # within 5 s of each other: only a full batch makes the next step go on
        escalator(store, DUE + 1 + step * 0.1)
        store.commit()
        done.append(sum(1 for t in store.list_tasks(TaskQuery())[0] if t.escalated_at is not None))
    assert done == [3, 6, 7, 7]


def test_task_completed_is_a_valid_event(store_factory: StoreFactory) -> None:
    store = store_factory()
    seed(store)
    record = store.get_task("done")
    assert record is not None
    event = Event.from_dict(task_completed_event(record, "ann", DUE))
    assert (event.id, event.type, event.customer_id) == ("task-completed-done", "task.completed", "C1")
    assert event.data == {
        "task_id": "done",
        "playbook": "p",
        "queue": "q",
        "outcome": "saved",
        "reason_code": "x",
        "agent": "ann",
    }
