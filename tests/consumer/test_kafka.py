"""The Kafka transport against the real broker: a group formed on topics created a moment before is assigned
every partition (they have leaders first), and waiting for leaders is bounded."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from recovery.config import Settings
from recovery.consumer.kafka import KafkaTransport, wait_for_leaders
from recovery.consumer.transport import TopicPartition
from recovery.exceptions import BrokerError

ASSIGNMENT_BOUND_S = 60.0
"""Longer than any rebalance here, far shorter than kafka-python's default metadata refresh (5 minutes)."""


def test_waiting_for_leaders_is_bounded_and_names_the_topic(kafka_admin: KafkaAdminClient) -> None:
    missing = f"test-missing-{uuid.uuid4().hex}"
    with pytest.raises(BrokerError, match=f"topics without a leader after 0 s: {missing}"):
        wait_for_leaders(kafka_admin, [missing], timeout_s=0.2)


def test_a_group_on_topics_created_an_instant_before_is_assigned_every_partition(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    names = {role: f"test-{role}-{uuid.uuid4().hex}" for role in ("events", "tasks", "gestures", "dlq")}
    # Created without waiting for their leaders, as another process (an operator, a fault harness) may have.
    kafka_admin.create_topics([NewTopic(name, 6, 1) for name in names.values()])
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        group_id=f"test-group-{uuid.uuid4().hex}",
        topic_events=names["events"],
        topic_tasks=names["tasks"],
        topic_gestures=names["gestures"],
        topic_dlq=names["dlq"],
    )
    transport = KafkaTransport(settings, poll_records=100)
    try:
        assigned: frozenset[TopicPartition] = frozenset()
        give_up = time.monotonic() + ASSIGNMENT_BOUND_S
        while len(assigned) < 6 and time.monotonic() < give_up:
            transport.poll(200, 100)
            rebalance = transport.rebalance()
            if rebalance is not None and rebalance.assigned is not None:
                assigned = rebalance.assigned
        assert sorted(tp.partition for tp in assigned) == list(range(6))
    finally:
        transport.close()  # the topics stay: deleting them moves the metadata other tests' groups read
