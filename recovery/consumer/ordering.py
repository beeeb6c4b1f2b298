"""The event-time order of the service loop: the owned partitions' records merged by `occurred_at` with the scope
events to apply to them (`Merge`), and the scope log's watermark barrier across instances (`Barrier`)."""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from recovery.consumer.records import Item, Pending, ScopeItem, partition_of
from recovery.consumer.transport import TopicPartition
from recovery.events import Event
from recovery.exceptions import EventError
from recovery.store.base import ScopeLog

logger = logging.getLogger("recovery.consumer")

Lagging = Callable[[TopicPartition], bool]
"""Whether the broker holds records of a partition not fetched yet (the transport's `lagging`)."""


@dataclass(frozen=True)
class MergeLimits:
    """`batch_max_events` items per batch; a lagging partition with nothing fetched holds the others back for at most
    `merge_wait_s`; another instance's watermark holds this one back for at most `barrier_wait_s`."""

    batch_max_events: int
    merge_wait_s: float
    barrier_wait_s: float


class Merge:
    """The fetched records of the owned partitions (`buffers`) and the logged scope events still to apply to each
    (`scopes`), taken in batches in event-time order. `monotonic` (seconds) times the waits."""

    def __init__(self, limits: MergeLimits, monotonic: Callable[[], float]) -> None:
        self.limits = limits
        self.monotonic = monotonic
        self.buffers: dict[TopicPartition, deque[Pending]] = {}
        self.scopes: dict[TopicPartition, list[ScopeItem]] = {}
        self.scope_records: dict[TopicPartition, deque[float]] = {}
        """The times of the scope events among the buffered records, per partition, in buffer order (the
        partition's watermark is the first one's)."""
        self.last_ts: dict[TopicPartition, float] = {}
        """The latest event time processed per partition."""
        self._blocked_since: float | None = None
        self.barrier_since: float | None = None
        """Since when another instance's watermark holds the merge back (None: it does not)."""

    def reset(self, assigned: Iterable[TopicPartition]) -> None:
        """Forget every fetched record (they are fetched again from the committed offsets)."""
        self.buffers = {tp: deque() for tp in assigned}
        self.scope_records = {}

    def add(self, tp: TopicPartition, pending: list[Pending]) -> int:
        """Buffer decoded records of `tp`, in offset order; returns how many are buffered for it now."""
        buffer = self.buffers.setdefault(tp, deque())
        buffer.extend(pending)
        scope_times = [p.ts for p in pending if p.event is not None and p.event.customer_id is None]
        if scope_times:
            self.scope_records.setdefault(tp, deque()).extend(scope_times)
        return len(buffer)

    def buffered(self, tp: TopicPartition) -> int:
        return len(self.buffers.get(tp, ()))

    def add_scope(self, item: ScopeItem) -> None:
        """A logged scope event to apply to the customers of `item.tp`, at its place in that partition's order."""
        items = self.scopes.setdefault(item.tp, [])
        items.append(item)
        items.sort(key=_scope_sort)

    def scopes_pending(self) -> bool:
        return any(self.scopes.values())

    def processed(self, tp: TopicPartition, ts: float) -> None:
        self.last_ts[tp] = max(self.last_ts.get(tp, ts), ts)

    def watermark(self, tp: TopicPartition, lagging: bool) -> float:
        """The event time before which every scope event of `tp` is logged: partitions are in event-time order
        (late events aside), so what is not fetched yet is newer than what is. The first unprocessed scope event
        fetched, else the newest record fetched (or processed); infinity when caught up."""
        scope_times = self.scope_records.get(tp)
        if scope_times:
            return scope_times[0]
        if not lagging:
            return float("inf")
        buffer = self.buffers.get(tp)
        if buffer:
            return buffer[-1].ts
        return self.last_ts.get(tp, float("-inf"))

    def take(self, lagging: Lagging, paused: set[TopicPartition], floor: float) -> list[Item]:
        """Up to `batch_max_events` items in event-time order across the owned partitions and their pending scope
        events (ties: scope events first, then record timestamp, partition, offset). It stops where a lagging
        partition with nothing buffered could hold earlier events, after a scope event (its applications come
        next), and at `floor`, the other instances' lowest watermark."""
        now = self.monotonic()
        waiting = [tp for tp, b in self.buffers.items() if not b and tp not in paused and lagging(tp)]
        if waiting:
            if self._blocked_since is None:
                self._blocked_since = now
            if now - self._blocked_since < self.limits.merge_wait_s:
                return []
        self._blocked_since = None
        batch: list[Item] = []
        limit = self.limits.batch_max_events
        # A k-way merge: the head of each partition's buffer and of each scope list, smallest key first.
        heads: list[tuple[tuple[float, int, int, int], TopicPartition, bool]] = []
        for tp, scopes in self.scopes.items():
            if scopes:
                heads.append((_scope_key(scopes[0]), tp, True))
        for tp, buffer in self.buffers.items():
            if buffer:
                heads.append((_record_key(tp, buffer[0]), tp, False))
        heapq.heapify(heads)
        while heads and len(batch) < limit:
            best_key, best_tp, is_scope = heads[0]
            if best_key[0] > floor:
                if self.barrier_since is None:
                    self.barrier_since = now
                if now - self.barrier_since < self.limits.barrier_wait_s:
                    break  # another instance has not logged its scope events up to here yet
                logger.warning(
                    "another instance's partitions lag behind; going on without them",
                    extra={"watermark": floor, "waited_s": round(now - self.barrier_since, 1)},
                )
                floor = float("inf")
            self.barrier_since = None
            if is_scope:
                scopes = self.scopes[best_tp]
                batch.append(scopes.pop(0))
                if scopes:
                    heapq.heapreplace(heads, (_scope_key(scopes[0]), best_tp, True))
                else:
                    heapq.heappop(heads)
                continue
            buffer = self.buffers[best_tp]
            item = buffer.popleft()
            batch.append(item)
            if buffer:
                heapq.heapreplace(heads, (_record_key(best_tp, buffer[0]), best_tp, False))
            else:
                heapq.heappop(heads)
            if item.event is not None and item.event.customer_id is None:
                scope_times = self.scope_records.get(best_tp)
                if scope_times:
                    scope_times.popleft()
                break  # a scope event: its applications are ordered after it, in the next batch
            if not buffer and lagging(best_tp):
                break  # that partition may hold earlier events than the others' next ones: fetch first
        return batch


class Barrier:
    """The scope log across instances. An instance that reads a scope event (an outage) logs it in the store; each
    partition's owner applies it to the partition's customers at its place in the partition's order. Every
    instance publishes a watermark per owned partition (every scope event of it older than that is logged), and
    reads the lowest of the partitions it does not own: its merge may not pass it (`floor`)."""

    def __init__(self, store: ScopeLog, topic: str, merge: Merge) -> None:
        self.store = store
        self.topic = topic
        self.merge = merge
        self.partitions = 0
        self.assigned: frozenset[TopicPartition] = frozenset()
        self.known_seqs: set[int] = set()
        self.floor = float("inf")
        self._loaded = False

    def stream(self, tp: TopicPartition) -> str:
        return f"{tp.topic}/{tp.partition}"

    def members(self, tp: TopicPartition) -> Callable[[str], bool]:
        """Whether a customer belongs to `tp` (Kafka's default partitioner over the customer id)."""
        partitions, number = self.partitions, tp.partition
        return lambda cid: partitions <= 1 or partition_of(cid, partitions) == number

    def load(self, assigned: frozenset[TopicPartition], partitions: int) -> None:
        """After an assignment (or a failure): the logged scope events not yet applied to each owned partition."""
        self.assigned, self.partitions = assigned, partitions
        self._loaded = False
        self.merge.scopes = {tp: [] for tp in assigned}
        self.known_seqs = set()
        applied = {tp: self.store.scope_applied(self.stream(tp)) for tp in assigned}
        self._add(self.store.scope_log(float("-inf")), applied)
        self._loaded = True

    def logged(self, seq: int, ts: float, event: Event) -> None:
        """This instance logged a scope event: apply it to every owned partition."""
        for tp in self.merge.scopes:
            self.merge.add_scope(ScopeItem(tp, seq, ts, event))
        self.known_seqs.add(seq)

    def update(self, lagging: Lagging, since: float) -> None:
        """Publish the owned partitions' watermarks; read the others' lowest (`floor`) and the scope events other
        instances logged at or after `since`."""
        merge = self.merge
        if not self._loaded or set(merge.scopes) != self.assigned:  # after a failed load
            self.load(self.assigned, self.partitions)
        for tp in self.assigned:
            self.store.set_watermark(self.stream(tp), merge.watermark(tp, lagging(tp)))
        owned = {tp.partition for tp in self.assigned}
        foreign = [f"{self.topic}/{n}" for n in range(self.partitions) if n not in owned]
        if not foreign:
            self.floor = float("inf")
            return
        marks = self.store.watermarks(f"{self.topic}/")
        self.floor = min(marks.get(stream, float("-inf")) for stream in foreign)
        fresh = [row for row in self.store.scope_log(since) if row[0] not in self.known_seqs]
        if fresh:
            applied = {tp: self.store.scope_applied(self.stream(tp)) for tp in self.assigned}
            self._add(fresh, applied)

    def _add(self, rows: list[tuple[int, float, str]], applied: dict[TopicPartition, set[int]]) -> None:
        merge = self.merge
        for seq, ts, raw in rows:
            self.known_seqs.add(seq)
            try:
                event = Event.from_json(raw)
            except EventError:  # it was valid when logged; a newer recovery may validate differently
                logger.exception("a logged scope event no longer validates; skipped", extra={"seq": seq})
                continue
            for tp, items in merge.scopes.items():
                if seq not in applied.get(tp, ()):
                    items.append(ScopeItem(tp, seq, ts, event))
        for items in merge.scopes.values():
            items.sort(key=_scope_sort)


def _scope_sort(item: ScopeItem) -> tuple[float, int]:
    return (item.ts, item.seq)


def _scope_key(item: ScopeItem) -> tuple[float, int, int, int]:
    """Merge order: event time; at a tie scope events first (by partition, then log order)."""
    return (item.ts, 0, item.tp.partition, item.seq)


def _record_key(tp: TopicPartition, pending: Pending) -> tuple[float, int, int, int]:
    """Merge order: event time; at a tie records after scope events, by record timestamp, partition, offset."""
    record = pending.record
    return (pending.ts, 1, record.timestamp, tp.partition * 2**40 + record.offset)
