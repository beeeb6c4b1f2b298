"""Offset commits: asynchronous, one in flight, sent again when refused, synchronous on closing."""

from __future__ import annotations

from recovery.consumer import ServiceStats, TopicPartition
from recovery.consumer.offsets import Offsets
from recovery.exceptions import BrokerError
from tests.consumer.memory import MemoryBroker, MemoryTransport

A, B = TopicPartition("events", 0), TopicPartition("events", 1)


def transport() -> MemoryTransport:
    return MemoryTransport(MemoryBroker(partitions=2), "events")


def test_stored_offsets_are_committed_and_the_latest_of_each_partition_wins() -> None:
    t, offsets = transport(), Offsets(ServiceStats())
    offsets.stored({A: 5})
    offsets.stored({A: 9, B: 2})
    offsets.send(t, {A, B})
    assert t.commits == [{A: 9, B: 2}]


def test_one_commit_in_flight_at_a_time_and_what_came_meanwhile_goes_next() -> None:
    t, offsets = transport(), Offsets(ServiceStats())
    t.hold_commits = True
    offsets.stored({A: 5})
    offsets.send(t, {A})
    offsets.stored({A: 7})
    offsets.send(t, {A})  # still in flight: nothing sent
    assert len(t.held) == 1
    t.release()
    t.hold_commits = False
    offsets.send(t, {A})
    assert t.commits == [{A: 5}, {A: 7}]


def test_a_refused_commit_is_sent_again_unless_newer_offsets_replaced_it() -> None:
    t, stats = transport(), ServiceStats()
    offsets = Offsets(stats)
    t.fail("commit_async", BrokerError("refused"))
    offsets.stored({A: 5, B: 3})
    offsets.send(t, {A, B})
    offsets.stored({A: 8})
    offsets.send(t, {A, B})
    assert t.commits == [{A: 8, B: 3}]
    assert stats.commit_failures == 1


def test_a_refused_commit_of_a_partition_no_longer_ours_is_not_sent_again() -> None:
    t, offsets = transport(), Offsets(ServiceStats())
    t.fail("commit_async", BrokerError("refused"))
    offsets.stored({A: 5, B: 3})
    offsets.send(t, {A, B})
    offsets.send(t, {A})
    assert t.commits == [{A: 5}]


def test_a_commit_that_raises_is_kept_for_the_next_send() -> None:
    t, stats = transport(), ServiceStats()
    offsets = Offsets(stats)
    t.refuse("commit_async", BrokerError("no coordinator"))
    offsets.stored({A: 5})
    offsets.send(t, {A})
    assert stats.commit_failures == 1
    offsets.send(t, {A})
    assert t.commits == [{A: 5}]


def test_commit_now_commits_synchronously_only_the_partitions_still_owned() -> None:
    t, offsets = transport(), Offsets(ServiceStats())
    offsets.stored({A: 5, B: 3})
    offsets.commit_now(t, {B})
    assert t.commits == [{B: 3}]
    offsets.commit_now(t, {A, B})
    assert t.commits == [{B: 3}]  # nothing left to commit


def test_forget_drops_what_was_not_committed() -> None:
    t, offsets = transport(), Offsets(ServiceStats())
    offsets.stored({A: 5})
    offsets.forget()
    offsets.send(t, {A})
    offsets.commit_now(t, {A})
    assert t.commits == []
