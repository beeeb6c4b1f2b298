"""The reader on its own, over the in-memory transport: records polled, decoded (the refused ones with their reason)
and buffered per partition; a full partition paused and resumed once drained; a rebalance dropping the poll's records
and a rewind reading again from the committed offsets; the partition holding the others back fetched again."""

from __future__ import annotations

import json
from typing import Any

import pytest

import recovery.consumer.reader as reader_module
from recovery.consumer import TopicPartition
from recovery.consumer.ordering import Floor, Merge
from recovery.consumer.reader import Reader
from recovery.exceptions import BrokerError
from recovery.times import format_time
from tests.consumer.memory import MemoryBroker, MemoryTransport

TOPIC = "events"
T0 = 1_790_000_000.0


def event(n: int, customer: str, at: float) -> dict[str, Any]:
    return {"id": f"e{n}", "type": "service.call", "occurred_at": format_time(at), "customer_id": customer, "data": {}}


def tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


def setup(events: list[dict[str, Any]], partitions: int = 3) -> tuple[MemoryBroker, MemoryTransport, Reader]:
    broker = MemoryBroker(partitions=partitions)
    broker.produce_events(TOPIC, events)
    transport = MemoryTransport(broker, TOPIC)
    return broker, transport, Reader(transport, Merge(batch_max_events=1_000))


def test_every_record_fetched_is_buffered_decoded_and_the_refused_ones_carry_their_reason() -> None:
    broker, transport, reader = setup([event(n, f"C{n % 7}", T0 + n) for n in range(60)])
    broker.produce(TOPIC, b"C1", b"not json")
    broker.produce(TOPIC, b"C1", json.dumps(event(99, "C1", T0 + 10_000)).encode())  # past the window
    reader.window = lambda: (T0 - 1, T0 + 3_600)
    read, rebalance = reader.read(100)
    assert rebalance is not None and rebalance.assigned == frozenset(tp(n) for n in range(3))
    reader.rewind(rebalance.assigned)  # what the service does with a new assignment
    read, rebalance = reader.read(100)
    assert (read, rebalance) == (62, None)
    pending = [p for tp_ in sorted(reader.assigned) for p in reader.merge.buffers[tp_]]
    assert sum(reader.merge.buffered(t) for t in reader.assigned) == 62
    errors = sorted(p.error or "" for p in pending if p.error)
    assert len(errors) == 2 and errors[0].startswith("future_event: event 'e99'") and "invalid event" in errors[1]
    assert all(p.event is not None and p.event.ts == p.ts for p in pending if p.error is None)
    assert not any(transport.lagging(t) for t in reader.assigned)


def test_a_full_partition_is_paused_and_resumed_once_drained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "PAUSE_ABOVE", 10)
    monkeypatch.setattr(reader_module, "RESUME_BELOW", 5)
    _, transport, reader = setup([event(n, "C1", T0 + n) for n in range(40)], partitions=1)
    transport.fetch = 15  # records per poll and partition
    _, rebalance = reader.read(100)
    assert rebalance is not None
    reader.rewind(rebalance.assigned)
    assert reader.read(100) == (15, None)  # over 10 buffered: paused, the next poll of the step fetches nothing
    assert reader.paused == {tp(0)} and transport.paused == {tp(0)}
    reader.resume_drained()
    assert reader.paused == {tp(0)}  # 15 buffered: not drained
    for _ in range(11):
        reader.merge.buffers[tp(0)].popleft()
    reader.resume_drained()
    assert reader.paused == set() and transport.paused == set()
    assert reader.read(100) == (15, None)


def test_a_rebalance_drops_the_polls_records_and_a_rewind_reads_from_the_committed_offsets() -> None:
    broker, transport, reader = setup([event(n, f"C{n % 5}", T0 + n) for n in range(30)])
    _, rebalance = reader.read(100)
    assert rebalance is not None
    reader.rewind(rebalance.assigned)
    assert reader.read(100) == (30, None)
    broker.committed[tp(0)] = 2  # what an earlier owner committed
    transport.assign([0])  # partitions 1 and 2 go to another member
    read, rebalance = reader.read(100)
    assert read == 0 and rebalance is not None and rebalance.assigned == frozenset({tp(0)})
    reader.revoked()
    assert reader.assigned == frozenset()
    reader.rewind(rebalance.assigned)
    assert reader.assigned == frozenset({tp(0)}) and transport.positions[tp(0)] == 2
    assert reader.merge.buffered(tp(0)) == 0  # forgotten, and fetched again from offset 2
    read, _ = reader.read(100)
    assert read == len(broker.log(TOPIC)[0]) - 2 == reader.merge.buffered(tp(0))


def test_caught_up_once_every_partition_is_read_to_its_end_and_processed() -> None:
    _, _, reader = setup([event(n, f"C{n % 5}", T0 + n) for n in range(12)])
    assert not reader.caught_up()  # nothing assigned yet
    _, rebalance = reader.read(100)
    assert rebalance is not None
    reader.rewind(rebalance.assigned)
    assert not reader.caught_up()  # assigned, nothing fetched
    reader.read(100)
    assert not reader.caught_up()  # fetched, still buffered
    for t in reader.assigned:
        reader.merge.buffers[t].clear()
    assert reader.caught_up()


def test_the_paused_partition_that_holds_the_others_back_fetches_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partition 0 is paused with a late record last; partition 1 waits for it: only a fetch moves partition 0's
    watermark, so it is resumed however full its buffer. A paused partition that holds nothing back stays paused."""
    monkeypatch.setattr(reader_module, "PAUSE_ABOVE", 2)
    events = [event(1, "A", T0 + 100), event(2, "A", T0 + 200), event(3, "A", T0 + 50), event(4, "A", T0 + 300)]
    broker = MemoryBroker(partitions=2)
    for e in events:
        broker.produce(TOPIC, None, json.dumps(e).encode())  # all in partition 0
    broker.produce(TOPIC, b"x", json.dumps(event(5, "B", T0 + 500)).encode())
    transport = MemoryTransport(broker, TOPIC, fetch_by_partition={0: 3})
    reader = Reader(transport, Merge(batch_max_events=1_000))
    _, rebalance = reader.read(100)
    assert rebalance is not None
    reader.rewind(rebalance.assigned)
    reader.read(100)
    assert tp(0) in reader.paused and transport.lagging(tp(0))
    other = next(t for t in reader.assigned if t != tp(0))
    reader.resume_holding({other: Floor(reader.merge.watermark(tp(0), True))})
    assert tp(0) not in reader.paused  # its watermark is the floor: fetched again
    reader.read(100)
    reader.paused.add(other)
    transport.pause(other)
    reader.resume_holding({tp(0): Floor(float("-inf"))})  # the other one holds nothing back
    assert other in reader.paused


def test_a_partition_count_that_does_not_cover_the_assignment_fails_as_the_broker_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, transport, reader = setup([event(n, f"C{n % 5}", T0 + n) for n in range(6)])
    _, rebalance = reader.read(100)
    assert rebalance is not None and rebalance.assigned is not None
    reader.rewind(rebalance.assigned)
    assert reader.partitions() == 3
    monkeypatch.setattr(transport, "partitions", lambda: 0)  # the client has no metadata for the topic yet
    with pytest.raises(BrokerError, match="events/0 is assigned; its topic's metadata has 0 partitions"):
        reader.partitions()
