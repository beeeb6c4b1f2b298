"""The Kafka transport against the real broker: a group formed on topics created a moment before is assigned
every partition (they have leaders first), waiting for leaders is bounded, and a member polled as the loop polls
(timeout 0 between steps) joins and reads."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
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


def settings_for(kafka_bootstrap: str) -> tuple[Settings, dict[str, str]]:
    names = {role: f"test-{role}-{uuid.uuid4().hex}" for role in ("events", "tasks", "gestures", "dlq")}
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        group_id=f"test-group-{uuid.uuid4().hex}",
        topic_events=names["events"],
        topic_tasks=names["tasks"],
        topic_gestures=names["gestures"],
        topic_dlq=names["dlq"],
    )
    return settings, names


def test_a_group_on_topics_created_an_instant_before_is_assigned_every_partition(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    settings, names = settings_for(kafka_bootstrap)
    # Created without waiting for their leaders, as another process (an operator, a fault harness) may have.
    kafka_admin.create_topics([NewTopic(name, 6, 1) for name in names.values()])
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


def test_a_member_polled_with_timeout_0_between_slow_steps_joins_and_reads_every_record(kafka_bootstrap: str) -> None:
    """The loop polls with timeout 0 after its first poll of a step, and a step takes time. kafka-python 3.0.12 applies
    a join round only in a poll still waiting when it ends: without the adapter waiting for the join, such a member
    started a new round at each poll and read nothing (73 generations in 15 s, 6 runs of 6)."""
    settings, _ = settings_for(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    transport = KafkaTransport(settings, poll_records=100)  # creates the topics
    try:
        for i in range(200):
            producer.send(settings.topic_events, key=str(i).encode(), value=b"{}")
        producer.flush()
        read = 0
        give_up = time.monotonic() + ASSIGNMENT_BOUND_S
        while read < 200 and time.monotonic() < give_up:
            read += sum(len(records) for records in transport.poll(0, 100).values())
            time.sleep(0.2)  # a step
        assert read == 200
    finally:
        producer.close()
        transport.close()
