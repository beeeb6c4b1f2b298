"""A batch through the engine: effects, DLQ records and hand-overs queued in the store's outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recovery.config import Settings
from recovery.consumer import ServiceStats, TopicPartition, partition_of
from recovery.consumer.evaluation import Evaluator, decode
from recovery.consumer.ordering import Barrier, Merge, MergeLimits
from recovery.consumer.records import DLQ_HEADERS
from recovery.engine import Engine
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import SqliteStore
from recovery.times import format_time
from tests.conftest import T0
from tests.consumer.memory import Message

SETTINGS = Settings.model_validate(
    {"topic_events": "events", "topic_tasks": "tasks", "topic_gestures": "gestures", "topic_dlq": "dlq"}
)


def record(value: bytes | None, partition: int = 0, offset: int = 0, key: bytes | None = b"C1") -> Message:
    return Message("events", partition, offset, 0, key, value)


def event(n: int, type: str = "cancellation.requested", customer: str = "C1", **data: Any) -> bytes:
    raw = {"id": f"e{n}", "type": type, "occurred_at": format_time(T0 + n), "customer_id": customer, "data": data}
    return json.dumps(raw).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "e.db")
    yield store
    store.close()


def evaluator(store: SqliteStore, playbooks: list[CompiledPlaybook]) -> tuple[Evaluator, Barrier]:
    evaluator = Evaluator(SETTINGS, store, playbooks, ServiceStats())
    return evaluator, Barrier(store, "events", Merge(MergeLimits(100, 0, 0), lambda: 0.0))


def outbox(store: SqliteStore) -> list[tuple[str, bytes, dict[str, bytes]]]:
    return [(item.topic, item.value, dict(item.headers)) for item in store.outbox_take(1000)]


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
    done = ev.evaluate([decode(record(event(1), offset=7)), decode(record(event(2), partition=1, offset=3))], barrier)
    assert done.offsets == {TopicPartition("events", 0): 8, TopicPartition("events", 1): 4}
    assert done.last_ts == {TopicPartition("events", 0): T0 + 1, TopicPartition("events", 1): T0 + 2}
    topics = [topic for topic, _, _ in outbox(store)]
    assert topics == ["tasks"]  # the second cancellation is inside the first one's cooldown
    assert [e.playbook for e in ev.take_stored()] == ["cancellation-save"]
    assert ev.take_stored() == []
    assert ev.stats.consumed == {"processed": 2}


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


def test_an_event_whose_evaluation_fails_goes_to_the_dlq_and_the_batch_goes_on(
    store: SqliteStore, shipped_playbooks: list[CompiledPlaybook], monkeypatch: pytest.MonkeyPatch
) -> None:
    ev, barrier = evaluator(store, shipped_playbooks)
    original = Engine.process

    def process(engine: Engine, evt: Any) -> Any:
        if evt.id == "e1":
            raise ValueError("boom")
        return original(engine, evt)

    monkeypatch.setattr(Engine, "process", process)
    ev.evaluate([decode(record(event(1))), decode(record(event(2), offset=1, key=b"C2"))], barrier)
    assert [(topic, headers.get(DLQ_HEADERS[0], b"")[:17]) for topic, _, headers in outbox(store)] == [
        ("dlq", b"evaluation failed"),
        ("tasks", b""),
    ]


def test_an_event_keyed_to_a_partition_this_instance_does_not_own_is_forwarded_to_its_owner(
    store: SqliteStore, shipped_playbooks: list[CompiledPlaybook]
) -> None:
    ev, barrier = evaluator(store, shipped_playbooks)
    owner = partition_of("C1", 3)
    ev.rebuild({(owner + 1) % 3}, 3)
    value = event(1)
    ev.evaluate([decode(record(value, partition=(owner + 1) % 3))], barrier)
    assert outbox(store) == [("events", value, {})]
    assert ev.stats.consumed == {"forwarded": 1}
