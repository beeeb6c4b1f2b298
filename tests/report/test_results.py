"""Recovery results per playbook on a hand-computed case: tasks raised, completed, saved, lost, unreachable, save
rate, median time to completion, overdue; gesture spend by type; muted tasks."""

from __future__ import annotations

import pytest

from recovery.store import MemoryStore
from recovery.times import format_time
from tests.report.conftest import DAY, W, report
from tests.store.test_desk import make_gesture, make_task

H = 3600.0


def task(store: MemoryStore, task_id: str, created: float, due: float, playbook: str = "p") -> None:
    effect = make_task(task_id, playbook=playbook, created_at=format_time(created), due_at=format_time(due))
    store.put_effect(effect)


def close(store: MemoryStore, task_id: str, when: float, outcome: str) -> None:
    assert store.claim_task(task_id, "ann", when)
    assert store.complete_task(task_id, "ann", when, outcome, "x", "")


@pytest.fixture
def results() -> dict[str, dict[str, object]]:
    store = MemoryStore()
    d = W + DAY
    for n, (hours, outcome) in enumerate([(2, "saved"), (30, "lost"), (4, "unreachable"), (1, "not-needed")]):
        task(store, f"t{n}", d, d + 24 * H)  # due a day after it was raised: "lost" came late
        close(store, f"t{n}", d + hours * H, outcome)
    task(store, "late", d, d + 2 * DAY)  # open, due before the report's end: overdue
    task(store, "fresh", d, W + 30 * DAY)  # open, not due yet
    task(store, "gone", d, d + DAY)
    store.cancel_tasks(["gone"], d + H, "customer-lost")
    task(store, "before", W - 1, W + DAY)  # raised before the period: not counted
    task(store, "other", d, d + DAY, playbook="q")
    for gesture_id, status, amount in (("g1", "issued", 10), ("g2", "approved", 20), ("g3", "proposed", 30),
                                       ("g4", "rejected", 40)):  # fmt: skip
        gesture = make_gesture(gesture_id, status).model_copy(update={"amount": float(amount)})
        store.put_effect(gesture.model_copy(update={"created_at": format_time(d)}))
    store.put_muted(make_task("m1"), "snoozed", "ops snoozed p", d)
    store.put_muted(make_task("m2"), "inhibited by q", "case open", d)
    store.put_muted(make_gesture("m3"), "snoozed", "ops snoozed p", d)  # a gesture: not a muted task
    return report(store, 0, 7)["playbooks"]  # type: ignore[no-any-return]


def test_task_counts_and_outcomes(results: dict[str, dict[str, object]]) -> None:
    p = results["p"]
    assert {k: p[k] for k in ("tasks", "completed", "saved", "lost", "unreachable", "not_needed")} == {
        "tasks": 7,
        "completed": 4,
        "saved": 1,
        "lost": 1,
        "unreachable": 1,
        "not_needed": 1,
    }
    assert (p["cancelled"], p["cancelled_customer_lost"], p["open"]) == (1, 1, 2)
    assert p["save_rate"] == 1 / 3  # saved / (saved + lost + unreachable)
    assert p["median_completion_s"] == 3 * H  # of 1, 2, 4 and 30 hours
    assert p["overdue"] == 2  # "lost" done after its due time, "late" still open past it
    assert results["q"]["tasks"] == 1 and results["q"]["save_rate"] is None


def test_gesture_spend_and_muted_tasks(results: dict[str, dict[str, object]]) -> None:
    p = results["p"]
    assert p["gestures"] == [
        {"type": "service-credit", "currency": "USD", "count": 4, "spend": 30.0, "pending": 30.0, "rejected": 1}
    ]
    assert p["muted"] == {"tasks": 2, "by": {"snoozed": 1, "inhibited by q": 1}}
