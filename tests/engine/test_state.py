"""Customers: the bounded cache of customer state, rebuilt from the store, and the history it keeps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recovery.engine.state import NO_COOLDOWNS, NO_HISTORY, NO_SNOOZES, Customers, split_by_type
from recovery.engine.stats import EngineStats
from recovery.events import Occurrence
from recovery.store import MemoryStore
from recovery.store.records import CaseRecord, Snooze

DAY = 86400.0
HORIZON_S = 7 * DAY

CustomersFactory = Callable[..., Customers]


@pytest.fixture
def customers_factory() -> CustomersFactory:
    """`customers_factory(store=..., max_customers=3, keep_history=True)`: a cache with a 7-day horizon."""

    def make(store: MemoryStore | None = None, max_customers: int = 3, keep_history: bool = True) -> Customers:
        return Customers(store or MemoryStore(), max_customers, HORIZON_S, keep_history, EngineStats())

    return make


def occ(id: str, ts: float, type: str = "service.call", cid: str = "C1") -> Occurrence:
    return Occurrence(id, type, ts, cid, {})


class TestCache:
    def test_the_least_recently_used_is_evicted(self, customers_factory: CustomersFactory) -> None:
        customers = customers_factory(max_customers=2)
        customers.get("A", 0.0)
        customers.get("B", 0.0)
        customers.get("A", 0.0)  # A is now the most recently used
        customers.get("C", 0.0)
        assert list(customers.cache) == ["A", "C"]
        assert (customers.stats.rebuilds, customers.stats.evictions) == (3, 1)
        assert customers.uncached(["A", "B", "C", "B"]) == ["B"]
        assert len(customers) == 2

    def test_the_customers_asked_about_become_the_most_recently_used(self, customers_factory: CustomersFactory) -> None:
        customers = customers_factory(max_customers=2)
        customers.get("A", 0.0)
        customers.get("B", 0.0)
        assert customers.uncached(["A", "C"]) == ["C"]  # A is about to be read: rebuilding C evicts B, not A
        customers.get("C", 0.0)
        assert list(customers.cache) == ["A", "C"]

    def test_at_least_one_customer_is_held(self, customers_factory: CustomersFactory) -> None:
        customers = customers_factory(max_customers=0)
        state = customers.get("A", 0.0)
        assert customers.get("A", 0.0) is state
        assert customers.stats.rebuilds == 1

    def test_a_rebuild_reads_the_store(self, customers_factory: CustomersFactory) -> None:
        store = MemoryStore()
        store.put_profile("A", 5.0, {"tier": "gold"})
        store.set_cooldown("A", "p", 7.0)
        for o in (occ("old", 0.0, cid="A"), occ("c1", 9 * DAY, cid="A"), occ("k1", 9.5 * DAY, "complaint.opened", "A")):
            store.append_history(o)
        state = customers_factory(store=store).get("A", 10 * DAY)
        assert (state.profile, state.profile_ts, state.cooldowns) == ({"tier": "gold"}, 5.0, {"p": 7.0})
        assert {t: [o.id for o in h] for t, h in state.history.items()} == {
            "service.call": ["c1"],
            "complaint.opened": ["k1"],
        }

    def test_a_rebuild_reads_the_open_case_and_the_snoozes_with_the_rest(
        self, customers_factory: CustomersFactory
    ) -> None:
        store = MemoryStore()
        store.put_case(CaseRecord("case-1", "A", 5.0, {"tsk-1": "p"}))
        store.put_snooze("A", Snooze("q", 99.0, "asked", "ops"))
        state = customers_factory(store=store).get("A", 10.0)
        assert state.case is not None and (state.case.case_id, state.case.open_tasks) == ("case-1", {"tsk-1": "p"})
        assert list(state.snoozes) == ["q"]

    def test_a_new_customer_shares_the_empty_history_and_cooldowns(self, customers_factory: CustomersFactory) -> None:
        state = customers_factory().get("new", 0.0)
        assert (state.profile, state.profile_ts) == ({}, float("-inf"))
        assert state.history is NO_HISTORY and state.cooldowns is NO_COOLDOWNS and state.snoozes is NO_SNOOZES
        assert state.case is None

    def test_without_history_types_none_is_read(self, customers_factory: CustomersFactory) -> None:
        store = MemoryStore()
        store.append_history(occ("c1", 0.0, cid="A"))
        assert customers_factory(store=store, keep_history=False).get("A", 0.0).history is NO_HISTORY


class TestRemember:
    def test_history_stays_in_time_order_and_reaches_the_store(self, customers_factory: CustomersFactory) -> None:
        store = MemoryStore()
        customers = customers_factory(store=store)
        state = customers.get("C1", 0.0)
        for o in (occ("b", 2.0), occ("c", 3.0), occ("a", 1.0), occ("b2", 2.0)):
            customers.remember(state, o, 3.0)
        assert [o.id for o in state.history["service.call"]] == ["a", "b", "b2", "c"]
        assert NO_HISTORY == {}  # the shared empty history was replaced, not written to
        assert sorted(o.id for o in store.history("C1", 0.0)) == ["a", "b", "b2", "c"]

    def test_what_is_older_than_the_horizon_is_dropped(self, customers_factory: CustomersFactory) -> None:
        customers = customers_factory()
        state = customers.get("C1", 0.0)
        customers.remember(state, occ("old", 0.0), 0.0)
        customers.remember(state, occ("new", 8 * DAY), 8 * DAY)
        assert [o.id for o in state.history["service.call"]] == ["new"]

    def test_a_late_occurrence_keeps_what_it_may_pair_with(self, customers_factory: CustomersFactory) -> None:
        customers = customers_factory()
        state = customers.get("C1", 0.0)
        customers.remember(state, occ("first", 0.0), 0.0)
        # The clock is 8 days on, but this one is dated 6 days after the first: the first stays.
        customers.remember(state, occ("late", 6 * DAY), 8 * DAY)
        assert [o.id for o in state.history["service.call"]] == ["first", "late"]


def test_split_by_type_keeps_the_order() -> None:
    found = split_by_type([occ("a", 1.0), occ("k", 2.0, "complaint.opened"), occ("b", 3.0)])
    assert {t: [o.id for o in h] for t, h in found.items()} == {"service.call": ["a", "b"], "complaint.opened": ["k"]}
