"""The service loop's one door to Kafka: what it asks of a consumer group member and of a producer.

`KafkaTransport` (recovery/consumer/kafka.py) is the real one, on kafka-python. The loop sees only this protocol,
so tests run it on an in-memory transport as well (reorderings, rebalances, failures at any step), without a
broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from recovery.exceptions import BrokerError
from recovery.outbox import Ack, Producer

logger = logging.getLogger("recovery.consumer")


class TopicPartition(NamedTuple):
    """A partition of a topic (equal to, and hashed as, kafka-python's own `TopicPartition`)."""

    topic: str
    partition: int


class Record(Protocol):
    """A consumed message, as kafka-python's `ConsumerRecord` has it."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Rebalance:
    """What changed in the group since the last poll: the partitions were taken away (`revoked`), and/or these
    are now ours (`assigned`, None when no new assignment came yet)."""

    revoked: bool
    assigned: frozenset[TopicPartition] | None


class Transport(Producer, Protocol):
    """A member of the consumer group on the events topic (auto-commit off), and a producer."""

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]:
        """Records fetched since the last poll, by partition, in offset order. A rebalance happens inside a poll:
        ask `rebalance()` after each one (records polled with an assignment that changed are to be dropped)."""
        ...

    def rebalance(self) -> Rebalance | None:
        """The rebalance that happened in the polls since the last call, if any (taken: the next call says None)."""
        ...

    def partitions(self) -> int:
        """How many partitions the events topic has."""
        ...

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of `tp` (None: nothing committed yet)."""
        ...

    def seek(self, tp: TopicPartition, offset: int | None) -> None:
        """Fetch `tp` from `offset` on (None: from the beginning)."""
        ...

    def pause(self, tp: TopicPartition) -> None: ...

    def resume(self, tp: TopicPartition) -> None: ...

    def lagging(self, tp: TopicPartition) -> bool:
        """More records exist on the broker than were fetched so far (True when it is not known yet)."""
        ...

    def lag(self, tp: TopicPartition) -> int | None:
        """Records on the broker not fetched yet (None: not known yet)."""
        ...

    def commit_async(self, offsets: Mapping[TopicPartition, int]) -> Ack:
        """Commit the offsets (of the next record to read, per partition) without waiting."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the offsets and wait for the broker."""
        ...

    def connected(self, *, waiting: bool = False) -> bool | None:
        """Is a broker connection up? (None: cannot tell.) `waiting`: asked while the outbox waits for the producer's
        answers, past the first second: then the producer's own view comes first (`Output.connected`)."""
        ...

    def close(self) -> None:
        """Close the consumer and the producer. Never raises: what fails to close is logged (`close_each`)."""
        ...


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def close_each(closes: Iterable[Callable[[], None]]) -> None:
    """Call each of a transport's closes, whatever the others do: closing a broken client must not hide the error
    that broke it. A `BrokerError` says what failed already (a broker away, a producer that no longer answers, as
    the loop expects after a broker failure): one warning line. Anything else is logged with its traceback."""
    for close in closes:
        try:
            close()
        except BrokerError as exc:
            logger.warning("closing a Kafka client failed", extra={"error": str(exc)})
        except Exception:
            logger.exception("closing a Kafka client failed")


__all__ = ["Ack", "Rebalance", "Record", "TopicPartition", "Transport", "close_each", "describe"]
