"""An in-memory broker and transport for the service loop, and a store that keeps a journal of what it made durable:
the loop runs without Kafka, deterministically, with failures injected at any step."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recovery.consumer import TopicPartition, partition_of
from recovery.consumer.records import DLQ_HEADERS
from recovery.consumer.transport import Rebalance
from recovery.exceptions import BrokerError, StoreError
from recovery.store.base import Store


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class Done:
    """An `Ack`: answered (with `error` when refused), or not yet when made with `done=False`."""

    def __init__(self, error: BaseException | None = None, *, done: bool = True) -> None:
        self.exception = error
        self.is_done = done

    def failed(self) -> bool:
        return self.exception is not None

    def get(self, timeout: float | None = None) -> Any:
        if self.exception is not None:
            raise BrokerError(f"refused: {self.exception}") from self.exception
        return None


@dataclass
class MemoryBroker:
    """Topics as lists of messages per partition, and one consumer group's committed offsets."""

    partitions: int = 3
    topics: dict[str, list[list[Message]]] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    _clock: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def log(self, topic: str) -> list[list[Message]]:
        return self.topics.setdefault(topic, [[] for _ in range(self.partitions)])

    def produce(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> Message:
        log = self.log(topic)
        partition = 0 if key is None else partition_of(key.decode(), len(log))
        message = Message(topic, partition, len(log[partition]), next(self._clock), key, value, tuple(headers))
        log[partition].append(message)
        return message

    def produce_events(self, topic: str, events: Iterable[dict[str, Any]]) -> None:
        """Each event keyed as producers do: by customer id, or by outage id for a scope event."""
        for event in events:
            key = event.get("customer_id") or event["data"].get("outage_id") or event["id"]
            self.produce(topic, str(key).encode(), json.dumps(event).encode())

    def messages(self, topic: str) -> list[Message]:
        return [m for partition in self.log(topic) for m in partition]

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        return {TopicPartition(topic, n): len(p) for n, p in enumerate(self.log(topic)) if p}


class MemoryTransport:
    """A member of the group on `topic` that owns `assigned` (all partitions by default). Each poll fetches at most
    `fetch` records per partition (the fetcher's unevenness), up to `max_records` in all. A test changes the
    assignment with `assign` (delivered at the next poll, as a rebalance), refuses the next calls of a method with
    `fail`, and checks each offset commit with `on_commit` (called before the broker records it)."""

    def __init__(
        self,
        broker: MemoryBroker,
        topic: str,
        *,
        fetch: int = 1_000_000,
        fetch_by_partition: dict[int, int] | None = None,
        assigned: Iterable[int] | None = None,
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.fetch = fetch
        self.fetch_by_partition = fetch_by_partition or {}
        """Records per poll of some partitions (others: `fetch`): an uneven fetcher."""
        self.positions: dict[TopicPartition, int] = {}
        self.polls: list[tuple[int, int]] = []
        """Every poll: (its timeout, the records it returned)."""
        self.paused: set[TopicPartition] = set()
        self.failures: dict[str, list[BaseException]] = {}
        self.raising: dict[str, list[BaseException]] = {}
        self.held: list[tuple[Done, dict[TopicPartition, int]]] = []
        """Asynchronous commits not answered yet (while `hold_commits`), with their offsets."""
        self.hold_commits = False
        self.answering = True
        """False: the producer takes messages and never answers (nor delivers) them, its flush times out."""
        self.broken: BrokerError | None = None
        """A producer in a fatal state (librdkafka's): every send raises this."""
        self.on_commit: Callable[[Mapping[TopicPartition, int]], None] | None = None
        self.commits: list[dict[TopicPartition, int]] = []
        self.closed = False
        first = self._all() if assigned is None else frozenset(TopicPartition(topic, n) for n in assigned)
        self._pending: Rebalance | None = Rebalance(False, first)
        self._taken: Rebalance | None = None
        self.assigned: frozenset[TopicPartition] = frozenset()

    def _all(self) -> frozenset[TopicPartition]:
        return frozenset(TopicPartition(self.topic, n) for n in range(len(self.broker.log(self.topic))))

    def assign(self, partitions: Iterable[int] | None = None) -> None:
        """A rebalance at the next poll: the current partitions are revoked, these assigned (None: all)."""
        wanted = self._all() if partitions is None else frozenset(TopicPartition(self.topic, n) for n in partitions)
        self._pending = Rebalance(True, wanted)

    def fail(self, method: str, *errors: BaseException) -> None:
        """The next calls of `method` raise these errors (a send or commit_async answers with them instead)."""
        self.failures.setdefault(method, []).extend(errors)

    def refuse(self, method: str, *errors: BaseException) -> None:
        """The next calls of `send` or `commit_async` raise these errors (rather than answer with them)."""
        self.raising.setdefault(method, []).extend(errors)

    def release(self) -> None:
        """Answer the held commits: the broker records them now."""
        held, self.held = self.held, []
        for ack, offsets in held:
            self.commit(offsets)
            ack.is_done = True

    def _failure(self, method: str) -> BaseException | None:
        raising = self.raising.get(method)
        if raising:
            raise raising.pop(0)
        queued = self.failures.get(method)
        return queued.pop(0) if queued else None

    # ------------------------------------------------------------------------------------------- Transport

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Message]]:
        error = self._failure("poll")
        if error is not None:
            raise error
        if self._pending is not None:
            self._taken, self._pending = self._pending, None
            self.assigned = self._taken.assigned or frozenset()
            self.paused &= self.assigned
            for tp in self.assigned:
                self.positions.setdefault(tp, self.broker.committed.get(tp, 0))
        out: dict[TopicPartition, list[Message]] = {}
        left = max_records
        log = self.broker.log(self.topic)
        for tp in sorted(self.assigned):
            if tp in self.paused or left <= 0:
                continue
            position = self.positions[tp]
            fetch = self.fetch_by_partition.get(tp.partition, self.fetch)
            taken = log[tp.partition][position : position + min(fetch, left)]
            if taken:
                out[tp] = taken
                self.positions[tp] = position + len(taken)
                left -= len(taken)
        self.polls.append((timeout_ms, max_records - left))
        return out

    def rebalance(self) -> Rebalance | None:
        taken, self._taken = self._taken, None
        return taken

    def partitions(self) -> int:
        return len(self.broker.log(self.topic))

    def committed(self, tp: TopicPartition) -> int | None:
        error = self._failure("committed")
        if error is not None:
            raise error
        return self.broker.committed.get(tp)

    def seek(self, tp: TopicPartition, offset: int | None) -> None:
        self.positions[tp] = offset or 0

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(tp)

    def resume(self, tp: TopicPartition) -> None:
        self.paused.discard(tp)

    def lagging(self, tp: TopicPartition) -> bool:
        return self.positions.get(tp, 0) < len(self.broker.log(self.topic)[tp.partition])

    def lag(self, tp: TopicPartition) -> int | None:
        return len(self.broker.log(self.topic)[tp.partition]) - self.positions.get(tp, 0)

    def commit_async(self, offsets: Mapping[TopicPartition, int]) -> Done:
        error = self._failure("commit_async")
        if error is not None:
            return Done(error)
        if self.hold_commits:
            ack = Done(done=False)
            self.held.append((ack, dict(offsets)))
            return ack
        self.commit(offsets)
        return Done()

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        error = self._failure("commit")
        if error is not None:
            raise error
        if self.on_commit is not None:
            self.on_commit(offsets)
        self.commits.append(dict(offsets))
        self.broker.committed.update(offsets)

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> Done:
        error = self._failure("send")
        if error is not None:
            return Done(error)
        if self.broken is not None:
            raise self.broken
        if not self.answering:
            return Done(done=False)
        self.broker.produce(topic, key, value, headers)
        return Done()

    def flush(self, timeout_s: float) -> None:
        error = self._failure("flush")
        if error is not None:
            raise error
        if not self.answering:
            raise BrokerError("Kafka flush failed: KafkaTimeoutError: Timeout waiting for future")

    def connected(self, *, waiting: bool = False) -> bool | None:
        return not self.closed

    def close(self) -> None:
        self.closed = True


class JournalStore:
    """A store that keeps a journal of what its commits made durable: the ids given to the ledger and the DLQ
    records queued (by their source partition and offset). `fail("commit")` makes the next commit fail as a store
    failure would, with the transaction still open (the loop rolls it back); `fail("claim_streams")` the next claim
    of partitions."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.durable_ids: set[str] = set()
        self.durable_dlq: set[tuple[int, int]] = set()
        self.commits = 0
        self.retried = 0
        self.parked: list[tuple[int, str]] = []
        self._ids: list[str] = []
        self._dlq: list[tuple[int, int]] = []
        self._failures: dict[str, int] = {}

    def fail(self, method: str, times: int = 1) -> None:
        self._failures[method] = self._failures.get(method, 0) + times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def add_event(self, event_id: str, ts: float) -> bool:
        self._ids.append(event_id)
        return self._store.add_event(event_id, ts)

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        found = dict(headers)
        if DLQ_HEADERS[2] in found:
            self._dlq.append((int(found[DLQ_HEADERS[2]]), int(found[DLQ_HEADERS[3]])))
        self._store.outbox_add(topic, key, value, headers)

    def _failed(self, method: str) -> None:
        if self._failures.get(method):
            self._failures[method] -= 1
            raise StoreError(f"injected: {method} failed")

    def claim_streams(self, streams: list[str]) -> dict[str, int]:
        self._failed("claim_streams")
        return self._store.claim_streams(streams)

    def commit(self) -> None:
        self._failed("commit")
        self._store.commit()
        self.commits += 1
        self.durable_ids.update(self._ids)
        self.durable_dlq.update(self._dlq)
        self._ids, self._dlq = [], []

    def rollback(self) -> None:
        self._ids, self._dlq = [], []
        self._store.rollback()

    def outbox_retry(self, seqs: list[int], not_before: float, error: str) -> None:
        self.retried += len(seqs)
        self._store.outbox_retry(seqs, not_before, error)

    def outbox_park(self, seq: int, at: float, error: str) -> None:
        self.parked.append((seq, error))
        self._store.outbox_park(seq, at, error)
