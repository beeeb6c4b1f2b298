"""The broker that deploy/kafka starts: messages go through it intact, and stop.sh really stops it."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from tests.deploy.conftest import KafkaBroker, TopicFactory, port_accepts


def consume(consumer: KafkaConsumer, count: int, timeout_s: float = 30.0) -> list[tuple[int, int, bytes, bytes]]:
    """``count`` records as (partition, offset, key, value), polling for at most ``timeout_s``."""
    records: list[tuple[int, int, bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend((r.partition, r.offset, r.key, r.value) for r in batch)
    return records


def test_keyed_messages_round_trip_through_three_partitions(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient, topic_factory: TopicFactory, consumer_group: str
) -> None:
    topic = topic_factory(partitions=3)
    sent = [(f"C{n % 10}".encode(), json.dumps({"n": n}).encode()) for n in range(100)]

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in sent:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=consumer_group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        consumer.partitions_for_topic(topic)  # known before joining: one round (recovery/consumer/membership.py)
        consumer.subscribe([topic])
        received = consume(consumer, len(sent))
        assert len(received) == len(sent)
        consumer.commit()
    finally:
        consumer.close()

    assert sorted((key, value) for _, _, key, value in received) == sorted(sent)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    values_of_key: dict[bytes, list[bytes]] = defaultdict(list)
    for partition, _, key, value in sorted(received, key=lambda r: (r[0], r[1])):
        partitions_of_key[key].add(partition)
        values_of_key[key].append(value)
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
    assert {p for partitions in partitions_of_key.values() for p in partitions} == {0, 1, 2}
    # Within a key (so within a partition) the order is the order sent.
    for key, values in values_of_key.items():
        assert values == [value for k, value in sent if k == key]

    committed = kafka_admin.list_group_offsets({consumer_group: None})[consumer_group]
    assert {(tp.topic, tp.partition) for tp in committed} == {(topic, 0), (topic, 1), (topic, 2)}
    assert sum(meta.offset for meta in committed.values()) == len(sent)


def test_start_is_idempotent_and_stop_closes_the_ports(kafka_broker_factory: Callable[[], KafkaBroker]) -> None:
    broker = kafka_broker_factory()
    broker.start()
    assert port_accepts(broker.port)
    pid = broker.pid_file.read_text().strip()

    again = broker.start()
    assert "already running" in again.stderr
    assert broker.pid_file.read_text().strip() == pid

    broker.stop()
    assert not port_accepts(broker.port)
    assert not port_accepts(broker.controller_port)
    assert not broker.pid_file.exists()
    assert "no broker running" in broker.stop().stderr
