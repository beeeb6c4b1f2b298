"""The service loop's transport on confluent-kafka (librdkafka, in C), chosen with `kafka_consumer: confluent-kafka`
(RECOVERY_KAFKA_CONSUMER); kafka-python's (`kafka.py`) stays the default.

Why it exists: kafka-python parses every record in Python and hands each fetch and coordinator request to its I/O
thread, waiting for it at every poll; librdkafka fetches and parses on threads of its own (docs/operations.md,
"Capacity"). The topics are still set up with kafka-python's admin client, and the outbox's producer is the one
`kafka_producer` names.

What the loop relies on, and how librdkafka gives it:
- One group protocol for both clients (eager `range,roundrobin`, as kafka-python's): instances of either kind
  share a group. A rebalance's callbacks run inside `consume`, on the loop's thread; librdkafka applies the new
  assignment itself when the callback returns, from the committed offsets.
- `pause` drops what librdkafka prefetched for the partition; `resume` fetches again from the position the loop
  was given (so nothing is skipped and nothing comes twice).
- Positions: the offset after the last record polled, or where a `seek` put it. The end of a partition is the high
  watermark of its last fetch (no request of its own); `lagging` says True while either is not known.
- Commits: asynchronous ones are answered through `on_commit`, served in `consume`, in the order they were sent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from recovery.config import Settings
from recovery.consumer.confluent import CLOSE_TIMEOUT_S, INSTALLED, Answer, broker_error, client_config, not_installed
from recovery.consumer.kafka import REQUEST_TIMEOUT_S, ensure_topics, open_output
from recovery.consumer.transport import Rebalance, Record, TopicPartition, close_each, describe
from recovery.exceptions import BrokerError
from recovery.outbox import Ack

if INSTALLED:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as ConfluentPartition

logger = logging.getLogger("recovery.consumer")

STATISTICS_MS = 5_000
"""How often librdkafka reports its brokers' states (`connected`; the loop asks once a step)."""


class Consumed(NamedTuple):
    """A consumed message (librdkafka's `Message` has methods where the loop reads fields)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


class CommitAck(Answer):
    """An asynchronous offset commit as an `Ack`: settled by librdkafka's `on_commit`, served in `consume`."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("offset commit")

    def get(self, timeout: float | None = None) -> None:
        """The commit's answer, if it came (nothing waits here: answers are served by the loop's polls)."""
        if not self.is_done:
            raise BrokerError("Kafka offset commit failed: not answered yet", retriable=True)
        if self.error is not None:
            raise self.error


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except KafkaException as exc:
        raise broker_error(what, exc.args[0]) from exc
    except RuntimeError as exc:  # "Consumer closed"
        raise BrokerError(f"Kafka {what} failed: {describe(exc)}") from exc


class ConfluentTransport:
    """`recovery serve`'s clients on librdkafka: creates the topics it needs when missing, then joins the group
    `group_id` on `topic_events` (auto-commit off, from the earliest offset)."""

    def __init__(self, settings: Settings, *, poll_records: int) -> None:
        if not INSTALLED:
            raise not_installed("kafka_consumer")
        self._topic = settings.topic_events
        session_ms = int(settings.kafka_session_timeout_s * 1000)
        config = {
            **client_config(settings, "kafka_consumer"),
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range,roundrobin",
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": session_ms // 3,
            "on_commit": self._committed,
            "error_cb": self._error,
            "statistics.interval.ms": STATISTICS_MS,
            "stats_cb": self._statistics,
        }
        ensure_topics(settings)
        self._output = open_output(settings)
        try:
            self._consumer = _call("consumer start", Consumer, config)
        except BrokerError:
            self._output.close()
            raise
        self._revoked = False
        self._assigned: frozenset[TopicPartition] | None = None
        self._positions: dict[TopicPartition, int] = {}
        """The offset of the next record the loop reads, per partition (not there: from the committed offset)."""
        self._commits: deque[CommitAck] = deque()
        self._fatal: BrokerError | None = None
        self._connected: bool | None = None
        self._reported: set[str] = set()
        """The kinds of client error logged: one line each until a broker is up again."""
        _call(
            "subscribe",
            self._consumer.subscribe,
            [self._topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )

    # librdkafka's callbacks, all served inside `consume` on the loop's thread.

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        self._assigned = frozenset(TopicPartition(p.topic, p.partition) for p in partitions)
        self._positions.clear()
        self._connected = True  # the group's coordinator answered (the statistics come every STATISTICS_MS only)

    def _on_revoke(self, _consumer: Any, _partitions: list[Any]) -> None:
        self._revoked = True
        self._positions.clear()

    def _committed(self, error: Any, _partitions: list[Any] | None) -> None:
        if not self._commits:  # none in flight (a synchronous commit is answered by its call, not here)
            return
        self._commits.popleft().settle(error, None)

    def _statistics(self, text: str) -> None:
        """librdkafka's statistics: whether any broker connection is up (its bootstrap and coordinator entries
        included; the states are librdkafka's, "UP" when usable)."""
        try:
            brokers = json.loads(text).get("brokers", {})
            self._connected = any(broker.get("state") == "UP" for broker in brokers.values())
        except (ValueError, AttributeError):
            self._connected = None
        if self._connected:
            self._reported.clear()

    def _error(self, error: Any) -> None:
        if error.fatal():
            self._fatal = broker_error("consumer", error)
        if error.name() not in self._reported:  # librdkafka reports a broker away at every try to connect again
            self._reported.add(error.name())
            logger.warning("Kafka client error", extra={"error": f"{error.name()}: {error.str()}"})

    # The transport.

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]:
        """What librdkafka holds, up to `max_records`; when it holds nothing, waits up to `timeout_ms` for the first
        message only (its `consume` would wait the whole timeout for `max_records`)."""
        consumer = self._consumer
        messages = _call("poll", consumer.consume, max_records, 0)
        if not messages and timeout_ms > 0:
            first = _call("poll", consumer.poll, timeout_ms / 1000)
            if first is not None:
                messages = [first, *_call("poll", consumer.consume, max_records - 1, 0)]
        if self._fatal is not None:
            raise self._fatal
        by_partition: dict[int, list[Record]] = {}  # one topic is subscribed: keyed by partition until the end
        topic = self._topic
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise broker_error("poll", error)
            partition = message.partition()
            records = by_partition.get(partition)
            if records is None:
                records = by_partition[partition] = []
            records.append(
                Consumed(topic, partition, message.offset(), message.timestamp()[1], message.key(), message.value())
            )
        polled: dict[TopicPartition, list[Record]] = {}
        positions = self._positions
        for partition, records in by_partition.items():
            tp = TopicPartition(topic, partition)
            polled[tp] = records
            positions[tp] = records[-1].offset + 1
        return polled

    def rebalance(self) -> Rebalance | None:
        if not self._revoked and self._assigned is None:
            return None
        found = Rebalance(self._revoked, self._assigned)
        self._revoked, self._assigned = False, None
        return found

    def partitions(self) -> int:
        metadata = _call("metadata", self._consumer.list_topics, self._topic, timeout=REQUEST_TIMEOUT_S)
        topic = metadata.topics.get(self._topic)
        return 0 if topic is None or topic.error is not None else len(topic.partitions)

    def committed(self, tp: TopicPartition) -> int | None:
        found = _call(
            "committed offsets", self._consumer.committed, [ConfluentPartition(*tp)], timeout=REQUEST_TIMEOUT_S
        )
        offset = int(found[0].offset)
        return None if offset < 0 else offset

    def seek(self, tp: TopicPartition, offset: int | None) -> None:
        _call("seek", self._consumer.seek, ConfluentPartition(*tp, OFFSET_BEGINNING if offset is None else offset))
        if offset is None:
            self._positions.pop(tp, None)
        else:
            self._positions[tp] = offset

    def pause(self, tp: TopicPartition) -> None:
        _call("pause", self._consumer.pause, [ConfluentPartition(*tp)])

    def resume(self, tp: TopicPartition) -> None:
        _call("resume", self._consumer.resume, [ConfluentPartition(*tp)])

    def lagging(self, tp: TopicPartition) -> bool:
        lag = self.lag(tp)
        return lag is None or lag > 0

    def lag(self, tp: TopicPartition) -> int | None:
        try:
            low, high = (int(n) for n in self._consumer.get_watermark_offsets(ConfluentPartition(*tp), cached=True))
        except (KafkaException, RuntimeError, TypeError):  # TypeError: None, the partition not known yet
            return None
        if high < 0:
            return None
        position = self._positions.get(tp)
        if position is None:  # nothing read yet, from the beginning: where the partition starts
            if low < 0:
                return None
            position = low
        return max(high - position, 0)

    def commit_async(self, offsets: Mapping[TopicPartition, int]) -> Ack:
        ack = CommitAck()
        _call("offset commit", self._consumer.commit, offsets=_confluent_offsets(offsets), asynchronous=True)
        self._commits.append(ack)
        return ack

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        _call("offset commit", self._consumer.commit, offsets=_confluent_offsets(offsets), asynchronous=False)

    def connected(self, *, waiting: bool = False) -> bool | None:
        """As the consumer's last statistics had it, or True since an assignment came (None before either). While
        the outbox waits for answers (`waiting`), as the producer tells: the consumer's statistics are served inside
        a poll, and none runs in that wait, where a step meets an outage first; the producer's errors inside its
        flush."""
        held = self._output.connected() if waiting else None
        return self._connected if held is None else held

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> Ack:
        return self._output.send(topic, key, value, headers)

    def flush(self, timeout_s: float) -> None:
        self._output.flush(timeout_s)

    def close(self) -> None:
        close_each((self._close_consumer, self._output.close))

    def _close_consumer(self) -> None:
        """librdkafka's close leaves the group. With the broker away and the group session timing out as the close
        began, it waited for a coordinator that never came: a SIGTERM did not stop the service in 120 s (a CI run).
        Bounded at `CLOSE_TIMEOUT_S`: a close not over by then goes on in a daemon thread, gone with the process."""
        failed: list[BaseException] = []

        def close() -> None:
            try:
                self._consumer.close()
            except BaseException as exc:  # said on the caller's thread
                failed.append(exc)

        closing = threading.Thread(target=close, name="recovery-consumer-close", daemon=True)
        closing.start()
        closing.join(CLOSE_TIMEOUT_S)
        if closing.is_alive():
            raise BrokerError(f"Kafka consumer close failed: not over within {CLOSE_TIMEOUT_S:g} s (the broker away?)")
        if failed:
            raise failed[0]


def _confluent_offsets(offsets: Mapping[TopicPartition, int]) -> list[Any]:
    return [ConfluentPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]


__all__ = ["ConfluentTransport", "Consumed"]
