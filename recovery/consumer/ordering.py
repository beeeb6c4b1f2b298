"""The event-time order of the service loop. Every customer lives in one partition, so each partition is evaluated
in its own order, with a clock of its own (as Kafka Streams keeps stream time per partition): results depend on
neither fetch timing nor which partitions an instance owns. Only scope events (outages) cross partitions: the
instance that reads one logs it in the store, and every partition's owner applies it at its place in that
partition's order. `Merge` holds the owned partitions' records and scope events to apply; `Barrier` keeps each
partition from running past a scope event another partition may still log."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from recovery.consumer.records import Item, Pending, ScopeItem
from recovery.consumer.transport import TopicPartition
from recovery.events import Event
from recovery.exceptions import EventError
from recovery.store.base import ScopeLog, Watermark

logger = logging.getLogger("recovery.consumer")

Lagging = Callable[[TopicPartition], bool]
"""Whether the broker holds records of a partition not fetched yet (the transport's `lagging`)."""
INF = float("inf")
FETCH_WAIT_S = 0.5
"""How long a fetch may wait on the broker before its answer (kafka-python's `fetch_max_wait_ms` and librdkafka's
`fetch.wait.max.ms`, both left at their default): the end of a partition an answer tells may be this much older than
the poll that asked for it."""


@dataclass(frozen=True, slots=True)
class Floor:
    """How far a partition may go: every item older than `ts`; of a record the broker took at or after the
    `ended_at` of one of `ends` (`ended_at`, `ts`: another instance's partition, read to its end then), only one older
    than that partition's `ts` too: a scope event may have come to it after its owner saw its end."""

    ts: float
    ends: tuple[tuple[float, float], ...] = ()

    def at(self, taken_at: float) -> float:
        """The floor for a record the broker took at `taken_at` (epoch seconds; inf: any time, for a scope event)."""
        floor = self.ts
        for ended_at, ts in self.ends:
            if taken_at >= ended_at and ts < floor:
                floor = ts
        return floor


HOLD = Floor(-INF)
Head = tuple[float, float]
"""A partition's next item: its event time, and when the broker took it (inf for a scope event to apply)."""


def taken_at(pending: Pending) -> float:
    """When the broker took the record (its Kafka timestamp, epoch seconds)."""
    return pending.record.timestamp / 1000


class Merge:
    """The fetched records of the owned partitions (`buffers`, in offset order) and the logged scope events still to
    apply to each (`scopes`, by time), taken in batches of at most `batch_max_events` items."""

    def __init__(self, batch_max_events: int) -> None:
        self.batch_max_events = batch_max_events
        self.buffers: dict[TopicPartition, deque[Pending]] = {}
        self.scopes: dict[TopicPartition, list[ScopeItem]] = {}
        self.scope_records: dict[TopicPartition, deque[float]] = {}
        """Per partition, in buffer order, the partition's stream time at each scope event among the buffered records:
        the latest event time up to it, its own or an earlier record's (a late scope event holds the others back no
        further than its partition has gone). The partition's watermark is the first one's."""
        self.last_ts: dict[TopicPartition, float] = {}
        """The latest event time processed per partition."""
        self.fetched_ts: dict[TopicPartition, float] = {}
        """The latest event time fetched or processed per partition."""

    def reset(self, assigned: Iterable[TopicPartition]) -> None:
        """Forget every fetched record (they are fetched again from the committed offsets)."""
        self.buffers = {tp: deque() for tp in assigned}
        self.scope_records = {}
        self.fetched_ts = dict(self.last_ts)

    def add(self, tp: TopicPartition, pending: list[Pending]) -> int:
        """Buffer decoded records of `tp`, in offset order; returns how many are buffered for it now."""
        buffer = self.buffers.setdefault(tp, deque())
        buffer.extend(pending)
        latest = self.fetched_ts.get(tp, -INF)
        scope_times = []
        for p in pending:
            if p.ts > latest:
                latest = p.ts
            if p.event is not None and p.event.customer_id is None:
                scope_times.append(latest)
        self.fetched_ts[tp] = latest
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

    def scopes_pending(self, tp: TopicPartition) -> bool:
        return bool(self.scopes.get(tp))

    def processed(self, tp: TopicPartition, ts: float) -> None:
        self.last_ts[tp] = max(self.last_ts.get(tp, ts), ts)
        self.fetched_ts[tp] = max(self.fetched_ts.get(tp, ts), ts)

    def watermark(self, tp: TopicPartition, lagging: bool) -> float:
        """The event time before which every scope event of `tp` is logged, late ones aside: a partition is in
        event-time order (late events aside), so what is not fetched yet is newer than what is. The partition's
        stream time at the first unprocessed scope event fetched, else at the last record fetched (or processed)
        while more waits on the broker; infinity when the partition is read to its end."""
        scope_times = self.scope_records.get(tp)
        if scope_times:
            return scope_times[0]
        if not lagging:
            return INF
        return self.fetched_ts.get(tp, -INF)

    def published(self, tp: TopicPartition, lagging: bool, ended_at: float) -> Watermark:
        """The watermark of `tp` for other instances: as `watermark`, but a partition read to its end gives its
        stream time, good for records the broker took after `ended_at`, when it was last known read to its end."""
        mark = self.watermark(tp, lagging)
        return Watermark(mark) if mark != INF else Watermark(self.fetched_ts.get(tp, -INF), ended_at)

    def heads(self) -> dict[TopicPartition, Head]:
        """The next item of each partition that has one."""
        found: dict[TopicPartition, Head] = {}
        for tp in self.buffers.keys() | self.scopes.keys():
            buffer, scopes = self.buffers.get(tp), self.scopes.get(tp)
            if scopes and (not buffer or scopes[0].ts <= buffer[0].ts):
                found[tp] = (scopes[0].ts, INF)
            elif buffer:
                found[tp] = (buffer[0].ts, taken_at(buffer[0]))
        return found

    def take(self, floors: Mapping[TopicPartition, Floor], lagging: Lagging | None = None) -> list[Item]:
        """Up to `batch_max_events` items: each owned partition's records (in offset order) merged by event time
        with the scope events to apply to it (ties: scope events first), each partition up to its floor
        (exclusive), where a scope event of another partition may still come. A partition stops after a scope
        event of its own: its applications are placed after it, in the next batch. A scope event waits for the
        next record of its partition while that is on the broker only (`lagging`; None: every partition is read to
        its end): it may be older."""
        batch: list[Item] = []
        for tp in sorted(self.buffers.keys() | self.scopes.keys()):
            if len(batch) >= self.batch_max_events:
                break
            self._take(tp, floors.get(tp, HOLD), batch, lagging is not None and lagging(tp))
        return batch

    def _take(self, tp: TopicPartition, floor: Floor, batch: list[Item], lagging: bool) -> None:
        buffer = self.buffers.setdefault(tp, deque())
        scopes = self.scopes.setdefault(tp, [])
        while len(batch) < self.batch_max_events:
            if scopes and (not buffer or scopes[0].ts <= buffer[0].ts):
                if scopes[0].ts >= floor.at(INF) or (not buffer and lagging):
                    return
                batch.append(scopes.pop(0))
                continue
            if not buffer:
                return
            head = buffer[0]
            # A scope event of its own may come at the floor: the floor may be another partition's scope event at
            # the same time, which waits for this one in turn (they are logged in partition order).
            own_scope = head.event is not None and head.event.customer_id is None
            bound = floor.at(taken_at(head)) if floor.ends else floor.ts
            if head.ts > bound or (head.ts == bound and not own_scope):
                return
            record = buffer.popleft()
            batch.append(record)
            if record.event is not None and record.event.customer_id is None:  # a scope event of its own
                scope_times = self.scope_records.get(tp)
                if scope_times:
                    scope_times.popleft()
                return


class Barrier:
    """The scope log across partitions and instances. Every instance publishes a watermark per owned partition
    (every scope event of it older than that is logged) and reads the others'; a partition may run up to the lowest
    watermark of all the other partitions (`floors`). Another instance's partition read to its end holds back only
    the records the broker took after its owner last saw that end: a paused owner's word holds for what came before
    the pause. A partition owned by another instance that holds the others back for `barrier_wait_s` is gone on
    without until it catches up (its outages then reach them late)."""

    def __init__(
        self, store: ScopeLog, topic: str, merge: Merge, *, barrier_wait_s: float, monotonic: Callable[[], float]
    ) -> None:
        self.store = store
        self.topic = topic
        self.merge = merge
        self.barrier_wait_s = barrier_wait_s
        self.monotonic = monotonic
        self.partitions = 0
        self.assigned: frozenset[TopicPartition] = frozenset()
        self.known_seqs: set[int] = set()
        self.foreign: dict[str, Watermark] = {}
        """The watermarks of the partitions other instances own, as last read."""
        self.gone_without: set[str] = set()
        """Other instances' partitions that held this one back too long: left out of the floors until they catch
        up."""
        self.held_since: float | None = None
        """Since when another instance's partitions have held an owned partition back at the same watermark (None:
        they do not)."""
        self.ended_at = -INF
        """What the owned partitions read to their end hold, in the watermarks this instance publishes: every record
        the broker took before this (epoch seconds). The wall time when the step before this one began to read,
        less `FETCH_WAIT_S`: a partition's end, as the client knows it, comes from an answer to a fetch sent at a
        poll of that step or a later one."""
        self._read_at = -INF
        self._held_at: Floor | None = None
        self._loaded = False

    def stream(self, tp: TopicPartition) -> str:
        return f"{tp.topic}/{tp.partition}"

    def reading(self, now: float) -> None:
        """A step begins to read, at wall time `now`."""
        self.ended_at, self._read_at = self._read_at - FETCH_WAIT_S, now

    def load(self, assigned: frozenset[TopicPartition], partitions: int) -> None:
        """After an assignment (or a failure): the logged scope events not yet applied to each owned partition."""
        self.assigned, self.partitions = assigned, partitions
        self._loaded = False
        self.merge.scopes = {tp: [] for tp in assigned}
        self.known_seqs = set()
        self.foreign = {}
        self.gone_without = set()
        self.held_since = None
        applied = {tp: self.store.scope_applied(self.stream(tp)) for tp in assigned}
        self._add(self.store.scope_log(-INF), applied)
        self._loaded = True

    def logged(self, seq: int, ts: float, event: Event) -> None:
        """This instance logged a scope event: apply it to every owned partition."""
        for tp in self.merge.scopes:
            self.merge.add_scope(ScopeItem(tp, seq, ts, event))
        self.known_seqs.add(seq)

    def update(self, lagging: Lagging, since: float) -> None:
        """Publish the owned partitions' watermarks; read the others' and the scope events other instances logged at
        or after `since`."""
        if not self._loaded or set(self.merge.scopes) != self.assigned:  # after a failed load
            self.load(self.assigned, self.partitions)
        for tp in self.assigned:
            self.store.set_watermark(self.stream(tp), *self.merge.published(tp, lagging(tp), self.ended_at))
        owned = {tp.partition for tp in self.assigned}
        foreign = [f"{self.topic}/{n}" for n in range(self.partitions) if n not in owned]
        if not foreign:
            self.foreign = {}
            return
        marks = self.store.watermarks(f"{self.topic}/")
        self.foreign = {stream: marks.get(stream, Watermark(-INF)) for stream in foreign}
        fresh = [row for row in self.store.scope_log(since) if row[0] not in self.known_seqs]
        if fresh:
            applied = {tp: self.store.scope_applied(self.stream(tp)) for tp in self.assigned}
            self._add(fresh, applied)

    def floors(self, lagging: Lagging) -> dict[TopicPartition, Floor]:
        """How far each owned partition may go: the lowest watermark of every other partition, this instance's
        (as fetched now) and the others' (as last read, without those gone without)."""
        heads = self.merge.heads()
        if heads:
            first = min(heads.values())
            for stream in list(self.gone_without):
                if _bound(self.foreign.get(stream), first[1]) >= first[0]:  # caught up with us: it counts again
                    self.gone_without.discard(stream)
        own = {tp: self.merge.watermark(tp, lagging(tp)) for tp in self.assigned}
        floors = self._floors(own)
        if self._hold(heads, floors):
            floors = self._floors(own)
        return floors

    def _floors(self, own: Mapping[TopicPartition, float]) -> dict[TopicPartition, Floor]:
        foreign = self.foreign_floor()
        return {
            tp: Floor(min([foreign.ts, *(mark for other, mark in own.items() if other != tp)]), foreign.ends)
            for tp in self.assigned
        }

    def foreign_floor(self) -> Floor:
        """The watermarks of the partitions other instances own (but those gone on without) as one floor."""
        marks = [mark for stream, mark in self.foreign.items() if stream not in self.gone_without]
        ts = min((mark.ts for mark in marks if mark.ended_at == -INF), default=INF)
        return Floor(ts, tuple(sorted((m.ended_at, m.ts) for m in marks if m.ended_at != -INF and m.ts < ts)))

    def _hold(self, heads: Mapping[TopicPartition, Head], floors: Mapping[TopicPartition, Floor]) -> bool:
        """Time how long other instances' partitions hold an owned partition back without their watermarks moving;
        past `barrier_wait_s`, go on without the ones that do (True: the floors change)."""
        foreign = self.foreign_floor()
        held = [
            (ts, taken)
            for tp, (ts, taken) in heads.items()
            if tp in floors and ts >= (bound := floors[tp].at(taken)) and bound == foreign.at(taken)
        ]
        now = self.monotonic()
        if not held or foreign != self._held_at or self.held_since is None:
            self.held_since = now if held else None
            self._held_at = foreign
            return False
        if now - self.held_since < self.barrier_wait_s:
            return False
        laggards = {
            stream
            for stream, mark in self.foreign.items()
            for _ts, taken in held
            if _bound(mark, taken) <= foreign.at(taken)
        }
        logger.warning(
            "another instance's partitions lag behind; going on without them until they catch up",
            extra={
                "partitions": sorted(laggards),
                "watermark": min(foreign.at(taken) for _ts, taken in held),
                "waited_s": round(now - self.held_since, 1),
            },
        )
        self.gone_without |= laggards
        self.held_since = None
        self._held_at = None
        return True

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


def _bound(mark: Watermark | None, taken_at: float) -> float:
    """How far another instance's partition, of watermark `mark`, lets a record the broker took at `taken_at` go."""
    if mark is None or taken_at < mark.ended_at:
        return INF
    return mark.ts


def _scope_sort(item: ScopeItem) -> tuple[float, int]:
    return (item.ts, item.seq)
