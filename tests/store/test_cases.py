"""Cases, snoozes and muted effects on every store: kept across a restart (a new store on the same data), a task
joining a case an agent holds goes to that agent, a lost customer's tasks cancelled once."""

from __future__ import annotations

from recovery.store import MemoryStore
from recovery.store.records import CaseRecord, Snooze
from tests.store.test_desk import make_gesture, make_task
from tests.store.test_stores import StoreFactory

T = 1_793_600_000.0


def test_an_open_case_is_kept_and_a_closed_one_is_not_open(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.open_case("C1") is None
    store.put_case(CaseRecord("case-1", "C1", T, {"tsk-1": "p"}))
    store.put_case(CaseRecord("case-2", "C2", T, {"tsk-2": "p"}))
    store.commit()
    case = store.open_case("C1")
    assert case == CaseRecord("case-1", "C1", T, {"tsk-1": "p"})
    case.open_tasks["tsk-3"] = "q"  # joined: kept as it is now
    store.put_case(case)
    store.commit()
    assert store.open_case("C1") == CaseRecord("case-1", "C1", T, {"tsk-1": "p", "tsk-3": "q"})
    store.put_case(CaseRecord("case-1", "C1", T, {}, T + 60, "done"))
    store.commit()
    assert store.open_case("C1") is None
    assert store.open_case("C2") is not None


def test_cases_and_snoozes_survive_a_restart_and_a_preload(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.put_case(CaseRecord("case-1", "C1", T, {"tsk-1": "p"}))
    store.put_snooze("C1", Snooze("p", T + 3600, "holiday", "ops:ann"))
    store.put_snooze("C1", Snooze("q", T + 60, "", ""))
    store.put_snooze("C1", Snooze("q", T + 120, "longer", "ops:bo"))  # the latest snooze of a playbook counts
    store.commit()
    again = store_factory()
    if hasattr(again, "preload_customers"):  # a batch's customers read at once: the same answers
        again.preload_customers(["C1", "C2"], T - 86400)
    case = again.open_case("C1")
    if not isinstance(again, MemoryStore):  # a memory store shares nothing with a new one
        assert case == CaseRecord("case-1", "C1", T, {"tsk-1": "p"})
        assert again.snoozes("C1") == {
            "p": Snooze("p", T + 3600, "holiday", "ops:ann"),
            "q": Snooze("q", T + 120, "longer", "ops:bo"),
        }
    assert again.open_case("C2") is None and again.snoozes("C2") == {}


def test_muted_effects_are_kept_once_with_what_muted_them(store_factory: StoreFactory) -> None:
    store = store_factory()
    task, gesture = make_task("tsk-1"), make_gesture("gst-1")
    store.put_muted(task, "outage-recovery", "inhibited", T)
    store.put_muted(task, "outage-recovery", "inhibited", T)  # the same cause again: kept once
    store.put_muted(gesture, "ops:ann", "snoozed", T + 10)
    store.commit()
    muted = store.muted(None, T, T + 11)
    assert [(m.effect, m.muted_by, m.reason, m.at) for m in muted] == [
        (task, "outage-recovery", "inhibited", T),
        (gesture, "ops:ann", "snoozed", T + 10),
    ]
    assert [m.effect.id for m in store.muted("C1", T + 1, T + 11)] == ["gst-1"]
    assert store.muted("C2", T, T + 11) == []
    assert len(store.muted(None, T, T + 11, limit=1)) == 1


def test_a_task_joining_a_claimed_case_goes_to_its_agent_marked_new(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.put_effect(make_task("tsk-1", case_id="case-1"))
    store.put_effect(make_task("tsk-9", case_id="case-9"))
    store.commit()
    assert store.claim_task("tsk-1", "ann", T)
    store.commit()
    store.put_effect(make_task("tsk-2", case_id="case-1"))
    store.put_effect(make_task("tsk-10", case_id="case-9"))  # nobody holds case-9
    store.commit()
    joined = store.get_task("tsk-2")
    assert joined is not None
    assert (joined.status, joined.claimed_by, joined.joined_claimed) == ("claimed", "ann", True)
    alone = store.get_task("tsk-10")
    assert alone is not None and (alone.status, alone.claimed_by, alone.joined_claimed) == ("open", None, False)
    first = store.get_task("tsk-1")
    assert first is not None and not first.joined_claimed


def test_cancel_tasks_cancels_those_not_done_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    for tid in ("tsk-1", "tsk-2", "tsk-3"):
        store.put_effect(make_task(tid, case_id="case-1"))
    store.commit()
    assert store.claim_task("tsk-3", "ann", T) and store.complete_task("tsk-3", "ann", T, "saved", "", "")
    store.commit()
    cancelled = store.cancel_tasks(["tsk-2", "tsk-1", "tsk-3"], T + 5, "customer-lost")
    store.commit()
    assert [(t.id, t.status) for t in cancelled] == [("tsk-1", "cancelled"), ("tsk-2", "cancelled")]
    record = store.get_task("tsk-1")
    assert record is not None
    assert (record.status, record.cancel_reason, record.completed_at) == ("cancelled", "customer-lost", T + 5)
    done = store.get_task("tsk-3")
    assert done is not None and done.status == "done" and done.cancel_reason is None
    assert store.cancel_tasks(["tsk-1", "tsk-2"], T + 6, "customer-lost") == []


def test_a_completion_event_closes_a_task_not_done_here(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.put_effect(make_task("tsk-1"))
    store.commit()
    store.complete_from_event("tsk-1", T, "saved", "fixed", "ann")
    store.complete_from_event("tsk-1", T + 1, "lost", "", "bo")  # done already: changes nothing
    store.complete_from_event("tsk-unknown", T, "saved", "", "ann")  # nothing to change
    store.commit()
    assert store.get_task("tsk-unknown") is None
    record = store.get_task("tsk-1")
    assert record is not None
    assert (record.status, record.outcome, record.reason_code, record.claimed_by, record.completed_at) == (
        "done",
        "saved",
        "fixed",
        "ann",
        T,
    )


def test_a_task_raised_and_completed_in_one_transaction_ends_done(store_factory: StoreFactory) -> None:
    """The completion is queued after the task's insert, whatever order the store sends its writes in."""
    store = store_factory()
    store.put_effect(make_task("tsk-1"))
    store.complete_from_event("tsk-1", T, "lost", "price", "ann")
    store.commit()
    record = store.get_task("tsk-1")
    assert record is not None and (record.status, record.outcome, record.reason_code) == ("done", "lost", "price")
