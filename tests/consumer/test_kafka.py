"""The Kafka transport against the real broker: a group formed on topics created a moment before is assigned
every partition (they have leaders first), waiting for leaders is bounded, and a member polled as the loop polls
(timeout 0 between steps) joins and reads."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaProducer
from kafka import TopicPartition as KafkaPartition
from kafka.admin import NewTopic
from kafka.partitioner import DefaultPartitioner

from recovery.config import Settings
from recovery.consumer import confluent_transport
from recovery.consumer.confluent_transport import ConfluentTransport
from recovery.consumer.kafka import CustomerPartitioner, KafkaTransport
from recovery.consumer.topics import wait_for_leaders
from recovery.consumer.transport import TopicPartition, Transport
from recovery.exceptions import BrokerError
from tests.conftest import KafkaBroker, free_ports

ASSIGNMENT_BOUND_S = 60.0
"""Longer than any rebalance here, far shorter than kafka-python's default metadata refresh (5 minutes)."""


def test_waiting_for_leaders_is_bounded_and_names_the_topic(kafka_admin: KafkaAdminClient) -> None:
    missing = f"test-missing-{uuid.uuid4().hex}"
    with pytest.raises(BrokerError, match=f"topics without a leader after 0 s: {missing}"):
        wait_for_leaders(kafka_admin, [missing], timeout_s=0.2)


CLIENTS = ["kafka-python", "confluent-kafka"]


def open_transport(client: str, settings: Settings, poll_records: int) -> Transport:
    """The transport `kafka_consumer` names, as the service opens it."""
    kind = ConfluentTransport if client == "confluent-kafka" else KafkaTransport
    return kind(settings, poll_records=poll_records)


def assignment(transport: Transport, give_up: float, poll_ms: int = 0, size: int = 1) -> frozenset[TopicPartition]:
    """Poll until an assignment of at least `size` partitions comes (the last one, whatever its size, at `give_up`,
    monotonic seconds)."""
    assigned: frozenset[TopicPartition] = frozenset()
    while len(assigned) < size and time.monotonic() < give_up:
        transport.poll(poll_ms, 100)
        rebalance = transport.rebalance()
        if rebalance is not None and rebalance.assigned is not None:
            assigned = rebalance.assigned
    return assigned


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


@pytest.mark.parametrize("client", CLIENTS)
def test_a_group_on_topics_created_an_instant_before_is_assigned_every_partition(
    client: str, kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    settings, names = settings_for(kafka_bootstrap)
    # Created without waiting for their leaders, as another process (an operator, a fault harness) may have.
    kafka_admin.create_topics([NewTopic(name, 6, 1) for name in names.values()])
    transport = open_transport(client, settings, 100)
    try:
        assigned = assignment(transport, time.monotonic() + ASSIGNMENT_BOUND_S, poll_ms=200, size=6)
        assert sorted(tp.partition for tp in assigned) == list(range(6))
    finally:
        transport.close()  # the topics stay: deleting them moves the metadata other tests' groups read


@pytest.mark.parametrize("client", CLIENTS)
def test_a_member_polled_with_timeout_0_between_slow_steps_joins_and_reads_every_record(
    client: str, kafka_bootstrap: str
) -> None:
    """The loop polls with timeout 0 after its first poll of a step, and a step takes time. kafka-python 3.0.12 applies
    a join round only in a poll still waiting when it ends: without the adapter waiting for the join, such a member
    started a new round at each poll and read nothing (73 generations in 15 s, 6 runs of 6)."""
    settings, _ = settings_for(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    transport = open_transport(client, settings, 100)  # creates the topics
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


class TwoPartitions:
    """A topic of two partitions of 100 records each, read 10 records a poll by the transport `client` names; `read`
    counts the records per partition."""

    def __init__(self, client: str, kafka_bootstrap: str, kafka_admin: KafkaAdminClient) -> None:
        settings, names = settings_for(kafka_bootstrap)
        self.topic = names["events"]
        kafka_admin.create_topics([NewTopic(self.topic, 2, 1)])
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for partition in (0, 1):
            for _ in range(100):
                producer.send(self.topic, value=b"{}", partition=partition)
        producer.flush()
        producer.close()
        self.transport = open_transport(client, settings, 10)
        self.read = {0: 0, 1: 0}
        self.give_up = time.monotonic() + ASSIGNMENT_BOUND_S

    def poll(self) -> None:
        for tp, records in self.transport.poll(100, 10).items():
            self.read[tp.partition] += len(records)

    def poll_until(self, done: Callable[[], bool]) -> None:
        while not done() and time.monotonic() < self.give_up:
            self.poll()

    def first_read(self) -> tuple[int, int]:
        """(the partition whose records came first, the other one)."""
        self.poll_until(lambda: any(self.read.values()))
        first = next(p for p, n in self.read.items() if n)
        return first, 1 - first

    def pause(self, partition: int) -> None:
        self.transport.pause(TopicPartition(self.topic, partition))

    def resume(self, partition: int) -> None:
        self.transport.resume(TopicPartition(self.topic, partition))


@pytest.mark.parametrize("client", CLIENTS)
def test_a_partition_paused_mid_fetch_and_resumed_is_read_to_its_end(
    client: str, kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    """kafka-python 3.0.12 parks the records fetched for a paused partition and gives them back on resume only
    while its in-line slot is empty; a drained slot left there (the other partition read to its end) kept them
    parked, and the partition was never fetched again (bench.scale stopped so for good)."""
    topic = TwoPartitions(client, kafka_bootstrap, kafka_admin)
    try:
        first, other = topic.first_read()
        topic.pause(first)  # its records are in the slot, partly taken
        topic.poll_until(lambda: topic.read[other] == 100)
        for _ in range(5):  # the other partition's fetches at its end: the slot drained
            topic.poll()
        topic.resume(first)
        topic.poll_until(lambda: topic.read[first] == 100)
        assert topic.read == {0: 100, 1: 100}
    finally:
        topic.transport.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_partition_resumed_while_another_is_read_is_read_to_its_end_once_that_one_is_paused(
    client: str, kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    """The same parked records, resumed at another moment: while the other partition's records were still being
    taken from the in-line slot. That one then read to its end and paused (its buffer full, as the reader does),
    its drained records stayed in the slot, and kafka-python 3.0.12 never gave the resumed partition's records
    back: nothing was fetchable, and `bench.scale` stood still until the stall watch replaced the client, in 3
    runs of 5 with kafka-python's clients (2026-12-05). Without the adapter releasing a drained slot before every
    poll, the resumed partition here stayed at its first 10 records."""
    topic = TwoPartitions(client, kafka_bootstrap, kafka_admin)
    try:
        first, other = topic.first_read()
        topic.pause(first)  # its records are in the slot, partly taken
        topic.poll_until(lambda: topic.read[other] > 0)
        topic.resume(first)  # the other's records still in the slot
        topic.poll_until(lambda: topic.read[other] == 100)
        topic.poll()  # finds nothing more: the other's records drained in the slot
        topic.pause(other)  # its buffer full, as the reader pauses
        topic.poll_until(lambda: topic.read[first] == 100)
        assert topic.read == {0: 100, 1: 100}
    finally:
        topic.transport.close()


def test_every_partition_has_a_known_end_after_a_seek_while_the_first_fetch_is_out(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    """On an assignment with nothing committed the reader seeks to the beginning, maybe while the first fetch is out.
    kafka-python 3.0.12 sets that fetch's answer aside (the partitions await their reset), and in an incremental
    fetch session the broker answers only for what changed since: the empty partitions (or, in some runs, the one
    with records) never got an end. They counted as lagging for good, which held the whole service back (in
    test_serve, the task never came in 2 runs of 8 under load; here, 5 runs of 5 stuck without the fix)."""
    settings, names = settings_for(kafka_bootstrap)
    kafka_admin.create_topics([NewTopic(names["events"], 6, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for _ in range(2):
        producer.send(names["events"], value=b"{}", partition=2)
    producer.flush()
    producer.close()
    transport = KafkaTransport(settings, poll_records=100)
    try:
        give_up = time.monotonic() + ASSIGNMENT_BOUND_S
        assigned = assignment(transport, give_up)
        assert len(assigned) == 6
        # The window, waited for (kafka-python's own state: the defect is its own): every offset reset, the first
        # fetch sent, its answer in and not taken yet.
        consumer = transport._consumer
        while time.monotonic() < give_up and not all(
            consumer._subscription.assignment[KafkaPartition(*tp)].has_valid_position for tp in assigned
        ):
            transport.poll(0, 100)
            time.sleep(0.005)
        transport.poll(0, 100)  # sends the first fetch and returns before its answer
        while not consumer._fetcher._completed_fetches and time.monotonic() < give_up:
            time.sleep(0.01)
        for tp in assigned:
            transport.seek(tp, None)
        while any(transport.lagging(tp) for tp in assigned) and time.monotonic() < give_up:
            transport.poll(200, 100)
        assert [tp.partition for tp in sorted(assigned) if transport.lagging(tp)] == []
    finally:
        transport.close()


class Cluster:
    """What kafka-python's partitioners read of its cluster metadata: one topic of `partitions` partitions."""

    def __init__(self, topic: str, partitions: int) -> None:
        self.topic = topic
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == self.topic else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions if topic == self.topic else set()


@given(st.binary(max_size=40) | st.text(max_size=20).map(str.encode), st.integers(1, 64))
def test_the_outbox_partitioner_puts_every_key_where_kafkas_default_does(key: bytes, partitions: int) -> None:
    cluster = Cluster("t", partitions)
    expected = DefaultPartitioner().partition("t", None, key, None, b"v", cluster)
    assert CustomerPartitioner().partition("t", None, key, None, b"v", cluster) == expected


def test_the_outbox_partitioner_spreads_keyless_messages_and_refuses_an_unknown_topic() -> None:
    cluster = Cluster("t", 6)
    assert {CustomerPartitioner().partition("t", None, None, None, b"v", cluster) for _ in range(200)} == set(range(6))
    with pytest.raises(ValueError, match="Topic other not found"):
        CustomerPartitioner().partition("other", None, b"C1", None, b"v", cluster)


@pytest.mark.parametrize("client", CLIENTS)
def test_after_an_assignment_and_its_rewind_every_partition_reads_to_a_known_end_and_commits(
    client: str, kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    """What the loop does on an assignment: seek every partition to its committed offset (the beginning when none),
    read, and take a partition as done once it is not lagging. Empty partitions must get a known end too (a
    partition lagging for good holds the others back), a commit must be answered, and a seek back must read the same
    records again."""
    settings, names = settings_for(kafka_bootstrap)
    kafka_admin.create_topics([NewTopic(names["events"], 6, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for offset in range(30):
        producer.send(names["events"], value=str(offset).encode(), partition=2)
    producer.flush()
    producer.close()
    transport = open_transport(client, settings, 100)
    try:
        give_up = time.monotonic() + ASSIGNMENT_BOUND_S
        assigned = assignment(transport, give_up)
        assert len(assigned) == 6
        assert transport.connected()  # /readyz says ready from here (librdkafka's statistics come every 5 s only)
        for tp in assigned:
            transport.seek(tp, transport.committed(tp))
        values: list[bytes] = []
        while any(transport.lagging(tp) for tp in assigned) and time.monotonic() < give_up:
            for records in transport.poll(200, 100).values():
                values += [r.value or b"" for r in records]
        assert [tp.partition for tp in sorted(assigned) if transport.lagging(tp)] == []
        assert values == [str(offset).encode() for offset in range(30)]
        assert {tp.partition: transport.lag(tp) for tp in assigned} == dict.fromkeys(range(6), 0)

        full = TopicPartition(names["events"], 2)
        ack = transport.commit_async({full: 20})
        while not ack.is_done and time.monotonic() < give_up:
            transport.poll(50, 100)
        assert ack.is_done and not ack.failed()
        assert transport.committed(full) == 20

        transport.seek(full, transport.committed(full))
        assert transport.lagging(full)
        again: list[bytes] = []
        while len(again) < 10 and time.monotonic() < give_up:
            again += [r.value or b"" for r in transport.poll(200, 100).get(full, [])]
        assert again == [str(offset).encode() for offset in range(20, 30)]
        assert not transport.lagging(full)
    finally:
        transport.close()


def test_a_group_of_one_member_of_each_client_splits_the_partitions(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient
) -> None:
    """Instances on either client share a group (one eager protocol, the same assignors): a rolling change of
    `kafka_consumer` never has two instances read the same partition."""
    settings, names = settings_for(kafka_bootstrap)
    kafka_admin.create_topics([NewTopic(names["events"], 6, 1)])
    members = [open_transport(client, settings, 100) for client in CLIENTS]
    try:
        owned: list[frozenset[TopicPartition]] = [frozenset(), frozenset()]
        give_up = time.monotonic() + ASSIGNMENT_BOUND_S
        while time.monotonic() < give_up and not (
            owned[0] and owned[1] and len(owned[0] | owned[1]) == 6 and not owned[0] & owned[1]
        ):
            for i, member in enumerate(members):
                member.poll(100, 100)
                rebalance = member.rebalance()
                if rebalance is not None:
                    owned[i] = rebalance.assigned or frozenset()
        assert len(owned[0]) == len(owned[1]) == 3
        assert sorted(tp.partition for tp in owned[0] | owned[1]) == list(range(6))
    finally:
        for member in members:
            member.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("producer", CLIENTS)
def test_a_broker_gone_while_the_producer_waits_for_answers_is_told_by_the_transport_within_the_wait(
    producer: str, kafka_libs: Path, tmp_path: Path
) -> None:
    """The loop asks `connected()` every second while the outbox waits for answers (`OutboxPublisher.waiting`).
    librdkafka's consumer tells only in statistics served inside a poll, and no poll runs in that wait: with it,
    the transport said connected through the wait, with either producer. (kafka-python's consumer keeps its
    connections on a thread of its own: it tells.)"""
    broker = KafkaBroker(tmp_path / "kafka", *free_ports(2))
    broker.start()
    try:
        settings, names = settings_for(broker.bootstrap_servers)
        settings = settings.model_copy(update={"kafka_producer": producer})
        transport = open_transport("confluent-kafka", settings, 100)
        try:
            assert assignment(transport, time.monotonic() + ASSIGNMENT_BOUND_S)
            assert transport.connected()
            transport.send(names["tasks"], b"C1", b"first", ()).get(timeout=60)  # the topic's metadata known
            broker.stop()
            transport.send(names["tasks"], b"C1", b"held", ())  # the producer holds it: no broker answers
            told: list[bool | None] = []
            for _ in range(5):  # the outbox's wait, a second at a time, with the loop's check between
                with contextlib.suppress(BrokerError):
                    transport.flush(1.0)
                told.append(transport.connected(waiting=True))
            assert told[-1] is False, told
        finally:
            with contextlib.suppress(BrokerError):
                transport.close()
    finally:
        broker.stop()


def test_a_consumer_close_that_does_not_end_is_bounded_and_said(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """librdkafka's close leaves the group; with the broker away and the group session timing out as it began, it
    waited for a coordinator that never came, and a SIGTERM did not stop the service in 120 s (a CI run of
    `test_sigterm_while_the_broker_is_away_stops_the_service`)."""
    monkeypatch.setattr(confluent_transport, "CLOSE_TIMEOUT_S", 0.2)
    release = threading.Event()

    class Stuck:
        def close(self) -> None:
            release.wait(30)

    class Output:
        closed = False

        def close(self) -> None:
            self.closed = True

    transport = object.__new__(ConfluentTransport)  # its clients only: no broker here
    output = Output()
    transport._consumer, transport._output = Stuck(), output  # type: ignore[assignment]
    try:
        with caplog.at_level(logging.WARNING, logger="recovery.consumer"):
            transport.close()
    finally:
        release.set()
    assert output.closed  # the producer is closed too
    said = [(r.getMessage(), getattr(r, "error", None)) for r in caplog.records]
    assert said == [
        ("closing a Kafka client failed", "Kafka consumer close failed: not over within 0.2 s (the broker away?)")
    ]
