"""The Kafka transport against the real broker: a group formed on topics created a moment before is assigned
every partition (they have leaders first), waiting for leaders is bounded, and a member whose partitions stay
unfetchable rejoins the group."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from recovery.config import Settings
from recovery.consumer.kafka import KafkaTransport, wait_for_leaders
from recovery.consumer.stall import StallWatch
from recovery.consumer.transport import Rebalance, TopicPartition
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
        transport.close()
        kafka_admin.delete_topics(list(names.values()))


def test_a_member_whose_partitions_stay_unfetchable_rejoins_and_reads_on(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    names = {role: f"test-{role}-{uuid.uuid4().hex}" for role in ("events", "tasks", "gestures", "dlq")}
    kafka_admin.create_topics([NewTopic(name, 2, 1) for name in names.values()])
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        group_id=f"test-group-{uuid.uuid4().hex}",
        topic_events=names["events"],
        topic_tasks=names["tasks"],
        topic_gestures=names["gestures"],
        topic_dlq=names["dlq"],
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    transport = KafkaTransport(settings, poll_records=100)
    try:

        def read(count: int) -> tuple[int, list[Rebalance]]:
            got, rebalances = 0, []
            give_up = time.monotonic() + ASSIGNMENT_BOUND_S
            while got < count and time.monotonic() < give_up:
                got += sum(len(records) for records in transport.poll(200, 100).values())
                rebalance = transport.rebalance()
                if rebalance is not None:
                    rebalances.append(rebalance)
            return got, rebalances

        for i in range(10):
            producer.send(names["events"], value=b"%d" % i, partition=i % 2)
        producer.flush()
        assert read(10)[0] == 10
        # kafka-python 3.0.12's stuck state, as measured: assigned, not paused, a position, pending revocation.
        consumer = transport._consumer
        for state in consumer._subscription.assignment.values():
            state.mark_pending_revocation(True)
        transport._watch = StallWatch(after_s=1.0, polls=3)
        for i in range(10, 20):
            producer.send(names["events"], value=b"%d" % i, partition=i % 2)
        producer.flush()
        got, rebalances = read(10)  # read again from the committed offsets (none: from the beginning)
        assert transport.rejoins == 1 and got >= 10
        assert rebalances and rebalances[0].revoked
    finally:
        producer.close()
        transport.close()
        kafka_admin.delete_topics(list(names.values()))
