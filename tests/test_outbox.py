"""The outbox publisher against the real broker: messages leave the outbox only once the broker has them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from recovery.consumer.kafka import KafkaOutput
from recovery.exceptions import BrokerError
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


def test_sent_messages_leave_the_outbox_at_the_commit_after_confirm(
    kafka_bootstrap: str, topic_factory: Callable[..., str], producer: KafkaProducer, store: SqliteStore
) -> None:
    topic = topic_factory()
    for n in range(3):
        store.outbox_add(topic, f"C{n}", b"m%d" % n, (("h", b"v"),))
    store.commit()
    publisher = OutboxPublisher(store, KafkaOutput(producer))
    assert publisher.send() == 3
    assert store.outbox_size() == 0  # taken in the open transaction
    assert publisher.confirm() == 3
    store.commit()
    assert store.outbox_size() == 0
    records = collect(kafka_bootstrap, [topic], until=lambda rs: len(rs) >= 3)
    assert sorted((r.key, r.value, list(r.headers)) for r in records) == [
        (b"C%d" % n, b"m%d" % n, [("h", b"v")]) for n in range(3)
    ]


def test_a_message_the_broker_refuses_goes_back_to_the_outbox(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient, producer: KafkaProducer, store: SqliteStore
) -> None:
    topic = f"test-small-{uuid.uuid4().hex}"
    kafka_admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "200"})])
    try:
        store.outbox_add(topic, "C1", b"x" * 2000)
        store.commit()
        publisher = OutboxPublisher(store, KafkaOutput(producer))
        assert publisher.send() == 1
        with pytest.raises(BrokerError, match="send to test-small"):
            publisher.confirm()
        store.rollback()  # what the service loop does with any failed batch
        assert store.outbox_size() == 1
        with pytest.raises(BrokerError):
            publisher.publish()  # the synchronous form rolls back by itself
        assert store.outbox_size() == 1
    finally:
        kafka_admin.delete_topics([topic])
