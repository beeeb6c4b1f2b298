"""The outbox publisher against the real broker, with either producer (kafka-python's, confluent-kafka's): messages
leave the outbox only once the broker has them; one the broker refuses for good is parked and the rest go through;
one that failed otherwise is tried again."""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from prometheus_client import CollectorRegistry

from recovery.config import ConfigError, Settings
from recovery.consumer import confluent, confluent_transport
from recovery.consumer.confluent import ConfluentOutput
from recovery.consumer.kafka import KafkaOutput, open_output
from recovery.consumer.records import DLQ_HEADERS, partition_of
from recovery.exceptions import BrokerError
from recovery.metrics import Metrics
from recovery.outbox import FLUSH_TIMEOUT_S, WAITING_EVERY_S, OutboxPublisher, Producer
from recovery.store import SqliteStore
from tests.conftest import KafkaBroker, free_ports
from tests.consumer.test_serve import collect, read_all


@pytest.fixture(params=["kafka-python", "confluent-kafka"])
def producer(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Iterator[Producer]:
    """The outbox's producer, each kind `kafka_producer` names, as the service opens it."""
    output = open_output(Settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_producer=request.param))
    yield output
    output.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "r.db")
    yield store
    store.close()


def test_sent_messages_leave_the_outbox_once_the_broker_has_them(
    kafka_bootstrap: str, topic_factory: Callable[..., str], producer: Producer, store: SqliteStore
) -> None:
    topic = topic_factory()
    for n in range(3):
        store.outbox_add(topic, f"C{n}", b"m%d" % n, (("h", b"v"),))
    store.commit()
    publisher = OutboxPublisher(store, producer, owner="me")
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
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient, topic_factory: Callable[..., str], producer: Producer,
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
        publisher = OutboxPublisher(store, producer, owner="me", metrics=Metrics(registry))
        assert publisher.send() == 3
        settled = publisher.confirm()
        assert (settled.published, settled.parked) == (2, 1)
        parked, count = store.outbox_parked(10)
        assert count == 1 and parked[0].topic == small
        assert re.search("MessageSizeTooLarge|MSG_SIZE_TOO_LARGE", parked[0].error), parked[0].error
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


def test_a_message_of_a_megabyte_goes_through_either_producer(
    kafka_bootstrap: str, topic_factory: Callable[..., str], producer: Producer, store: SqliteStore
) -> None:
    """The broker's default limit is 1 MiB and a bit; librdkafka's own was 1,000,000 bytes, so a DLQ copy that
    kafka-python's producer delivered was parked with confluent-kafka's (the fault suite's hostile messages, 2 of
    10,000)."""
    topic = topic_factory()
    value = b"x" * (1024 * 1024 - 2048)
    store.outbox_add(topic, "C1", value, tuple((name, b"h" * 60) for name in DLQ_HEADERS))
    store.commit()
    publisher = OutboxPublisher(store, producer, owner="me")
    assert publisher.send() == 1
    settled = publisher.confirm()
    assert (settled.published, settled.parked) == (1, 0), store.outbox_parked(10)
    records = collect(kafka_bootstrap, [topic], until=lambda rs: len(rs) >= 1)
    assert [len(r.value) for r in records] == [len(value)]


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


class Late:
    """A producer whose broker answers at its `answers_at`-th flush (never with None); each flush is recorded."""

    def __init__(self, answers_at: int | None) -> None:
        self.answers_at = answers_at
        self.flushes: list[float] = []
        self.acks: list[Done] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: object) -> Done:
        self.acks.append(Done())
        return self.acks[-1]

    def flush(self, timeout_s: float) -> None:
        self.flushes.append(timeout_s)
        if len(self.flushes) != self.answers_at:
            raise BrokerError(f"Kafka flush failed: not answered within {timeout_s:g} s")
        for ack in self.acks:
            ack.is_done = True


class Done:
    def __init__(self) -> None:
        self.is_done = False
        self.exception = None

    def failed(self) -> bool:
        return False

    def get(self, timeout: float | None = None) -> None:
        return None


def test_while_it_waits_for_the_brokers_answers_the_publisher_calls_waiting_every_second(store: SqliteStore) -> None:
    """The service loop's readiness check runs meanwhile: a wait for answers (up to FLUSH_TIMEOUT_S) is where a step
    meets a broker outage first, and /readyz said 200 through it."""
    late, calls = Late(answers_at=4), []
    store.outbox_add("t", None, b"v")
    store.commit()
    publisher = OutboxPublisher(store, late, owner="me", waiting=lambda: calls.append(len(late.flushes)))
    assert publisher.send() == 1
    assert publisher.confirm().published == 1
    assert calls == [1, 2, 3]  # between two waits, none after the answer
    assert late.flushes == [FLUSH_TIMEOUT_S / math.ceil(FLUSH_TIMEOUT_S / WAITING_EVERY_S)] * 4
    assert max(late.flushes) <= WAITING_EVERY_S


def test_a_wait_in_slices_gives_up_after_the_whole_wait_and_says_so(store: SqliteStore, tmp_path: Path) -> None:
    never, calls = Late(answers_at=None), []
    store.outbox_add("t", None, b"v")
    store.commit()
    publisher = OutboxPublisher(store, never, owner="me", waiting=lambda: calls.append(1))
    assert publisher.send() == 1
    settled = publisher.confirm(3.0)
    assert (settled.published, settled.retried, settled.unanswered) == (0, 1, 1)
    assert never.flushes == [1.0, 1.0, 1.0] and len(calls) == 2
    with contextlib.closing(sqlite3.connect(tmp_path / "r.db")) as db:
        [(error,)] = db.execute("SELECT error FROM outbox").fetchall()
    assert error == "no answer from the broker within 3 s (Kafka flush failed: not answered within 1 s)"


def test_without_a_waiting_hook_the_publisher_waits_once(store: SqliteStore) -> None:
    never = Late(answers_at=None)
    store.outbox_add("t", None, b"v")
    store.commit()
    publisher = OutboxPublisher(store, never, owner="me")
    assert publisher.send() == 1
    assert publisher.confirm(3.0).unanswered == 1
    assert never.flushes == [3.0]


def test_keys_go_to_the_partition_javas_client_gives_them(
    kafka_bootstrap: str, topic_factory: Callable[..., str], producer: Producer, store: SqliteStore
) -> None:
    """A task on its customer's partition, a hand-over on the partition of the events topic its customer lives in:
    librdkafka's own default partitioner would put most of these elsewhere."""
    topic = topic_factory(partitions=6)
    keys = [f"C{n}" for n in range(60)]
    for key in keys:
        store.outbox_add(topic, key, key.encode())
    store.commit()
    publisher = OutboxPublisher(store, producer, owner="me")
    assert publisher.send() == 60
    assert publisher.confirm().published == 60
    records = collect(kafka_bootstrap, [topic], until=lambda rs: len(rs) >= 60)
    assert sorted((r.key.decode(), r.partition) for r in records) == sorted((k, partition_of(k, 6)) for k in keys)


def test_with_the_broker_away_a_confluent_send_is_tried_again_never_lost(store: SqliteStore) -> None:
    away = ConfluentOutput(Settings(kafka_bootstrap_servers="127.0.0.1:1", kafka_producer="confluent-kafka"))
    store.outbox_add("t", "C1", b"v")
    store.commit()
    publisher = OutboxPublisher(store, away, owner="me", backoff_s=2.0)
    try:
        assert publisher.send() == 1
        settled = publisher.confirm(timeout_s=0.5)
        assert (settled.published, settled.retried, settled.parked) == (0, 1, 0)
        assert store.outbox_size() == 1 and store.outbox_parked(10) == ([], 0)
    finally:
        away.close()


def test_before_its_producer_is_closed_the_publisher_settles_what_the_broker_answered(
    kafka_bootstrap: str, topic_factory: Callable[..., str], producer: Producer, store: SqliteStore
) -> None:
    """The loop drops its Kafka clients after a broker failure: what the broker took leaves the outbox first, or
    the next clients would publish it again."""
    topic = topic_factory()
    for n in range(3):
        store.outbox_add(topic, f"C{n}", b"m%d" % n)
    store.commit()
    publisher = OutboxPublisher(store, producer, owner="me")
    assert publisher.send() == 3
    producer.flush(10.0)  # answered, not settled yet
    settled = publisher.settle_answered()
    assert (settled.published, settled.retried, settled.parked) == (3, 0, 0)
    assert store.outbox_size() == 0


def test_what_the_broker_did_not_answer_is_sent_again_by_the_owners_next_publisher(store: SqliteStore) -> None:
    away = ConfluentOutput(Settings(kafka_bootstrap_servers="127.0.0.1:1", kafka_producer="confluent-kafka"))
    store.outbox_add("t", "C1", b"v")
    store.commit()
    try:
        assert OutboxPublisher(store, away, owner="me").send() == 1
        settled = OutboxPublisher(store, away, owner="me").settle_answered()  # nothing in flight: nothing settled
        assert (settled.published, settled.retried, settled.parked) == (0, 0, 0)
        first = OutboxPublisher(store, away, owner="me")
        assert first.send() == 1  # this owner's claim, taken again
        settled = first.settle_answered()  # without waiting: not answered, so neither published nor failed
        assert (settled.published, settled.retried, settled.parked) == (0, 0, 0)
        assert store.outbox_size() == 1 and store.outbox_parked(10) == ([], 0)
        assert OutboxPublisher(store, away, owner="me").send() == 1
    finally:
        away.close()


def test_the_confluent_producer_without_its_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confluent, "INSTALLED", False)
    with pytest.raises(ConfigError, match=r"confluent-kafka is not installed: pip install 'recovery\[confluent\]'"):
        ConfluentOutput(Settings(kafka_producer="confluent-kafka"))


@pytest.mark.timeout(300)
def test_closing_kafka_pythons_producer_with_the_broker_away_ends_its_sender_thread(
    kafka_libs: Path, tmp_path: Path
) -> None:
    """kafka-python's `close` flushes first and raises when the broker does not answer, before it stops its sender
    thread, which is not a daemon: the process then could not exit until the batches expired, two minutes later
    (a SIGTERM with the broker away took over 120 s in a CI run)."""
    broker = KafkaBroker(tmp_path / "kafka", *free_ports(2))
    broker.start()
    try:
        output = open_output(Settings(kafka_bootstrap_servers=broker.bootstrap_servers))
        assert isinstance(output, KafkaOutput)
        output.send("t", b"C1", b"v", ()).get(timeout=60)  # the topic's metadata known
        broker.stop()
        output.send("t", b"C1", b"w", ())  # a batch the broker will never answer
        sender = output._producer._sender
        with pytest.raises(BrokerError, match="Kafka producer close failed: KafkaTimeoutError"):
            output.close()
        sender.join(timeout=60)  # within the close bound when it is stopped, 120 s (delivery timeout) when not
        assert not sender.is_alive()
    finally:
        broker.stop()


def test_each_producer_gives_up_on_a_message_before_the_outbox_stops_waiting_for_it(kafka_bootstrap: str) -> None:
    """Else the outbox sends again a message its producer still holds, and both copies go out (next test)."""
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    output = open_output(settings)
    assert isinstance(output, KafkaOutput)
    try:
        assert output._producer.config["delivery_timeout_ms"] / 1000 < FLUSH_TIMEOUT_S
    finally:
        output.close()
    assert confluent.producer_config(settings)["message.timeout.ms"] / 1000 < FLUSH_TIMEOUT_S


def test_both_producers_are_idempotent(kafka_bootstrap: str) -> None:
    """The broker drops a batch a producer sends again after its answer was lost, instead of writing it twice."""
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    output = open_output(settings)
    assert isinstance(output, KafkaOutput)
    try:
        assert output._producer.config["enable_idempotence"] is True  # kafka-python's default, kept by our settings
        assert output._producer._transaction_manager is not None  # not turned off by a conflicting setting
    finally:
        output.close()
    assert confluent.producer_config(settings)["enable.idempotence"] is True


def test_an_error_of_librdkafkas_fatal_state_says_the_producer_must_be_replaced() -> None:
    """After an error its idempotence cannot recover from, librdkafka fails every send with `_FATAL`: the outbox
    reports it (`Settled.broken`) and the loop replaces the clients (tests/consumer/test_service.py)."""
    from confluent_kafka import KafkaError

    assert confluent.broker_error("send to t", KafkaError(KafkaError._FATAL)).fatal  # a send after it
    assert confluent.broker_error("send to t", KafkaError(KafkaError.INVALID_PRODUCER_EPOCH, fatal=True)).fatal
    fatal = confluent.broker_error("send to t", KafkaError(KafkaError.INVALID_RECORD, fatal=True))
    assert (fatal.fatal, fatal.retriable) == (True, True)  # the producer's state, not the message: never parked
    timed_out = confluent.broker_error("send to t", KafkaError(KafkaError._MSG_TIMED_OUT))
    assert (timed_out.fatal, timed_out.retriable) == (False, True)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("producer", ["kafka-python", "confluent-kafka"])
def test_a_message_sent_again_after_the_broker_was_away_goes_out_once(
    producer: str, kafka_libs: Path, tmp_path: Path
) -> None:
    """kafka-python's producer kept a message for 2 minutes, the outbox waited 30 s and sent it again: when the
    broker came back, both copies went out (232 repeats after the fault suite's 20 s broker stop). Now the producer
    gives up first, within the outbox's wait; librdkafka's, idempotent, goes on after the messages it gave up on."""
    broker = KafkaBroker(tmp_path / "kafka", *free_ports(2))
    broker.start()
    store = SqliteStore(tmp_path / "r.db")
    output = open_output(Settings(kafka_bootstrap_servers=broker.bootstrap_servers, kafka_producer=producer))
    try:
        output.send("t", b"C0", b"first", ()).get(timeout=60)  # the topic and its metadata known
        broker.stop()
        for n in range(3):
            store.outbox_add("t", f"C{n}", b"m%d" % n)
        store.commit()
        told: list[bool | None] = []  # what the producer says of its brokers, every second of the wait
        publisher = OutboxPublisher(
            store, output, owner="me", backoff_s=0.0, waiting=lambda: told.append(output.connected())
        )
        assert publisher.send() == 3
        settled = publisher.confirm()  # the outbox's own wait, with the broker away throughout
        assert (settled.published, settled.retried, settled.parked) == (0, 3, 0)
        # Either producer tells while it holds messages (librdkafka's in statistics served inside its flush).
        assert told and set(told[-5:]) == {False}, told
        broker.start()
        assert publisher.publish() == 3
        output.flush(FLUSH_TIMEOUT_S)  # what the producer may still hold goes out too
        assert len(read_all(broker.bootstrap_servers, ["t"])) == 1 + 3
    finally:
        with contextlib.suppress(BrokerError):
            output.close()
        store.close()
        broker.stop()


def test_the_confluent_consumer_without_its_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confluent_transport, "INSTALLED", False)
    with pytest.raises(ConfigError, match=r"'kafka_consumer' .* confluent-kafka is not installed: pip install"):
        confluent_transport.ConfluentTransport(Settings(kafka_consumer="confluent-kafka"), poll_records=10)
