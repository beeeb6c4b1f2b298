"""The event-time merge and the scope log's barrier, without a broker."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from recovery.consumer import TopicPartition
from recovery.consumer.evaluation import decode
from recovery.consumer.ordering import Barrier, Merge, MergeLimits
from recovery.consumer.records import Pending, ScopeItem
from recovery.events import Event
from recovery.store import MemoryStore
from recovery.times import format_time
from tests.conftest import T0
from tests.consumer.memory import Message

A, B = TopicPartition("events", 0), TopicPartition("events", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pending(tp: TopicPartition, offset: int, at: float, customer: str | None = "C1", timestamp: int = 0) -> Pending:
    raw = {"id": f"{tp.partition}-{offset}", "type": "service.call", "occurred_at": format_time(T0 + at), "data": {}}
    if customer is None:
        raw.update(type="outage.started", data={"outage_id": f"O{offset}", "region": "north"})
    else:
        raw["customer_id"] = customer
    return decode(Message(tp.topic, tp.partition, offset, timestamp, None, json.dumps(raw).encode()))


def outage(n: int, at: float) -> str:
    raw = {"id": f"o{n}", "type": "outage.started", "occurred_at": format_time(T0 + at),
           "data": {"outage_id": f"O{n}", "region": "north"}}  # fmt: skip
    return json.dumps(raw)


def ids(batch: list[Pending | ScopeItem]) -> list[str]:
    found = []
    for item in batch:
        if isinstance(item, ScopeItem):
            found.append(f"scope{item.seq}")
        else:
            found.append(item.event.id if item.event is not None else "invalid")
    return found


@pytest.fixture
def merge_factory() -> Callable[..., tuple[Merge, Clock]]:
    def make(batch: int = 100, merge_wait_s: float = 2.0, barrier_wait_s: float = 30.0) -> tuple[Merge, Clock]:
        clock = Clock()
        merge = Merge(MergeLimits(batch, merge_wait_s, barrier_wait_s), clock)
        merge.reset([A, B])
        return merge, clock

    return make


MergeFactory = Callable[..., tuple[Merge, Clock]]


def never(_tp: TopicPartition) -> bool:
    return False


class TestMerge:
    def test_partitions_are_merged_in_event_time_order(self, merge_factory: MergeFactory) -> None:
        merge, _ = merge_factory()
        merge.add(A, [pending(A, 0, 10), pending(A, 1, 30)])
        merge.add(B, [pending(B, 0, 20), pending(B, 1, 40)])
        assert ids(merge.take(never, set(), float("inf"))) == ["0-0", "1-0", "0-1", "1-1"]

    def test_ties_go_by_record_timestamp_then_partition(self, merge_factory: MergeFactory) -> None:
        merge, _ = merge_factory()
        merge.add(A, [pending(A, 0, 10, timestamp=5)])
        merge.add(B, [pending(B, 0, 10, timestamp=1), pending(B, 1, 10, timestamp=9)])
        assert ids(merge.take(never, set(), float("inf"))) == ["1-0", "0-0", "1-1"]

    def test_a_batch_holds_at_most_batch_max_events(self, merge_factory: MergeFactory) -> None:
        merge, _ = merge_factory(batch=3)
        merge.add(A, [pending(A, n, n) for n in range(5)])
        assert len(merge.take(never, set(), float("inf"))) == 3
        assert len(merge.take(never, set(), float("inf"))) == 2

    def test_a_lagging_partition_with_nothing_fetched_holds_the_others_for_merge_wait_s(
        self, merge_factory: MergeFactory
    ) -> None:
        merge, clock = merge_factory(merge_wait_s=2.0)
        merge.add(A, [pending(A, 0, 10)])
        lagging_b: Callable[[TopicPartition], bool] = lambda tp: tp == B  # noqa: E731
        assert merge.take(lagging_b, set(), float("inf")) == []
        clock.now = 1.9
        assert merge.take(lagging_b, set(), float("inf")) == []
        clock.now = 2.0
        assert ids(merge.take(lagging_b, set(), float("inf"))) == ["0-0"]

    def test_a_paused_partition_does_not_hold_the_others(self, merge_factory: MergeFactory) -> None:
        merge, _ = merge_factory()
        merge.add(A, [pending(A, 0, 10)])
        assert ids(merge.take(lambda tp: tp == B, {B}, float("inf"))) == ["0-0"]

    def test_the_batch_stops_where_a_lagging_partition_runs_out(self, merge_factory: MergeFactory) -> None:
        merge, _ = merge_factory()
        merge.add(A, [pending(A, 0, 10)])
        merge.add(B, [pending(B, 0, 20), pending(B, 1, 30)])
        # A may hold events older than B's next ones on the broker: fetch before going on.
        assert ids(merge.take(lambda tp: tp == A, set(), float("inf"))) == ["0-0"]

    def test_a_scope_event_ends_the_batch_and_its_applications_come_first_at_a_tie(
        self, merge_factory: MergeFactory
    ) -> None:
        merge, _ = merge_factory()
        merge.add(A, [pending(A, 0, 10, customer=None), pending(A, 1, 50)])
        assert merge.watermark(A, lagging=True) == T0 + 10
        assert ids(merge.take(never, set(), float("inf"))) == ["0-0"]
        merge.add_scope(ScopeItem(A, 7, T0 + 50, Event.from_json(outage(7, 50))))
        assert ids(merge.take(never, set(), float("inf"))) == ["scope7", "0-1"]

    def test_records_past_the_floor_wait_for_barrier_wait_s_then_go_on(self, merge_factory: MergeFactory) -> None:
        merge, clock = merge_factory(barrier_wait_s=30.0)
        merge.add(A, [pending(A, 0, 10), pending(A, 1, 100)])
        floor = T0 + 50
        assert ids(merge.take(never, set(), floor)) == ["0-0"]
        assert merge.barrier_since == 0.0
        clock.now = 29.0
        assert merge.take(never, set(), floor) == []
        clock.now = 30.0
        assert ids(merge.take(never, set(), floor)) == ["0-1"]
        assert merge.barrier_since is None

    def test_the_watermark_is_the_first_scope_event_else_the_newest_record_else_infinity(
        self, merge_factory: MergeFactory
    ) -> None:
        merge, _ = merge_factory()
        assert merge.watermark(A, lagging=True) == float("-inf")
        merge.add(A, [pending(A, 0, 10), pending(A, 1, 20)])
        assert merge.watermark(A, lagging=True) == T0 + 20
        assert merge.watermark(A, lagging=False) == float("inf")
        merge.processed(B, T0 + 5)
        assert merge.watermark(B, lagging=True) == T0 + 5


class TestBarrier:
    def test_load_gives_each_partition_the_logged_scope_events_it_has_not_applied(self) -> None:
        store = MemoryStore()
        first = store.scope_log_add(T0 + 10, outage(1, 10))
        second = store.scope_log_add(T0 + 20, outage(2, 20))
        store.mark_scope_applied("events/0", first)
        merge = Merge(MergeLimits(100, 0, 0), Clock())
        barrier = Barrier(store, "events", merge)
        barrier.load(frozenset({A, B}), 2)
        assert [item.seq for item in merge.scopes[A]] == [second]
        assert [item.seq for item in merge.scopes[B]] == [first, second]
        assert barrier.known_seqs == {first, second}

    def test_the_floor_is_the_lowest_watermark_of_the_partitions_owned_by_others(self) -> None:
        store = MemoryStore()
        merge = Merge(MergeLimits(100, 0, 0), Clock())
        merge.reset([A])
        barrier = Barrier(store, "events", merge)
        barrier.load(frozenset({A}), 3)
        store.set_watermark("events/1", T0 + 40)
        store.set_watermark("events/2", T0 + 30)
        barrier.update(never, float("-inf"))
        assert barrier.floor == T0 + 30
        assert store.watermarks("events/")["events/0"] == float("inf")  # caught up: never holds anyone back

    def test_scope_events_other_instances_log_are_picked_up(self) -> None:
        store = MemoryStore()
        merge = Merge(MergeLimits(100, 0, 0), Clock())
        barrier = Barrier(store, "events", merge)
        barrier.load(frozenset({A}), 2)
        seq = store.scope_log_add(T0 + 10, outage(1, 10))
        barrier.update(never, float("-inf"))
        assert [item.seq for item in merge.scopes[A]] == [seq]
        barrier.update(never, float("-inf"))
        assert len(merge.scopes[A]) == 1  # known: not added twice
