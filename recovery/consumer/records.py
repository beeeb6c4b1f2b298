"""What the service loop holds: polled records, scope items, its statistics."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kafka.partitioner.default import murmur2

from recovery.events import Event

if TYPE_CHECKING:
    from recovery.consumer.transport import Record, TopicPartition

DLQ_HEADERS = ("recovery-error", "recovery-source-topic", "recovery-source-partition", "recovery-source-offset")
PAUSE_ABOVE = 20_000
"""Buffered records per partition above which fetching from it pauses (bounds memory while merging)."""
RESUME_BELOW = 5_000
POLL_RECORDS = 5_000
FETCH_STALL_S = 30.0
"""Polls bringing nothing this long while the broker holds records for a partition nobody paused: the Kafka client
is taken as stuck and replaced (seen with kafka-python 3.0.12 under load, docs/operations.md, "Capacity")."""
STEP_BUDGET_S = 2.0
BARRIER_POLL_MS = 20
POLLS_PER_STEP = 8


@functools.lru_cache(maxsize=1 << 18)
def key_hash(key: str) -> int:
    """murmur2 of a key, as Kafka's default partitioner (Java's and kafka-python's) takes it; remembered for the
    recent keys (customer ids), whatever the partition count of the topic they go to."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key."""
    return key_hash(key) % partitions


@dataclass(slots=True)
class Pending:
    """A polled record, decoded once."""

    record: Record
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
    loop_errors: int = 0  # steps that failed otherwise (rolled back and read again)
