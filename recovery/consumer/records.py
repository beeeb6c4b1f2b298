"""What the service loop holds: polled records, scope items, its statistics, and the rebalance listener."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.partitioner.default import murmur2

from recovery.events import Event

DLQ_HEADERS = ("recovery-error", "recovery-source-topic", "recovery-source-partition", "recovery-source-offset")
PAUSE_ABOVE = 20_000
"""Buffered records per partition above which fetching from it pauses (bounds memory while merging)."""
RESUME_BELOW = 5_000
POLL_RECORDS = 5_000
BROKER_CHECK_S = 5.0
STEP_BUDGET_S = 2.0
BARRIER_POLL_MS = 20
POLLS_PER_STEP = 8
PRODUCER_BATCH_BYTES = 256 * 1024
"""The outbox producer's batch per partition. kafka-python wakes its sender thread on every send once a partition
has more than one batch waiting: with its default 16 KB, measured, 18,700 wake-ups for 18,850 effects sent in a
burst, and twice the CPU per send."""


@functools.lru_cache(maxsize=1 << 18)
def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's and kafka-python's) gives a key."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


@dataclass(slots=True)
class Pending:
    """A polled record, decoded once."""

    record: Any
    ts: float
    event: Event | None
    error: str | None


@dataclass(slots=True)
class ScopeItem:
    """A logged scope event still to be applied to the customers of one owned partition."""

    tp: TopicPartition
    seq: int
    ts: float
    event: Event


Item = Pending | ScopeItem


@dataclass
class ServiceStats:
    consumed: Counter[str] = field(default_factory=Counter)  # by result: processed, duplicate, invalid, forwarded
    dlq: Counter[str] = field(default_factory=Counter)  # by reason kind
    effects: Counter[str] = field(default_factory=Counter)  # by "kind playbook"
    batches: int = 0
    store_errors: int = 0
    broker_errors: int = 0
    rebalances: int = 0
    commit_failures: int = 0  # offset commits the broker refused (their events come again and are deduplicated)


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records rebalances for the loop's thread to act on (the callbacks run on kafka-python's I/O thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.revoked = False
        self._assigned: set[TopicPartition] | None = None

    def on_partitions_revoked(self, revoked: Any) -> None:
        with self._lock:
            self.revoked = True

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self._lock:
            self._assigned = set(assigned)

    def take_assignment(self) -> set[TopicPartition] | None:
        with self._lock:
            assigned, self._assigned = self._assigned, None
            return assigned
