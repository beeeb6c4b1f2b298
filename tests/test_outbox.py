"""The outbox publisher against the real broker: messages leave the outbox only once the broker has them; one the
broker refuses for good is parked and the rest go through; one that failed otherwise is tried again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from prometheus_client import CollectorRegistry

from recovery.consumer.kafka import KafkaOutput
from recovery.exceptions import BrokerError
from recovery.metrics import Metrics
from recovery.outbox import OutboxPublisher
from recovery.store import SqliteStore
from tests.consumer.test_serve import collect


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", retries=0)
    yield producer
    producer.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "r.db")
    yield store
    store.close()


def test_sent_messages_leave_the_outbox_once_the_broker_has_them(
    kafka_bootstrap: str, topic_factory: Callable[..., str], producer: KafkaProducer, store: SqliteStore
) -> None:
    topic = topic_factory()
    for n in range(3):
        store.outbox_add(topic, f"C{n}", b"m%d" % n, (("h", b"v"),))
    store.commit()
    publisher = OutboxPublisher(store, KafkaOutput(producer), owner="me")
    assert publisher.send() == 3
    assert store.outbox_size() == 3  # claimed, not published yet
    assert publisher.send() == 0  # nothing more is claimed while messages are in flight
    settled = publisher.confirm()
    assert (settled.published, settled.retried, settled.parked) == (3, 0, 0)
    assert store.outbox_size() == 0
    records = collect(kafka_bootstrap, [topic], until=lambda rs: len(rs) >= 3)
    assert sorted((r.key, r.value, list(r.headers)) for r in records) == [
        (b"C%d" % n, b"m%d" % n, [("h", b"v")]) for n in range(3)
    ]


def test_a_message_the_broker_refuses_for_good_is_parked_and_the_others_go_through(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient, topic_factory: Callable[..., str], producer: KafkaProducer,
    store: SqliteStore,
) -> None:  # fmt: skip
    small = f"test-small-{uuid.uuid4().hex}"
    kafka_admin.create_topics([NewTopic(small, 1, 1, topic_configs={"max.message.bytes": "200"})])
    other = topic_factory()
    try:
        store.outbox_add(other, "C1", b"before")
        store.outbox_add(small, "C1", b"x" * 2000)  # the broker's limit for this topic is 200 bytes
        store.outbox_add(other, "C1", b"after")
        store.commit()
        registry = CollectorRegistry()
        publisher = OutboxPublisher(store, KafkaOutput(producer), owner="me", metrics=Metrics(registry))
        assert publisher.send() == 3
        settled = publisher.confirm()
        assert (settled.published, settled.parked) == (2, 1)
        parked, count = store.outbox_parked(10)
        assert count == 1 and parked[0].topic == small and "MessageSizeTooLarge" in parked[0].error
        assert store.outbox_size() == 0  # parked messages do not wait
        assert publisher.send() == 0  # and are not sent again
        assert registry.get_sample_value("recovery_outbox_parked") == 1
        assert registry.get_sample_value("recovery_outbox_published_total") == 2
        records = collect(kafka_bootstrap, [other], until=lambda rs: len(rs) >= 2)
        assert sorted(r.value for r in records) == [b"after", b"before"]
        # Someone enlarges the topic's limit, then tells the outbox to try it again.
        assert store.outbox_unpark(None) == 1
        store.commit()
        assert store.outbox_size() == 1
    finally:
        kafka_admin.delete_topics([small])


def test_a_failure_that_may_pass_is_tried_again_after_a_backoff(store: SqliteStore) -> None:
    class Away:
        """A producer whose broker is away: every send is refused, as kafka-python does when it cannot connect."""

        def send(self, topic: str, key: bytes | None, value: bytes, headers: object) -> object:
            raise BrokerError("Kafka send failed: KafkaTimeoutError: no broker", retriable=True)

        def flush(self, timeout_s: float) -> None:
            return None

    now = [1000.0]
    store.outbox_add("t", None, b"v")
    store.commit()
    publisher = OutboxPublisher(store, Away(), owner="me", backoff_s=2.0, clock=lambda: now[0])
    assert publisher.send() == 1
    assert publisher.confirm().retried == 1
    assert store.outbox_parked(10) == ([], 0) and store.outbox_size() == 1
    assert publisher.send() == 0  # not before 1002
    now[0] = 1002.0
    assert publisher.send() == 1
    assert publisher.confirm().retried == 1
    now[0] = 1005.0
    assert publisher.send() == 0  # the second retry waits twice as long: 1006
    now[0] = 1006.0
    assert publisher.send() == 1
