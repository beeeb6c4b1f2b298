"""The case desk on every store: tasks grouped by case, the queue's order (priority, then the customer's value, then
due time), its filters, claiming a case (one of two agents wins), releasing and completing it, the "new" mark of a
task that joined a held case, and the customers worth watching."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from recovery.events import Occurrence
from recovery.store import Store
from recovery.store.records import CaseQuery, DeskCase
from recovery.times import parse_time
from tests.store.test_desk import _open, make_task
from tests.store.test_stores import StoreFactory

T = parse_time("2026-11-02T09:00:00Z")


def ids(cases: list[DeskCase]) -> list[str]:
    return [c.case_id for c in cases]


def seed(store: Store) -> None:
    """Three customers: C1's case of two tasks, C2's case of one, and C3's task raised before cases."""
    store.put_profile("C1", T, {"tier": "gold", "annual_value": 1200})
    store.put_profile("C2", T, {"tier": "platinum", "annual_value": 9000.5})
    store.put_profile("C3", T, {"annual_value": "lots"})  # not a number: ranked as 0
    store.put_effect(make_task("a1", case_id="case-a", priority="P3", queue="billing", due_at="2026-11-02T12:00:00Z"))
    store.put_effect(make_task("a2", case_id="case-a", priority="P2", queue="save-desk", due_at="2026-11-03T12:00:00Z"))
    store.put_effect(make_task("b1", case_id="case-b", customer_id="C2", priority="P2", due_at="2026-11-04T12:00:00Z"))
    store.put_effect(make_task("old", customer_id="C3", priority="P2", due_at="2026-11-02T10:00:00Z"))
    store.commit()


class TestGrouping:
    def test_a_case_is_its_tasks(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        seed(store)
        case = store.get_case("case-a")
        assert case is not None
        assert (case.customer_id, [t.id for t in case.tasks]) == ("C1", ["a2", "a1"])  # most urgent first
        assert (case.priority, case.queue, case.status) == ("P2", "save-desk", "open")
        assert case.due_ts == parse_time("2026-11-02T12:00:00Z")  # the earliest, of the other task
        assert (case.annual_value, case.tier, case.holders, case.new) == (1200.0, "gold", (), ())
        assert case.opened_ts == parse_time("2026-11-02T09:00:00Z") and case.closed_ts is None
        legacy = store.get_case("old")  # raised without a case: a case of its own
        assert legacy is not None and [t.id for t in legacy.tasks] == ["old"] and legacy.annual_value == 0
        assert store.get_case("a1") is None and store.get_case("nope") is None

    def test_the_queue_by_priority_then_value_then_due(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        seed(store)
        cases, total = store.list_cases(CaseQuery())
        # P2 all three: C2 (9000.5) before C1 (1200) before C3 (0), whatever their due times.
        assert (ids(cases), total) == (["case-b", "case-a", "old"], 3)
        store.put_effect(make_task("c1", case_id="case-c", customer_id="C4", priority="P1"))
        store.put_effect(make_task("d1", case_id="case-d", customer_id="C5", due_at="2026-11-01T10:00:00Z"))
        store.commit()
        # Equal priority and value (no profile: 0): the earlier due first.
        assert ids(store.list_cases(CaseQuery())[0]) == ["case-c", "case-b", "case-a", "case-d", "old"]
        page, total = store.list_cases(CaseQuery(limit=2, offset=1))
        assert (ids(page), total) == (["case-b", "case-a"], 5)

    def test_filters(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        seed(store)
        assert ids(store.list_cases(CaseQuery(queue="save-desk"))[0]) == ["case-a"]
        assert ids(store.list_cases(CaseQuery(queue="billing"))[0]) == []  # the case's queue is its most urgent's
        assert ids(store.list_cases(CaseQuery(customer_id="C2"))[0]) == ["case-b"]
        assert ids(store.list_cases(CaseQuery(priority="P3"))[0]) == []
        assert store.claim_case("case-a", "ann", 1.0) == ["a1", "a2"]
        assert store.escalate_task("b1", "P1", "supervisors", 2.0)
        store.commit()
        assert ids(store.list_cases(CaseQuery(priority="P1"))[0]) == ["case-b"]
        assert ids(store.list_cases(CaseQuery(status="claimed"))[0]) == ["case-a"]
        assert ids(store.list_cases(CaseQuery(claimed_by="ann"))[0]) == ["case-a"]
        assert ids(store.list_cases(CaseQuery(claimed_by="bob"))[0]) == []
        assert ids(store.list_cases(CaseQuery(status="escalated"))[0]) == ["case-b"]
        assert ids(store.list_cases(CaseQuery(status="open"))[0]) == ["old"]
        assert store.complete_case("case-a", "ann", 3.0, "saved", "offer-accepted", "") == ["a1", "a2"]
        store.commit()
        assert ids(store.list_cases(CaseQuery())[0]) == ["case-b", "old"]
        closed, total = store.list_cases(CaseQuery(status="closed"))
        assert (ids(closed), total) == (["case-a"], 1)
        assert (closed[0].status, closed[0].priority, closed[0].closed_ts) == ("closed", "P2", 3.0)
        assert ids(store.list_cases(CaseQuery(status="all"))[0]) == ["case-b", "case-a", "old"]
        with pytest.raises(ValueError, match="case status 'finished'"):
            store.list_cases(CaseQuery(status="finished"))

    def test_a_done_task_no_longer_sets_the_case_priority(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        seed(store)
        assert store.claim_task("a2", "ann", 1.0)
        assert store.complete_task("a2", "ann", 2.0, "saved", "x", "")
        store.commit()
        case = store.get_case("case-a")
        assert case is not None
        assert (case.priority, case.queue, [t.id for t in case.active]) == ("P3", "billing", ["a1"])
        assert ids(store.list_cases(CaseQuery(queue="billing"))[0]) == ["case-a"]
        assert ids(store.list_cases(CaseQuery(priority="P3"))[0]) == ["case-a"]


class TestActions:
    def test_claim_release_complete(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        seed(store)
        assert store.claim_case("case-a", "ann", 10.0) == ["a1", "a2"]
        assert store.claim_case("case-a", "bob", 11.0) == []
        assert store.claim_case("case-a", "ann", 11.0) == []  # nothing left to claim
        assert store.claim_case("nope", "ann", 11.0) == []
        assert store.release_case("case-a", "bob", 12.0) == []  # not bob's
        assert store.complete_case("case-a", "bob", 12.0, "saved", "x", "") == []
        case = store.get_case("case-a")
        assert case is not None and (case.status, case.holders) == ("claimed", ("ann",))
        assert store.release_case("case-a", "ann", 13.0) == ["a1", "a2"]
        assert store.claim_case("case-a", "bob", 14.0) == ["a1", "a2"]
        assert store.release_case("case-a", None, 15.0) == ["a1", "a2"]  # ops releases anyone's
        assert store.escalate_task("a1", "P1", "supervisors", 16.0)
        assert store.claim_case("case-a", "bob", 17.0) == ["a1", "a2"]
        assert store.complete_case("case-a", "bob", 18.0, "lost", "price", "too dear") == ["a1", "a2"]
        store.commit()
        done = store.get_case("case-a")
        assert done is not None and done.status == "closed"
        assert {(t.status, t.outcome, t.reason_code, t.note, t.claimed_by) for t in done.tasks} == {
            ("done", "lost", "price", "too dear", "bob")
        }
        assert store.claim_case("case-a", "ann", 19.0) == []

    def test_another_agents_task_keeps_the_case_from_being_claimed(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        seed(store)
        assert store.claim_task("a1", "bob", 1.0)  # one task claimed by itself (the task routes)
        assert store.claim_case("case-a", "ann", 2.0) == []
        assert store.claim_case("case-a", "bob", 3.0) == ["a2"]  # bob takes the rest

    def test_a_task_joining_a_held_case_goes_to_its_agent_marked_new(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        seed(store)
        assert store.claim_case("case-a", "ann", 10.0) == ["a1", "a2"]
        store.commit()
        store.put_effect(make_task("a3", case_id="case-a", priority="P1"))
        store.commit()
        case = store.get_case("case-a")
        assert case is not None
        assert (case.new, case.priority, case.holders) == (("a3",), "P1", ("ann",))
        # Completing applies to what the agent has seen: the new task stays, still marked.
        assert store.complete_case("case-a", "ann", 11.0, "saved", "offer-accepted", "") == ["a1", "a2"]
        assert store.case_seen("case-a", "bob") == 0
        assert store.case_seen("case-a", "ann") == 1
        assert store.case_seen("case-a", "ann") == 0
        store.commit()
        case = store.get_case("case-a")
        assert case is not None and (case.new, case.status) == ((), "claimed")
        assert store.complete_case("case-a", "ann", 12.0, "saved", "offer-accepted", "") == ["a3"]
        store.commit()
        case = store.get_case("case-a")
        assert case is not None and case.status == "closed"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_parallel_case_claims_exactly_one_wins(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Each agent on a connection of its own, all at once (as the API's requests do)."""
    first = _open(kind, request, tmp_path)
    for n in range(3):
        first.put_effect(make_task(f"t{n}", case_id="case-1"))
    first.commit()
    agents = 8
    stores = [_open(kind, request, tmp_path) for _ in range(agents)] if kind == "postgres" else []
    barrier = threading.Barrier(agents)
    won: dict[str, list[str]] = {}
    failures: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            store = stores[n] if stores else _open(kind, request, tmp_path)
            barrier.wait(timeout=30)
            claimed = store.claim_case("case-1", f"agent-{n}", float(n))
            if claimed:
                won[f"agent-{n}"] = claimed
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
    assert list(won.values()) == [["t0", "t1", "t2"]]
    case = first.get_case("case-1")
    assert case is not None and case.holders == tuple(won)
    first.close()
    for store in stores:
        store.close()


def test_customers_to_watch(store_factory: StoreFactory) -> None:
    store = store_factory()
    seed(store)
    store.put_profile("C6", T, {"tier": "silver", "annual_value": 1200})
    store.put_profile("C7", T, {"tier": "platinum", "annual_value": 50_000})
    for occ in (
        Occurrence("e1", "service.call", T - 100, "C6", {"reason": "billing"}),
        Occurrence("e2", "payment.failed", T - 50, "C6", {}),
        Occurrence("e3", "service.call", T - 40 * 86400, "C7", {}),  # too long ago
        Occurrence("e4", "customer.updated", T, "C7", {}),  # not a type asked about
        Occurrence("e5", "service.call", T, "C8", {}),
    ):
        store.append_history(occ)
    store.complete_from_event("b1", T, "saved", "x", "ann")  # C2's case is closed
    store.commit()
    since = T - 30 * 86400
    watched = store.customers_to_watch(since, ["service.call", "payment.failed"], 10, 0)
    # C1 and C6 are worth 1200: C1 is gold, C6 silver. C3's value is not a number, C8 has no profile: 0 both.
    assert [w.customer_id for w in watched] == ["C1", "C6", "C3", "C8"]
    c1, c6 = watched[0], watched[1]
    assert [c.case_id for c in c1.cases] == ["case-a"] and c1.events == ()
    assert (c1.annual_value, c1.tier) == (1200.0, "gold")
    assert [e.id for e in c6.events] == ["e1", "e2"] and c6.cases == ()
    assert c6.events[0].data == {"reason": "billing"}
    page = store.customers_to_watch(since, ["service.call", "payment.failed"], 2, 1)
    assert [w.customer_id for w in page] == ["C6", "C3"]
    assert store.customers_to_watch(since, ["survey.response"], 10, 0)[0].customer_id == "C1"
