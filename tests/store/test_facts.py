"""The report's facts in every store (memory, SQLite, PostgreSQL): kept once per event id, counts added up per
transaction and written at commit, and the tasks and gestures of a period."""

from __future__ import annotations

import pytest

from recovery.engine import Engine
from recovery.events import Event
from recovery.store import MemoryStore, Store
from recovery.store.fact_records import (
    CALLS,
    COMPLAINTS,
    WEEK_S,
    FactSet,
    LifecycleFact,
    Outage,
    OutageFact,
    ProfileFact,
    WeeklyCount,
)
from recovery.times import format_time, parse_time
from tests.store.test_desk import make_gesture, make_task
from tests.store.test_stores import StoreFactory

W = parse_time("2026-11-02T00:00:00Z")  # a Monday
EVERYTHING = (float("inf"), float("-inf"))


def all_facts(factory: StoreFactory, written: Store) -> FactSet:
    """What another connection to the store reads (the same store for the memory one, which has no other)."""
    store = written if isinstance(written, MemoryStore) else factory()
    try:
        return store.report_facts(*EVERYTHING)
    finally:
        store.close()


def test_facts_are_kept_once_per_event_id(store_factory: StoreFactory) -> None:
    store = store_factory()
    joined = LifecycleFact("e1", "joined", "C1", W + 10, 1200.0, "smb", None, "web", None)
    lost = LifecycleFact("e2", "lost", "C1", W + 20, None, None, "price", None, None)
    profile = ProfileFact("e3", "C1", W, "gold", "smb", "north", 1000.0)
    started = OutageFact("O1", "started", W + 30, "north", "e4")
    for fact in (joined, lost, profile, started, joined, profile):
        store.put_fact(fact)
    store.put_fact(OutageFact("O1", "started", W + 99, "south", "e5"))  # the first start of an outage counts
    store.put_fact(OutageFact("O1", "resolved", W + 90, None, "e6"))
    store.commit()
    store.put_fact(LifecycleFact("e1", "joined", "C1", W + 10, 5.0))  # a repeat, even in another transaction
    store.commit()
    store.close()
    found = all_facts(store_factory, store)
    assert found.lifecycle == [joined, lost]
    assert found.profiles == [profile]
    assert found.outages == [Outage("O1", "north", W + 30, W + 90)]


def test_facts_are_read_by_time(store_factory: StoreFactory) -> None:
    store = store_factory()
    for n, ts in enumerate((W - 1, W, W + WEEK_S)):
        store.put_fact(LifecycleFact(f"l{n}", "joined", "C1", ts))
        store.put_fact(ProfileFact(f"p{n}", "C1", ts))
        store.put_fact(OutageFact(f"O{n}", "started", ts, None, f"o{n}"))
        store.add_count(CALLS, "router", ts - ts % 1)  # any number as a week: the store does not check
    store.commit()
    found = store.report_facts(W + WEEK_S, W)
    store.close()
    assert [f.event_id for f in found.lifecycle] == ["l0", "l1"]
    assert [p.event_id for p in found.profiles] == ["p0", "p1"]
    assert [o.outage_id for o in found.outages] == ["O1"]
    assert [c.week for c in found.counts] == [W]


def test_counts_add_up_within_and_across_transactions(store_factory: StoreFactory) -> None:
    store = store_factory()
    for key in ("billing", "billing", "network"):
        store.add_count(COMPLAINTS, key, W)
    store.add_count(CALLS, "router", W, 5)
    store.add_count(CALLS, "router", W + WEEK_S)
    store.commit()
    store.add_count(COMPLAINTS, "billing", W, 2)
    assert WeeklyCount(COMPLAINTS, "billing", W, 4) in store.report_facts(*EVERYTHING).counts  # its own writes
    store.commit()
    store.close()
    assert all_facts(store_factory, store).counts == [
        WeeklyCount(COMPLAINTS, "billing", W, 4),
        WeeklyCount(COMPLAINTS, "network", W, 1),
        WeeklyCount(CALLS, "router", W, 5),
        WeeklyCount(CALLS, "router", W + WEEK_S, 1),
    ]


def test_a_rolled_back_transaction_counts_nothing(store_factory: StoreFactory) -> None:
    store = store_factory()
    if isinstance(store, MemoryStore):
        pytest.skip("the memory store has no transactions")
    store.add_count(CALLS, "router", W)
    store.commit()
    store.add_count(CALLS, "router", W, 10)
    store.put_fact(LifecycleFact("e1", "lost", "C1", W))
    store.rollback()
    store.add_count(CALLS, "router", W)
    store.commit()
    store.close()
    found = all_facts(store_factory, store)
    assert (found.counts, found.lifecycle) == ([WeeklyCount(CALLS, "router", W, 2)], [])


def test_a_redelivered_event_never_counts_twice(store_factory: StoreFactory) -> None:
    """The engine over the store, as `serve` runs it: the same events again (a redelivery after a crash, in another
    transaction and through another connection) change no fact and no count."""
    events = [
        Event.from_dict({"id": f"e{n}", "type": kind, "occurred_at": format_time(W + n), "customer_id": "C1",
                         "data": data})
        for n, (kind, data) in enumerate(
            [("service.call", {"reason": "router"}), ("complaint.opened", {"complaint_id": "K1"}),
             ("customer.lost", {"reason": "price"}), ("customer.updated", {"tier": "gold"})]
        )
    ]  # fmt: skip
    store = store_factory()
    engine = Engine([], store)
    for event in events:
        engine.process(event)
    store.commit()
    again = store if isinstance(store, MemoryStore) else store_factory()
    other = Engine([], again)
    for event in events + events:
        other.process(event)
    again.commit()
    assert other.stats.duplicates == 8
    found = all_facts(store_factory, store)
    assert [(c.metric, c.key, c.n) for c in found.counts] == [(COMPLAINTS, "uncategorized", 1), (CALLS, "router", 1)]
    assert (len(found.lifecycle), len(found.profiles)) == (1, 1)


def test_many_keys_in_one_transaction_go_as_one_statement(store_factory: StoreFactory) -> None:
    store = store_factory()
    for n in range(300):
        store.add_count(CALLS, f"reason-{n % 100}", W + (n % 3) * WEEK_S)
    store.commit()
    store.close()
    counts = all_facts(store_factory, store).counts
    assert len(counts) == 300 and {c.n for c in counts} == {1}
    store = store if isinstance(store, MemoryStore) else store_factory()
    for n in range(300):
        store.add_count(CALLS, f"reason-{n % 100}", W + (n % 3) * WEEK_S, 2)
    store.commit()
    store.close()
    assert {c.n for c in all_facts(store_factory, store).counts} == {3}


def test_tasks_and_gestures_of_a_period(store_factory: StoreFactory) -> None:
    store = store_factory()
    for n, at in enumerate(("2026-11-01T23:59:59Z", "2026-11-02T00:00:00Z", "2026-11-08T12:00:00Z")):
        store.put_effect(make_task(f"t{n}", created_at=at))
        store.put_effect(make_gesture(f"g{n}").model_copy(update={"created_at": at}))
    store.put_effect(make_task("t9", created_at="2026-11-09T00:00:00Z"))
    store.commit()
    assert [t.id for t in store.tasks_created(W, W + WEEK_S)] == ["t1", "t2"]
    assert sorted(g.id for g in store.gestures_created(W, W + WEEK_S)) == ["g1", "g2"]
    store.close()
