"""Evaluating a batch: decoded records and scope events through the engine, and what they cause queued in the
store's outbox (effects for the output topics, DLQ records, events forwarded to the partition that owns their
customer), all in the store's open transaction."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from recovery.config import Settings
from recovery.consumer.ordering import Barrier
from recovery.consumer.records import DLQ_HEADERS, Item, Pending, ScopeItem, ServiceStats, partition_of
from recovery.consumer.transport import Record, TopicPartition
from recovery.effects import Effect
from recovery.engine import Engine, EngineStats
from recovery.engine.matcher import Matcher
from recovery.events import Event
from recovery.exceptions import BrokerError, EventError, RecoveryError, StoreError
from recovery.metrics import Metrics
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.base import Store
from recovery.times import format_time

logger = logging.getLogger("recovery.consumer")
INF = float("inf")


def decode(record: Record, earliest: float = -INF, latest: float = INF) -> Pending:
    """A polled record as an event, or with the reason it is not one (for the DLQ): not an event, or dated after
    `latest` (`future_event`) or before `earliest` (`too_old`), epoch seconds."""
    if not record.value:
        return Pending(record, -INF, None, "empty message (no value)")
    try:
        event = Event.from_json(record.value)
    except EventError as exc:
        return Pending(record, -INF, None, f"invalid event: {exc}")
    ts = event.ts
    if ts > latest:
        why = f"future_event: event {event.id!r} occurred_at {format_time(ts)} is after {format_time(latest)}"
        return Pending(record, -INF, None, f"{why}, the wall clock plus max_future_skew_s")
    if ts < earliest:
        why = f"too_old: event {event.id!r} occurred_at {format_time(ts)} is before {format_time(earliest)}"
        return Pending(record, -INF, None, f"{why}, the wall clock minus max_event_age_s")
    return Pending(record, ts, event, None)


RecordKey = tuple[str, int, int]
"""A record by its topic, partition and offset."""


class Poisoned(RecoveryError):
    """Evaluating a record raised: the step is to be rolled back, and the record sent to the DLQ (`reason`) when it
    is read again."""

    def __init__(self, key: RecordKey, reason: str) -> None:
        super().__init__(f"evaluating {key[0]}/{key[1]} at offset {key[2]} failed: {reason}")
        self.key = key
        self.reason = reason


@dataclass
class Evaluated:
    """What a batch's records moved: the offset after the last one per partition, the latest event time per
    partition."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    last_ts: dict[TopicPartition, float] = field(default_factory=dict)


class Evaluator:
    """One engine per owned partition, each with the partition's event-time clock, fed batch by batch. Every
    customer lives in one partition, so its decisions need only that partition's order; results then depend on
    neither fetch timing nor assignment. Effects stored since the last `take_stored()` are kept for the metrics of
    what the next store commit makes durable."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        playbooks: Sequence[CompiledPlaybook],
        stats: ServiceStats,
        *,
        metrics: Metrics | None = None,
        on_effects: Callable[[list[Effect]], None] | None = None,
        prune_floor: Callable[[float], float] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.playbooks = list(playbooks)
        self.stats = stats
        self.metrics = metrics
        self.on_effects = on_effects
        self.prune_floor = prune_floor
        self.matcher: Matcher | None = None
        self.engine_stats = EngineStats()
        self.engines: dict[int, Engine] = {}
        self.partitions = 0
        self._stored: list[Effect] = []
        self._counted: Counter[tuple[str | None, str]] = Counter()

    def rebuild(self, owned: Iterable[int], partitions: int) -> None:
        """Fresh engines (their state comes back from the store) for the partitions `owned` of `partitions`."""
        owned = sorted(owned)
        self.partitions = partitions
        self.engine_stats = EngineStats()
        self.engines = {}
        if not owned:
            return
        pending = self.store.pending_deadlines()
        per_engine = max(1, self.settings.max_customers // len(owned))
        for partition in owned:
            engine = Engine(
                self.playbooks,
                self.store,
                max_customers=per_engine,
                owns=self.members(partition),
                matcher=self.matcher,
                stats=self.engine_stats,
                prune_floor=self.prune_floor,
                deadlines=pending,
            )
            self.matcher = engine.matcher
            self.engines[partition] = engine

    def reload(self, playbooks: Sequence[CompiledPlaybook]) -> None:
        """Run `playbooks` from now on (their conditions compiled anew), on the same partitions."""
        self.playbooks = list(playbooks)
        self.matcher = None
        self.rebuild(list(self.engines), self.partitions)

    def members(self, partition: int) -> Callable[[str], bool]:
        """Whether a customer belongs to `partition` (Kafka's default partitioner over the customer id)."""
        partitions = self.partitions
        return lambda cid: partitions <= 1 or partition_of(cid, partitions) == partition

    @property
    def customers_in_memory(self) -> int:
        return sum(engine.customers_in_memory for engine in self.engines.values())

    def clocks(self) -> dict[int, float]:
        """Each owned partition's event-time clock."""
        return {partition: engine.clock for partition, engine in self.engines.items()}

    def evaluate(
        self, batch: list[Item], barrier: Barrier, poisoned: Mapping[RecordKey, str] | None = None
    ) -> Evaluated:
        """Evaluate `batch`, each item with its partition's engine, in order. A record that is not a valid event
        goes to the DLQ. One whose evaluation raises stops the batch with `Poisoned`: the caller rolls the step back
        (nothing of that evaluation stays) and evaluates it again with the record among `poisoned`, which go to the
        DLQ unevaluated. A store failure propagates (the caller rolls back)."""
        poisoned = poisoned or {}
        done = Evaluated()
        self._counted = Counter()  # a batch that raised is read again: counted then
        self._preload(batch)
        for item in batch:
            tp = item.tp if isinstance(item, ScopeItem) else TopicPartition(item.record.topic, item.record.partition)
            engine = self.engines[tp.partition]
            if isinstance(item, ScopeItem):
                self.emit(engine.apply_scope(item.event, barrier.stream(tp), item.seq, self.members(tp.partition)))
                continue
            done.offsets[tp] = item.record.offset + 1
            if item.event is None:
                self.dead_letter(item, item.error or "invalid")
                continue
            event = item.event
            key = (tp.topic, tp.partition, item.record.offset)
            if key in poisoned:
                self.dead_letter(item, f"evaluation failed: {poisoned[key]}")
                continue
            done.last_ts[tp] = max(done.last_ts.get(tp, item.ts), item.ts)
            try:
                effects = self._evaluate(engine, tp, item, event, barrier)
            except (StoreError, BrokerError):
                raise
            except Exception as exc:  # one event's failure is a policy, not a crash
                logger.exception("evaluation failed", extra={"event_id": event.id, "customer_id": event.customer_id})
                raise Poisoned(key, f"{type(exc).__name__}: {exc}") from exc
            self.emit(effects)
        self._observe_counted()
        return done

    def _observe_counted(self) -> None:
        """The batch's consumed records, summed per type and result (one labelled increment per event was a
        tenth of a fan-out's metrics)."""
        if self.metrics is not None:
            for (event_type, result), count in self._counted.items():
                self.metrics.observe_event(event_type, result, count)

    def _preload(self, batch: list[Item]) -> None:
        """Ask the store once for the batch's event ids and for the customers no engine holds in memory."""
        ids: list[str] = []
        missing: list[str] = []
        since = float("inf")
        for item in batch:
            if isinstance(item, ScopeItem) or item.event is None:
                continue
            event = item.event
            ids.append(event.id)
            engine = self.engines[item.record.partition]
            if event.customer_id is not None and engine.uncached((event.customer_id,)):
                missing.append(event.customer_id)
                if engine.horizon_s:
                    since = min(since, engine.clock - engine.horizon_s)
        self.store.preload_events(ids)
        if missing:
            self.store.preload_customers(missing, since)

    def advance(self, partition: int, ts: float) -> None:
        """Move a partition's clock to `ts` (wall time, once it is caught up): the deadlines it passes fire."""
        self.emit(self.engines[partition].advance(ts))

    def _evaluate(
        self, engine: Engine, tp: TopicPartition, pending: Pending, event: Event, barrier: Barrier
    ) -> list[Effect]:
        before = engine.stats.duplicates
        if event.customer_id is None:
            effects, seq = engine.record_scope(event)
            if seq is not None:  # applied to each owned partition's customers at its place in their order
                barrier.logged(seq, pending.ts, event)
        elif self.partitions > 1 and partition_of(event.customer_id, self.partitions) != tp.partition:
            # Keyed to the wrong partition (by its producer): send it to the one its customer lives in, to be
            # evaluated in that partition's order.
            self.store.outbox_add(self.settings.topic_events, event.customer_id, pending.record.value or b"")
            self._count(event.type, "forwarded")
            return []
        else:
            effects = engine.process(event)
        self._count(event.type, "duplicate" if engine.stats.duplicates != before else "processed")
        return effects

    def _count(self, event_type: str | None, result: str) -> None:
        self.stats.consumed[result] += 1
        self._counted[event_type, result] += 1

    def emit(self, effects: list[Effect]) -> None:
        """Queue effects for the output topics (tasks and gestures), in the store's transaction."""
        settings = self.settings
        for effect in effects:
            topic = settings.topic_tasks if effect.kind == "task" else settings.topic_gestures
            self.store.outbox_add(topic, effect.customer_id, effect.to_json().encode())
            kind = "cancelled" if effect.status == "cancelled" else effect.kind  # a lost customer's task
            self.stats.effects[f"{kind} {effect.playbook}"] += 1
            self._stored.append(effect)
        if effects and self.on_effects is not None:
            self.on_effects(effects)

    def dead_letter(self, pending: Pending, reason: str) -> None:
        """Queue a record for the DLQ: its original bytes, with the reason and where it came from as headers."""
        record = pending.record
        self.stats.dlq[reason.split(":", 1)[0]] += 1
        self._count(pending.event.type if pending.event else None, "invalid")
        if self.metrics is not None:
            self.metrics.observe_dlq(reason)
        logger.warning(
            "message sent to the DLQ",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": reason},
        )
        key = None if record.key is None else record.key.decode("utf-8", "replace")
        headers = (
            (DLQ_HEADERS[0], reason.encode()),
            (DLQ_HEADERS[1], record.topic.encode()),
            (DLQ_HEADERS[2], str(record.partition).encode()),
            (DLQ_HEADERS[3], str(record.offset).encode()),
        )
        self.store.outbox_add(self.settings.topic_dlq, key, bytes(record.value or b""), headers)

    def take_stored(self) -> list[Effect]:
        """The effects queued since the last call (the caller observes them once they are committed)."""
        stored, self._stored = self._stored, []
        return stored

    def forget_stored(self) -> None:
        """A rollback: the effects queued since the last commit are not stored after all."""
        self._stored = []
