"""The Kafka transport of the service loop, on kafka-python: a consumer group member on the events topic and a
producer for the outbox. Errors leave it as `BrokerError`."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPartition
from kafka import errors as kafka_errors
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.partitioner import DefaultPartitioner
from kafka.structs import OffsetAndMetadata

from recovery.config import Settings
from recovery.consumer.confluent import ConfluentOutput
from recovery.consumer.membership import JOIN_POLL_MS, JOIN_WAIT_S, Membership
from recovery.consumer.records import partition_of
from recovery.consumer.topics import create_topics
from recovery.consumer.transport import Rebalance, Record, TopicPartition, close_each, describe
from recovery.exceptions import BrokerError
from recovery.outbox import DELIVERY_TIMEOUT_S, Ack, Producer

logger = logging.getLogger("recovery.consumer")

PRODUCER_BATCH_BYTES = 256 * 1024
"""The outbox producer's batch per partition (kafka-python wakes its sender thread on every send once a partition
has more than one batch waiting: larger batches keep it asleep during a burst; see docs/operations.md)."""
REQUEST_TIMEOUT_S = 10.0
"""Bound on a blocking request to the broker (committed offsets, a synchronous commit): a broker that does not
answer is a failure like another (the step is read again later), never a wait that holds up a stop."""
CLOSE_TIMEOUT_S = 5.0
"""Bound on closing the clients (leaving the group, sending what the producer holds)."""

T = TypeVar("T")


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except KafkaError as exc:
        raise BrokerError(f"Kafka {what} failed: {describe(exc)}", retriable=retriable(exc)) from exc


REFUSED_FOR_GOOD = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.CorruptRecordError,
    kafka_errors.InvalidRecordError,
    kafka_errors.InvalidTimestampError,
    kafka_errors.PolicyViolationError,
    kafka_errors.UnsupportedForMessageFormatError,
)
"""The broker's (or the producer's) answers that sending the same message again cannot change: such a message is
parked. Any other failure is tried again later."""


def retriable(exc: BaseException | None) -> bool:
    """Whether sending the message again may succeed."""
    return not isinstance(exc, REFUSED_FOR_GOOD)


class KafkaAck:
    """A kafka-python future as an `Ack`: `get` raises `BrokerError`."""

    __slots__ = ("_future", "_what")

    def __init__(self, future: Any, what: str) -> None:
        self._future = future
        self._what = what

    @property
    def is_done(self) -> bool:
        return bool(self._future.is_done)

    @property
    def exception(self) -> BrokerError | None:
        exc: BaseException | None = self._future.exception
        if exc is None:
            return None
        return BrokerError(f"Kafka {self._what} failed: {describe(exc)}", retriable=retriable(exc))

    def failed(self) -> bool:
        return bool(self._future.failed())

    def get(self, timeout: float | None = None) -> Any:
        return _call(self._what, lambda: self._future.get(timeout=timeout))


class KafkaOutput:
    """A kafka-python producer as the outbox's `Producer`."""

    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> KafkaAck:
        future = _call(
            f"send to {topic}", lambda: self._producer.send(topic, key=key, value=value, headers=list(headers))
        )
        return KafkaAck(future, f"send to {topic}")

    def flush(self, timeout_s: float) -> None:
        _call("flush", lambda: self._producer.flush(timeout=timeout_s))

    def connected(self) -> bool | None:
        """While it holds batches: whether a connection of its sender is up (kafka-python's private state, read as
        `KafkaTransport.connected` reads its consumer's; None when it moved, or while it holds none)."""
        try:
            if not self._producer._accumulator.has_incomplete:  # a property
                return None
            client = self._producer._sender._client
            return any(client.connected(b.node_id) for b in client.cluster.brokers())
        except Exception:  # a private API that moved: do not guess
            return None

    def close(self) -> None:
        """Send what the producer holds, for CLOSE_TIMEOUT_S at most. kafka-python's `close` flushes first and
        raises when the broker does not answer, before it stops its sender thread; that thread is not a daemon,
        so the process could not exit until the batches expired (2 minutes). It is stopped here then; what it held
        is still in the outbox, published by the next start."""
        try:
            self._producer.close(timeout=CLOSE_TIMEOUT_S)
        except KafkaError as exc:
            sender = getattr(self._producer, "_sender", None)  # private: a release that moved it needs no help
            if sender is not None:
                sender.force_close()
                sender.join(CLOSE_TIMEOUT_S)
            raise BrokerError(f"Kafka producer close failed: {describe(exc)}") from exc


class CustomerPartitioner(DefaultPartitioner):  # type: ignore[misc]  # kafka-python has no types
    """kafka-python's default partitioner (murmur2 over the key, as Java's client) through `partition_of`'s memory:
    the outbox's keys are customer ids the loop has mostly hashed already, and kafka-python's partitioner was a
    quarter of its producer's `send` (docs/operations.md, "Capacity"). A topic's partitions are numbered from 0."""

    def partition(
        self, topic: str, key: Any, serialized_key: bytes | None, value: Any, serialized_value: Any, cluster: Any
    ) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is not None and partitions:
            try:
                return partition_of(serialized_key.decode(), len(partitions))
            except UnicodeDecodeError:
                pass  # not a customer id: hashed as bytes, below
        # No key (spread), a topic not known (the default's error), or bytes that are not text.
        return int(super().partition(topic, key, serialized_key, value, serialized_value, cluster))


class Output(Producer, Protocol):
    """The outbox's producer, closed with the transport."""

    def connected(self) -> bool | None:
        """While it holds messages, whether a broker connection is up; None when it cannot tell."""
        ...

    def close(self) -> None: ...


def open_output(settings: Settings) -> Output:
    """The producer `settings.kafka_producer` names: kafka-python's (the default) or confluent-kafka's."""
    if settings.kafka_producer == "confluent-kafka":
        return ConfluentOutput(settings)
    config = settings.kafka_config()
    producer = _call(
        "producer start",
        lambda: KafkaProducer(
            acks="all",
            linger_ms=5,
            partitioner=CustomerPartitioner(),
            retries=5,
            batch_size=PRODUCER_BATCH_BYTES,
            max_block_ms=int(REQUEST_TIMEOUT_S * 1000),
            # Answered within the outbox's wait (its default is 2 minutes; it must exceed the request timeout).
            delivery_timeout_ms=int(DELIVERY_TIMEOUT_S * 1000),
            request_timeout_ms=int(REQUEST_TIMEOUT_S * 1000),
            **config,
        ),
    )
    return KafkaOutput(producer)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records rebalances for the loop's thread (kafka-python calls these inside `poll`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked = False
        self._assigned: frozenset[TopicPartition] | None = None

    def on_partitions_revoked(self, revoked: Any) -> None:
        with self._lock:
            self._revoked = True

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self._lock:
            self._assigned = frozenset(TopicPartition(tp.topic, tp.partition) for tp in assigned)

    def take(self) -> Rebalance | None:
        with self._lock:
            if not self._revoked and self._assigned is None:
                return None
            found = Rebalance(self._revoked, self._assigned)
            self._revoked, self._assigned = False, None
            return found


def ensure_topics(settings: Settings) -> None:
    """Create the service's topics (`topic_partitions` each) when missing, and wait for their leaders."""
    _call("topic set-up", lambda: create_topics(settings))


class KafkaTransport:
    """`recovery serve`'s clients: creates the topics it needs (`topic_partitions` each) when missing, then joins
    the group `group_id` on `topic_events` (auto-commit off, from the earliest offset)."""

    def __init__(self, settings: Settings, *, poll_records: int) -> None:
        self.settings = settings
        config = settings.kafka_config()
        ensure_topics(settings)
        self._output = open_output(settings)
        session_ms = int(settings.kafka_session_timeout_s * 1000)
        try:
            self._consumer = _call(
                "consumer start",
                lambda: KafkaConsumer(
                    group_id=settings.group_id,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    max_poll_records=poll_records,
                    session_timeout_ms=session_ms,
                    heartbeat_interval_ms=session_ms // 3,
                    # Every fetch answers for every partition. In an incremental fetch session (KIP-227) the broker
                    # leaves out the partitions that did not change, and kafka-python 3.0.12 sets a partition's
                    # high watermark only from an answer it takes: one it set aside (a seek to the beginning while
                    # the first fetch was out, as on every assignment with nothing committed) was the only answer
                    # an empty partition ever got. Its high watermark stayed unknown, the partition counted as
                    # lagging for good and the barrier held every other partition behind it.
                    enable_incremental_fetch_sessions=False,
                    **config,
                ),
            )
        except BrokerError:
            self._output.close()
            raise
        self._listener = _Listener()
        # The topic's partitions known before the first join: the group's first assignment has them all, instead of
        # none and a second round when the metadata comes (a round kafka-python may leave unapplied: membership.py).
        try:
            _call("metadata", lambda: self._consumer.partitions_for_topic(settings.topic_events))
        except BrokerError:
            self.close()
            raise
        self._consumer.subscribe([settings.topic_events], listener=self._listener)
        self._membership = Membership(self._consumer)

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]:
        """One poll; while the group member is joining, polls again, waiting at least JOIN_POLL_MS each time, until
        it is stable, records come or JOIN_WAIT_S pass (see membership.py)."""
        give_up = time.monotonic() + JOIN_WAIT_S
        while True:
            release_parked(self._consumer)
            polled: Mapping[TopicPartition, Sequence[Record]] = _call(
                "poll", functools.partial(self._consumer.poll, timeout_ms=timeout_ms, max_records=max_records)
            )
            if polled or self._membership.stable() or time.monotonic() > give_up:
                return polled
            timeout_ms = max(timeout_ms, JOIN_POLL_MS)

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> Ack:
        return self._output.send(topic, key, value, headers)

    def flush(self, timeout_s: float) -> None:
        self._output.flush(timeout_s)

    def rebalance(self) -> Rebalance | None:
        return self._listener.take()

    def partitions(self) -> int:
        found = _call("metadata", lambda: self._consumer.partitions_for_topic(self.settings.topic_events))
        return len(found or ())

    def committed(self, tp: TopicPartition) -> int | None:
        timeout_ms = int(REQUEST_TIMEOUT_S * 1000)
        found = _call("committed offsets", lambda: self._consumer.committed(KafkaPartition(*tp), timeout_ms=timeout_ms))
        return None if found is None else int(found)

    def seek(self, tp: TopicPartition, offset: int | None) -> None:
        partition = KafkaPartition(*tp)
        if offset is None:
            _call("seek", lambda: self._consumer.seek_to_beginning(partition))
        else:
            _call("seek", lambda: self._consumer.seek(partition, offset))

    def pause(self, tp: TopicPartition) -> None:
        self._consumer.pause(KafkaPartition(*tp))

    def resume(self, tp: TopicPartition) -> None:
        self._consumer.resume(KafkaPartition(*tp))

    def lagging(self, tp: TopicPartition) -> bool:
        partition = KafkaPartition(*tp)
        highwater = self._consumer.highwater(partition)
        if highwater is None:
            return True
        position = self._consumer.position(partition)
        return position is None or position < highwater

    def lag(self, tp: TopicPartition) -> int | None:
        partition = KafkaPartition(*tp)
        highwater = self._consumer.highwater(partition)
        position = self._consumer.position(partition) if highwater is not None else None
        return None if highwater is None or position is None else max(highwater - position, 0)

    def commit_async(self, offsets: Mapping[TopicPartition, int]) -> KafkaAck:
        kafka_offsets = _kafka_offsets(offsets)
        return KafkaAck(_call("offset commit", lambda: self._consumer.commit_async(kafka_offsets)), "offset commit")

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        kafka_offsets = _kafka_offsets(offsets)
        timeout_ms = int(REQUEST_TIMEOUT_S * 1000)
        _call("offset commit", lambda: self._consumer.commit(kafka_offsets, timeout_ms=timeout_ms))

    def connected(self, *, waiting: bool = False) -> bool | None:
        """As the consumer's connections are (kafka-python's I/O thread keeps them, live); while the outbox waits for
        answers (`waiting`), as the producer tells."""
        held = self._output.connected() if waiting else None
        if held is not None:
            return held
        try:
            client = self._consumer._client
            return any(client.connected(b.node_id) for b in client.cluster.brokers())
        except Exception:  # a private API that moved: do not guess
            return None

    def close(self) -> None:
        timeout_ms = int(CLOSE_TIMEOUT_S * 1000)
        close_each((lambda: self._consumer.close(autocommit=False, timeout_ms=timeout_ms), self._output.close))


def release_parked(consumer: Any) -> None:
    """kafka-python 3.0.12 parks the records it fetched for a paused partition and gives them back once the
    partition is resumed, but only while its in-line slot (`_next_partition_records`) is None. A drained one left
    in the slot keeps them parked; while parked, the partition is never fetched again, and the loop stops for good
    (bench.scale: every poll "nothing fetchable", the resumed partition holding the others back). The slot can
    drain after the resume (another partition's records still being taken then), so this runs before every poll,
    not at the resume alone. Clearing a drained slot is what the client does itself when it takes the next
    fetch."""
    try:
        fetcher = consumer._fetcher
        slot = fetcher._next_partition_records
        if slot is not None and not slot:
            fetcher._next_partition_records = None
    except AttributeError:  # a kafka-python release that moved it: nothing to release
        pass


def _kafka_offsets(offsets: Mapping[TopicPartition, int]) -> dict[KafkaPartition, OffsetAndMetadata]:
    return {KafkaPartition(*tp): OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
