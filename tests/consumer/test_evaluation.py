"""A batch through the engine: effects, DLQ records and hand-overs queued in the store's outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from recovery.config import Settings
from recovery.consumer import ServiceStats, TopicPartition, partition_of
from recovery.consumer.evaluation import Evaluator, Poisoned, decode
from recovery.consumer.ordering import Barrier, Merge
from recovery.consumer.records import DLQ_HEADERS
from recovery.engine import Engine
from recovery.exceptions import StoreError
from recovery.metrics import Metrics
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import SqliteStore
from recovery.times import format_time
from tests.conftest import T0, take_outbox
from tests.consumer.memory import Message

INF = float("inf")
SETTINGS = Settings.model_validate(
    {"topic_events": "events", "topic_tasks": "tasks", "topic_gestures": "gestures", "topic_dlq": "dlq"}
)


def record(value: bytes | None, partition: int | None = None, offset: int = 0, key: bytes | None = b"C1") -> Message:
    """A record of the events topic: by default on the partition its key (a customer id) lives in."""
    if partition is None:
        partition = partition_of((key or b"").decode(), 3)
    return Message("events", partition, offset, 0, key, value)


def event(n: int, type: str = "cancellation.requested", customer: str = "C1", **data: Any) -> bytes:
    raw = {"id": f"e{n}", "type": type, "occurred_at": format_time(T0 + n), "customer_id": customer, "data": data}
    return json.dumps(raw).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "e.db")
    yield store
    store.close()


def evaluator(
    store: SqliteStore, playbooks: list[CompiledPlaybook], owned: tuple[int, ...] = (0, 1, 2)
) -> tuple[Evaluator, Barrier]:
    evaluator = Evaluator(SETTINGS, store, playbooks, ServiceStats())
    evaluator.rebuild(owned, 3)
    return evaluator, Barrier(store, "events", Merge(100), barrier_wait_s=0.0, monotonic=lambda: 0.0)


def outbox(store: SqliteStore) -> list[tuple[str, bytes, dict[str, bytes]]]:
    return [(item.topic, item.value, dict(item.headers)) for item in take_outbox(store)]


class TestDecode:
    def test_a_valid_event(self) -> None:
        found = decode(record(event(1)))
        assert found.event is not None and found.event.id == "e1" and found.error is None
        assert found.ts == T0 + 1

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (None, "empty message"),
            (b"", "empty message"),
            (b"{nope", "invalid event"),
            (b'{"id": "x"}', "invalid event"),
        ],
    )
    def test_what_is_not_an_event_says_why(self, value: bytes | None, reason: str) -> None:
        found = decode(record(value))
        assert found.event is None and found.error is not None and found.error.startswith(reason)


def test_effects_go_to_the_outbox_with_the_offsets_and_event_times_of_the_batch(
    store: SqliteStore, shipped_playbooks: list[CompiledPlaybook]
) -> None:
    ev, barrier = evaluator(store, shipped_playbooks)
    c1 = TopicPartition("events", partition_of("C1", 3))
    done = ev.evaluate([decode(record(event(1), offset=7)), decode(record(event(2), offset=8))], barrier)
    assert done.offsets == {c1: 9}
    assert done.last_ts == {c1: T0 + 2}
    topics = [topic for topic, _, _ in outbox(store)]
    assert topics == ["tasks"]  # the second cancellation is inside the first one's cooldown
    assert [e.playbook for e in ev.take_stored()] == ["cancellation-save"]
    assert ev.take_stored() == []
    assert ev.stats.consumed == {"processed": 2}
    assert ev.clocks()[c1.partition] == T0 + 2
    assert {p: c for p, c in ev.clocks().items() if p != c1.partition} == dict.fromkeys(
        {0, 1, 2} - {c1.partition}, -INF
    )


def test_each_partition_has_a_clock_of_its_own(store: SqliteStore, shipped_playbooks: list[CompiledPlaybook]) -> None:
    ev, barrier = evaluator(store, shipped_playbooks)
    customers = {partition_of(f"C{n}", 3): f"C{n}" for n in range(20)}
    late, early = customers[0], customers[1]
    ev.evaluate([decode(record(event(100, customer=late), key=late.encode()))], barrier)
    ev.evaluate([decode(record(event(5, customer=early), key=early.encode()))], barrier)
    assert (ev.clocks()[0], ev.clocks()[1]) == (T0 + 100, T0 + 5)


def test_an_invalid_record_goes_to_the_dlq_as_it_came_with_where_it_came_from(
    store: SqliteStore, shipped_playbooks: list[CompiledPlaybook]
) -> None:
    ev, barrier = evaluator(store, shipped_playbooks)
    done = ev.evaluate([decode(record(b"{nope", partition=2, offset=41, key=b"K"))], barrier)
    assert done.offsets == {TopicPartition("events", 2): 42}
    [(topic, value, headers)] = outbox(store)
    assert (topic, value) == ("dlq", b"{nope")
    assert headers[DLQ_HEADERS[0]].startswith(b"invalid event")
    assert (headers[DLQ_HEADERS[1]], headers[DLQ_HEADERS[2]], headers[DLQ_HEADERS[3]]) == (b"events", b"2", b"41")
    assert ev.stats.dlq == {"invalid event": 1}


def test_an_event_whose_evaluation_fails_stops_the_batch_and_goes_to_the_dlq_when_read_again(
    store: SqliteStore, shipped_playbooks: list[CompiledPlaybook], monkeypatch: pytest.MonkeyPatch
) -> None:
    ev, barrier = evaluator(store, shipped_playbooks)
    original = Evaluator._evaluate

    def evaluate(self: Evaluator, engine: Engine, tp: Any, pending: Any, evt: Any, barrier: Any) -> Any:
        effects = original(self, engine, tp, pending, evt, barrier)  # its writes are made...
        if evt.id == "e1":
            raise ValueError("boom")  # ...and then it fails
        return effects

    monkeypatch.setattr(Evaluator, "_evaluate", evaluate)
    batch = [decode(record(event(1))), decode(record(event(2, customer="C2"), offset=1, key=b"C2"))]
    with pytest.raises(Poisoned) as failed:
        ev.evaluate(batch, barrier)
    key = (failed.value.key, failed.value.reason)
    assert key == (("events", partition_of("C1", 3), 0), "ValueError: boom")
    store.rollback()  # as the loop does: nothing of the failed evaluation stays
    ev.rebuild([0, 1, 2], 3)
    ev.evaluate(batch, barrier, {key[0]: key[1]})
    assert [(topic, headers.get(DLQ_HEADERS[0], b"")) for topic, _, headers in outbox(store)] == [
        ("dlq", b"evaluation failed: ValueError: boom"),
        ("tasks", b""),
    ]
    assert store.add_event("e1", 0.0) is True  # never recorded as processed


def test_an_event_keyed_to_another_partition_than_its_customers_is_forwarded_there(
    store: SqliteStore, shipped_playbooks: list[CompiledPlaybook]
) -> None:
    # Even to a partition this instance owns: it is evaluated in that partition's order, with its clock.
    ev, barrier = evaluator(store, shipped_playbooks)
    wrong = (partition_of("C1", 3) + 1) % 3
    value = event(1)
    ev.evaluate([decode(record(value, partition=wrong))], barrier)
    assert outbox(store) == [("events", value, {})]
    assert ev.stats.consumed == {"forwarded": 1}


def test_a_batchs_records_are_counted_per_type_and_result_once_it_is_evaluated(
    store: SqliteStore, shipped_playbooks: list[CompiledPlaybook], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    ev = Evaluator(SETTINGS, store, shipped_playbooks, ServiceStats(), metrics=Metrics(registry))
    ev.rebuild((0, 1, 2), 3)
    barrier = Barrier(store, "events", Merge(100), barrier_wait_s=0.0, monotonic=lambda: 0.0)
    calls = [decode(record(event(n, type="service.call"), offset=n)) for n in range(1, 4)]
    batch = [*calls, decode(record(event(1, type="service.call"), offset=9)), decode(record(b"{nope", offset=10))]
    original = Evaluator._evaluate

    def fail_once(self: Evaluator, engine: Engine, tp: Any, pending: Any, evt: Any, barrier: Any) -> Any:
        if evt.id == "e3":  # after two were evaluated
            monkeypatch.setattr(Evaluator, "_evaluate", original)
            raise StoreError("sqlite: gone")
        return original(self, engine, tp, pending, evt, barrier)

    monkeypatch.setattr(Evaluator, "_evaluate", fail_once)
    with pytest.raises(StoreError):
        ev.evaluate(batch, barrier)  # rolled back by the loop, read again: counted then, once
    store.rollback()
    ev.rebuild((0, 1, 2), 3)
    ev.evaluate(batch, barrier)

    def count(event_type: str, result: str) -> float | None:
        return registry.get_sample_value("recovery_events_consumed_total", {"type": event_type, "result": result})

    assert (count("service.call", "processed"), count("service.call", "duplicate")) == (3, 1)
    assert count("other", "invalid") == 1
