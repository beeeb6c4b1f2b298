"""Each partition in its own event-time order, and the scope log's barrier across partitions, without a broker."""

from __future__ import annotations

import json

from recovery.consumer import TopicPartition
from recovery.consumer.evaluation import decode
from recovery.consumer.ordering import FETCH_WAIT_S, Barrier, Floor, Merge
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


C = TopicPartition("events", 2)
INF = float("inf")


def merge(batch: int = 100) -> Merge:
    found = Merge(batch)
    found.reset([A, B])
    return found


def never(_tp: TopicPartition) -> bool:
    return False


def open_floors(*tps: TopicPartition) -> dict[TopicPartition, Floor]:
    return dict.fromkeys(tps or (A, B), Floor(INF))


def test_a_floor_binds_a_record_by_the_partitions_read_to_their_end_before_the_broker_took_it() -> None:
    floor = Floor(T0 + 90, ((100.0, T0 + 40), (200.0, T0 + 20)))
    assert floor.at(99.0) == T0 + 90
    assert floor.at(100.0) == T0 + 40
    assert floor.at(250.0) == T0 + 20
    assert floor.at(INF) == T0 + 20
    assert Floor(T0 + 90).at(INF) == T0 + 90


class TestMerge:
    def test_each_partition_goes_in_its_offset_order_whatever_the_others(self) -> None:
        m = merge()
        m.add(A, [pending(A, 0, 30), pending(A, 1, 10)])  # a late event keeps its place
        m.add(B, [pending(B, 0, 20)])
        assert ids(m.take(open_floors())) == ["0-0", "0-1", "1-0"]

    def test_scope_events_to_apply_are_placed_by_event_time_before_records_of_the_same_time(self) -> None:
        m = merge()
        m.add(A, [pending(A, 0, 10), pending(A, 1, 50), pending(A, 2, 60)])
        m.add_scope(ScopeItem(A, 7, T0 + 50, Event.from_json(outage(7, 50))))
        assert ids(m.take(open_floors())) == ["0-0", "scope7", "0-1", "0-2"]

    def test_a_scope_event_waits_for_its_partitions_next_record_while_that_is_on_the_broker(self) -> None:
        # After an assignment or a failure the buffers are empty and the partitions are fetched again from their
        # committed offsets: a record older than a scope event to apply may still come.
        m = merge()
        m.add_scope(ScopeItem(A, 7, T0 + 50, Event.from_json(outage(7, 50))))
        assert m.take(open_floors(), lagging=lambda tp: True) == []
        m.add(A, [pending(A, 0, 10)])
        assert ids(m.take(open_floors(), lagging=lambda tp: True)) == ["0-0"]  # and the next may be older still
        m.add(A, [pending(A, 1, 60)])
        assert ids(m.take(open_floors(), lagging=lambda tp: True)) == ["scope7", "0-1"]
        m.add_scope(ScopeItem(A, 8, T0 + 70, Event.from_json(outage(8, 70))))
        assert ids(m.take(open_floors(), lagging=never)) == ["scope8"]  # read to its end: nothing older to come

    def test_a_batch_holds_at_most_batch_max_events(self) -> None:
        m = merge(batch=3)
        m.add(A, [pending(A, n, n) for n in range(5)])
        assert len(m.take(open_floors())) == 3
        assert len(m.take(open_floors())) == 2

    def test_a_partition_stops_before_its_floor(self) -> None:
        m = merge()
        m.add(A, [pending(A, 0, 10), pending(A, 1, 20), pending(A, 2, 30)])
        m.add(B, [pending(B, 0, 5)])
        assert ids(m.take({A: Floor(T0 + 20), B: Floor(INF)})) == [
            "0-0",
            "1-0",
        ]  # at the floor: a scope event may come first
        assert ids(m.take({A: Floor(T0 + 20.5), B: Floor(INF)})) == ["0-1"]

    def test_a_scope_event_of_its_own_may_come_at_the_floor_and_ends_its_partition_in_the_batch(self) -> None:
        m = merge()
        m.add(A, [pending(A, 0, 20, customer=None), pending(A, 1, 25)])
        m.add(B, [pending(B, 0, 5), pending(B, 1, 30)])
        assert m.watermark(A, lagging=True) == T0 + 20
        assert ids(m.take({A: Floor(T0 + 20), B: Floor(T0 + 20)})) == ["0-0", "1-0"]
        assert m.watermark(A, lagging=True) == T0 + 25  # its scope event is taken: the newest fetched now

    def test_the_watermark_is_the_first_scope_event_else_the_newest_record_else_infinity(self) -> None:
        m = merge()
        assert m.watermark(A, lagging=True) == -INF
        m.add(A, [pending(A, 0, 10), pending(A, 1, 20)])
        assert m.watermark(A, lagging=True) == T0 + 20
        assert m.watermark(A, lagging=False) == INF
        m.processed(B, T0 + 5)
        assert m.watermark(B, lagging=True) == T0 + 5

    def test_a_late_scope_event_marks_its_partition_no_earlier_than_the_records_fetched_before_it(self) -> None:
        m = merge()
        m.add(A, [pending(A, 0, 50), pending(A, 1, 10, customer=None), pending(A, 2, 70, customer=None)])
        assert m.watermark(A, lagging=True) == T0 + 50  # the outage at 10 comes after the call at 50: it is late
        m.take({A: Floor(T0 + 60), B: Floor(INF)})
        assert m.watermark(A, lagging=True) == T0 + 70

    def test_a_late_record_fetched_last_does_not_move_the_watermark_back(self) -> None:
        m = merge()
        m.add(A, [pending(A, 0, 50)])
        m.add(A, [pending(A, 1, 10)])
        assert m.watermark(A, lagging=True) == T0 + 50
        m.take(open_floors())
        m.processed(A, T0 + 50)  # as the loop reports a batch
        m.reset([A, B])  # fetched again from the committed offsets: what was processed still counts
        assert m.watermark(A, lagging=True) == T0 + 50


class TestBarrier:
    def barrier(self, store: MemoryStore, assigned: set[TopicPartition], partitions: int = 3) -> tuple[Barrier, Clock]:
        clock = Clock()
        m = Merge(100)
        m.reset(assigned)
        barrier = Barrier(store, "events", m, barrier_wait_s=30.0, monotonic=clock)
        barrier.load(frozenset(assigned), partitions)
        return barrier, clock

    def test_load_gives_each_partition_the_logged_scope_events_it_has_not_applied(self) -> None:
        store = MemoryStore()
        first = store.scope_log_add(T0 + 10, outage(1, 10))
        second = store.scope_log_add(T0 + 20, outage(2, 20))
        store.mark_scope_applied("events/0", first)
        barrier, _ = self.barrier(store, {A, B}, 2)
        assert [item.seq for item in barrier.merge.scopes[A]] == [second]
        assert [item.seq for item in barrier.merge.scopes[B]] == [first, second]
        assert barrier.known_seqs == {first, second}

    def test_a_partition_runs_up_to_the_lowest_watermark_of_the_others_own_and_foreign(self) -> None:
        store = MemoryStore()
        barrier, _ = self.barrier(store, {A, B})
        store.set_watermark("events/2", T0 + 40)
        barrier.merge.add(A, [pending(A, 0, 10), pending(A, 1, 30, customer=None)])
        barrier.merge.add(B, [pending(B, 0, 20)])
        barrier.update(lambda tp: True, -INF)
        assert store.watermarks("events/")["events/0"].ts == T0 + 30  # A's first scope event
        floors = barrier.floors(lambda tp: True)
        assert floors == {
            A: Floor(T0 + 20),
            B: Floor(T0 + 30),
        }  # A: B's newest fetched; B: A's scope event; C (foreign): 40

    def test_an_owned_partition_read_to_its_end_publishes_its_stream_time_and_since_when(self) -> None:
        store = MemoryStore()
        barrier, _ = self.barrier(store, {A})
        barrier.merge.add(A, [pending(A, 0, 10)])
        barrier.reading(1000.0)
        barrier.update(never, -INF)
        assert store.watermarks("events/")["events/0"] == (T0 + 10, -INF)  # no step read before: since no time
        barrier.reading(1002.0)
        barrier.update(never, -INF)
        # Its end, as the client knows it, came from a fetch sent at the step before's read or later.
        assert store.watermarks("events/")["events/0"] == (T0 + 10, 1000.0 - FETCH_WAIT_S)
        barrier.update(lambda tp: True, -INF)
        assert store.watermarks("events/")["events/0"] == (T0 + 10, -INF)

    def test_scope_events_other_instances_log_are_picked_up(self) -> None:
        store = MemoryStore()
        barrier, _ = self.barrier(store, {A}, 2)
        seq = store.scope_log_add(T0 + 10, outage(1, 10))
        barrier.update(never, -INF)
        assert [item.seq for item in barrier.merge.scopes[A]] == [seq]
        barrier.update(never, -INF)
        assert len(barrier.merge.scopes[A]) == 1  # known: not added twice

    def test_a_foreign_partition_stuck_for_barrier_wait_s_is_gone_on_without_until_it_catches_up(self) -> None:
        store = MemoryStore()
        barrier, clock = self.barrier(store, {A}, 2)
        barrier.merge.add(A, [pending(A, n, 10 * n) for n in range(1, 8)])
        store.set_watermark("events/1", T0 + 15)
        barrier.update(never, -INF)
        assert barrier.floors(never) == {A: Floor(T0 + 15)}
        assert ids(barrier.merge.take(barrier.floors(never))) == ["0-1"]
        assert barrier.floors(never) == {A: Floor(T0 + 15)}  # held from now on
        assert barrier.held_since == 0.0
        clock.now = 29.0
        assert barrier.floors(never) == {A: Floor(T0 + 15)}
        clock.now = 30.0
        assert barrier.floors(never) == {A: Floor(INF)}  # waited long enough: gone on without it
        assert ids(barrier.merge.take(barrier.floors(never))) == ["0-2", "0-3", "0-4", "0-5", "0-6", "0-7"]
        # It does not hold this instance back again batch after batch; once past where A is, it counts again.
        store.set_watermark("events/1", T0 + 60)
        barrier.update(never, -INF)
        barrier.merge.add(A, [pending(A, 8, 80)])
        assert barrier.floors(never) == {A: Floor(INF)}
        store.set_watermark("events/1", T0 + 90)
        barrier.update(never, -INF)
        assert barrier.floors(never) == {A: Floor(T0 + 90)}

    def test_a_foreign_partition_read_to_its_end_holds_back_what_the_broker_took_after_its_owner_saw_that_end(
        self,
    ) -> None:
        # The other instance found partition 1 read to its end at 1000 s (wall time), at stream time T0 + 40, and
        # then said nothing more (paused): a scope event may have reached partition 1 after that.
        store = MemoryStore()
        barrier, _ = self.barrier(store, {A}, 2)
        store.set_watermark("events/1", T0 + 40, ended_at=1000.0)
        barrier.merge.add(
            A,
            [
                pending(A, 0, 50, timestamp=999_000),  # on the broker before: partition 1's end held for it
                pending(A, 1, 30, timestamp=1_000_500),  # after, but older than partition 1's stream time
                pending(A, 2, 60, timestamp=1_000_500),  # after, and newer: an outage of partition 1 may precede it
            ],
        )
        barrier.update(never, -INF)
        assert barrier.floors(never) == {A: Floor(INF, ((1000.0, T0 + 40),))}
        assert ids(barrier.merge.take(barrier.floors(never))) == ["0-0", "0-1"]
        assert barrier.merge.take(barrier.floors(never)) == []
        assert barrier.held_since == 0.0  # held by another instance's partition: timed as any other
        store.set_watermark("events/1", T0 + 40, ended_at=1001.0)  # its owner saw the end again, later
        barrier.update(never, -INF)
        assert ids(barrier.merge.take(barrier.floors(never))) == ["0-2"]

    def test_a_paused_owners_partition_read_to_its_end_is_gone_on_without_after_barrier_wait_s(self) -> None:
        store = MemoryStore()
        barrier, clock = self.barrier(store, {A}, 2)
        store.set_watermark("events/1", T0 + 40, ended_at=1000.0)
        barrier.merge.add(A, [pending(A, 0, 60, timestamp=1_000_500)])
        barrier.update(never, -INF)
        assert barrier.merge.take(barrier.floors(never)) == []
        clock.now = 30.0
        assert ids(barrier.merge.take(barrier.floors(never))) == ["0-0"]
        assert barrier.gone_without == {"events/1"}

    def test_a_scope_event_to_apply_waits_for_the_stream_time_of_a_foreign_partition_read_to_its_end(self) -> None:
        # When the broker took it is not known here: any time, so partition 1's stream time bounds it.
        store = MemoryStore()
        barrier, _ = self.barrier(store, {A}, 2)
        store.set_watermark("events/1", T0 + 40, ended_at=1000.0)
        barrier.merge.add_scope(ScopeItem(A, 7, T0 + 30, Event.from_json(outage(7, 30))))
        barrier.merge.add_scope(ScopeItem(A, 8, T0 + 50, Event.from_json(outage(8, 50))))
        barrier.update(never, -INF)
        assert ids(barrier.merge.take(barrier.floors(never))) == ["scope7"]

    def test_a_foreign_watermark_that_moves_is_waited_for_without_giving_up(self) -> None:
        store = MemoryStore()
        barrier, clock = self.barrier(store, {A}, 2)
        barrier.merge.add(A, [pending(A, 0, 100)])
        for second in range(0, 100, 10):
            store.set_watermark("events/1", T0 + second)  # slower, but moving
            barrier.update(never, -INF)
            clock.now = float(second)
            assert barrier.floors(never) == {A: Floor(T0 + second)}


def test_partitions_whose_late_scope_events_wait_behind_newer_records_go_on() -> None:
    # A stream delivered again after its end (its outages late): each partition's next record is newer than the
    # late outage behind it. Each used to hold the other back at its outage's time, and neither went on, for good.
    store = MemoryStore()
    m = Merge(100)
    m.reset([A, B])
    barrier = Barrier(store, "events", m, barrier_wait_s=30.0, monotonic=Clock())
    barrier.load(frozenset({A, B}), 2)
    m.add(A, [pending(A, 0, 50), pending(A, 1, 10, customer=None), pending(A, 2, 15)])
    m.add(B, [pending(B, 0, 60), pending(B, 1, 20, customer=None), pending(B, 2, 25)])
    taken: list[str] = []
    for _ in range(10):
        taken += ids(m.take(barrier.floors(never)))
    assert sorted(taken) == ["0-0", "0-1", "0-2", "1-0", "1-1", "1-2"]
