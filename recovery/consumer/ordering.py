"""The event-time order of the service loop: partitions merged by `occurred_at`, and the scope log with its
watermark barrier across instances (see the package's docstring)."""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from kafka import TopicPartition

from recovery.config import Settings
from recovery.consumer.records import Item, Pending, ScopeItem, partition_of
from recovery.engine import Engine
from recovery.events import Event
from recovery.exceptions import EventError
from recovery.store.base import Store

logger = logging.getLogger("recovery.consumer")  # one name for the loop's logs, whatever the module


class EventTimeOrder:
    """The merge and the barrier, mixed into `Service` (which sets these attributes)."""

    settings: Settings
    store: Store
    engine: Engine
    _consumer: Any
    _assigned: set[TopicPartition]
    _partitions: int
    _buffers: dict[TopicPartition, deque[Pending]]
    _paused: set[TopicPartition]
    _scope_records: dict[TopicPartition, deque[float]]
    """The times of the scope events among the buffered records, per partition, in buffer order (the watermark
    is the first one's)."""
    _scopes: dict[TopicPartition, list[ScopeItem]]
    _known_seqs: set[int]
    _last_ts: dict[TopicPartition, float]
    _foreign_floor: float
    _barrier_since: float | None
    _blocked_since: float | None

    # ------------------------------------------------------------------------------------------- scope log

    def _stream(self, tp: TopicPartition) -> str:
        return f"{tp.topic}/{tp.partition}"

    def _members(self, tp: TopicPartition) -> Callable[[str], bool]:
        partitions, number = self._partitions, tp.partition
        return lambda cid: partitions <= 1 or partition_of(cid, partitions) == number

    def _load_scopes(self) -> None:
        """After an assignment: the logged scope events not yet applied to each owned partition."""
        self._scopes = {tp: [] for tp in self._assigned}
        self._known_seqs = set()
        applied = {tp: self.store.scope_applied(self._stream(tp)) for tp in self._assigned}
        self._add_scopes(self.store.scope_log(float("-inf")), applied)

    def _refresh_scopes(self) -> None:
        """Scope events other instances logged since (only when other instances own partitions)."""
        since = self.engine.clock - self.engine.horizon_s if self.engine.horizon_s else float("-inf")
        fresh = [row for row in self.store.scope_log(since) if row[0] not in self._known_seqs]
        if fresh:
            applied = {tp: self.store.scope_applied(self._stream(tp)) for tp in self._assigned}
            self._add_scopes(fresh, applied)

    def _add_scopes(self, rows: list[tuple[int, float, str]], applied: dict[TopicPartition, set[int]]) -> None:
        for seq, ts, raw in rows:
            self._known_seqs.add(seq)
            try:
                event = Event.from_json(raw)
            except EventError:  # it was valid when logged; a newer recovery may validate differently
                logger.exception("a logged scope event no longer validates; skipped", extra={"seq": seq})
                continue
            for tp, items in self._scopes.items():
                if seq not in applied.get(tp, ()):
                    items.append(ScopeItem(tp, seq, ts, event))
        for items in self._scopes.values():
            items.sort(key=lambda item: (item.ts, item.seq))

    def _foreign_streams(self) -> list[str]:
        topic = self.settings.topic_events
        owned = {tp.partition for tp in self._assigned}
        return [f"{topic}/{n}" for n in range(self._partitions) if n not in owned]

    def _update_barrier(self) -> None:
        """Publish this instance's watermarks; read the others' (the lowest bounds what may be processed)."""
        if set(self._scopes) != self._assigned:  # after a failed reload
            self._load_scopes()
        for tp in self._assigned:
            # Partitions are in event-time order (late events aside): what is not fetched yet is newer than
            # what is, so the watermark is the first unprocessed scope event fetched, else the newest fetched.
            buffer = self._buffers.get(tp) or ()
            scope_times = self._scope_records.get(tp)
            mark = scope_times[0] if scope_times else None
            if mark is None:
                if not self._lagging(tp):
                    mark = float("inf")
                elif buffer:
                    mark = buffer[-1].ts
                else:
                    mark = self._last_ts.get(tp, float("-inf"))
            self.store.set_watermark(self._stream(tp), mark)
        foreign = self._foreign_streams()
        if not foreign:
            self._foreign_floor = float("inf")
            return
        marks = self.store.watermarks(f"{self.settings.topic_events}/")
        self._foreign_floor = min(marks.get(stream, float("-inf")) for stream in foreign)
        self._refresh_scopes()

    # ------------------------------------------------------------------------------------------- merge

    def _decode(self, record: Any) -> Pending:
        if not record.value:
            return Pending(record, float("-inf"), None, "empty message (no value)")
        try:
            event = Event.from_json(record.value)
        except EventError as exc:
            return Pending(record, float("-inf"), None, f"invalid event: {exc}")
        return Pending(record, event.ts, event, None)

    def _lagging(self, tp: TopicPartition) -> bool:
        """More records exist on the broker than were returned so far (or we do not know yet)."""
        highwater = self._consumer.highwater(tp)
        if highwater is None:
            return True
        position = self._consumer.position(tp)
        return position is None or position < highwater

    def _caught_up(self) -> bool:
        return bool(self._assigned) and all(
            not self._buffers.get(tp) and not self._lagging(tp) for tp in self._assigned
        )

    def _take_batch(self) -> list[Item]:
        """Up to `batch_max_events` items in event-time order across the owned partitions and their pending scope
        events (ties: scope events first, then record timestamp, partition, offset). It stops where a lagging
        partition with nothing buffered could hold earlier events, after a scope event (its applications come
        next), and at the other instances' lowest watermark."""
        now = time.monotonic()
        waiting = [tp for tp, b in self._buffers.items() if not b and tp not in self._paused and self._lagging(tp)]
        if waiting:
            if self._blocked_since is None:
                self._blocked_since = now
            if now - self._blocked_since < self.settings.merge_wait_s:
                return []
        self._blocked_since = None
        floor = self._foreign_floor
        batch: list[Item] = []
        limit = self.settings.batch_max_events
        # A k-way merge: the head of each partition's buffer and of each scope list, smallest key first.
        heads: list[tuple[tuple[float, int, int, int], TopicPartition, bool]] = []
        for tp, scopes in self._scopes.items():
            if scopes:
                heads.append((_scope_key(scopes[0]), tp, True))
        for tp, buffer in self._buffers.items():
            if buffer:
                heads.append((_record_key(tp, buffer[0]), tp, False))
        heapq.heapify(heads)
        while heads and len(batch) < limit:
            best_key, best_tp, is_scope = heads[0]
            if best_key[0] > floor:
                if self._barrier_since is None:
                    self._barrier_since = now
                if now - self._barrier_since < self.settings.barrier_wait_s:
                    break  # another instance has not logged its scope events up to here yet
                logger.warning(
                    "another instance's partitions lag behind; going on without them",
                    extra={"watermark": floor, "waited_s": round(now - self._barrier_since, 1)},
                )
                floor = float("inf")
            self._barrier_since = None
            if is_scope:
                scopes = self._scopes[best_tp]
                batch.append(scopes.pop(0))
                if scopes:
                    heapq.heapreplace(heads, (_scope_key(scopes[0]), best_tp, True))
                else:
                    heapq.heappop(heads)
                continue
            buffer = self._buffers[best_tp]
            item = buffer.popleft()
            batch.append(item)
            if buffer:
                heapq.heapreplace(heads, (_record_key(best_tp, buffer[0]), best_tp, False))
            else:
                heapq.heappop(heads)
            if item.event is not None and item.event.customer_id is None:
                scope_times = self._scope_records.get(best_tp)
                if scope_times:
                    scope_times.popleft()
                break  # a scope event: its applications are ordered after it, in the next batch
            if not buffer and self._lagging(best_tp):
                break  # that partition may hold earlier events than the others' next ones: fetch first
        return batch


def _scope_key(item: ScopeItem) -> tuple[float, int, int, int]:
    """Merge order: event time; at a tie scope events first (by partition, then log order)."""
    return (item.ts, 0, item.tp.partition, item.seq)


def _record_key(tp: TopicPartition, pending: Pending) -> tuple[float, int, int, int]:
    """Merge order: event time; at a tie records after scope events, by record timestamp, partition, offset."""
    record = pending.record
    return (pending.ts, 1, record.timestamp, tp.partition * 2**40 + record.offset)
