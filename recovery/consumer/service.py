"""`Service`: the loop of `recovery serve` (see the package's docstring)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from recovery.config import Settings
from recovery.consumer.ordering import EventTimeOrder
from recovery.consumer.records import (
    BARRIER_POLL_MS,
    BROKER_CHECK_S,
    DLQ_HEADERS,
    PAUSE_ABOVE,
    POLL_RECORDS,
    POLLS_PER_STEP,
    PRODUCER_BATCH_BYTES,
    RESUME_BELOW,
    STEP_BUDGET_S,
    Item,
    Pending,
    RebalanceListener,
    ScopeItem,
    ServiceStats,
    partition_of,
)
from recovery.effects import Effect
from recovery.engine import Engine
from recovery.engine.matcher import Matcher
from recovery.events import Event
from recovery.exceptions import StoreError
from recovery.http import Health
from recovery.metrics import Metrics
from recovery.outbox import OutboxPublisher
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.base import Store

logger = logging.getLogger("recovery.consumer")  # one name for the loop's logs, whatever the module


class Service(EventTimeOrder):
    """One `recovery serve` instance's consumer loop. Build it, then `run(stop)` until `stop` is set.

    `wall_clock` (epoch seconds) is injectable so tests can pin what "now" is.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        playbooks: Sequence[CompiledPlaybook],
        *,
        wall_clock: Callable[[], float] = time.time,
        on_effects: Callable[[list[Effect]], None] | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        on_step: Callable[[Store, float], None] | None = None,
    ) -> None:
        self.settings = settings
        # Called once per loop step with the loop's store (inside its transaction) and the wall clock: the task
        # lifecycle's escalation clock (recovery.lifecycle.Escalator).
        self.on_step = on_step
        self._reload: list[CompiledPlaybook] | None = None
        self.metrics = metrics
        self.health = health or Health()
        self._stored: list[Effect] = []
        self._polled_at: float | None = None
        self._broker_checked = 0.0
        self.store = store
        self.playbooks = list(playbooks)
        self.wall_clock = wall_clock
        self.on_effects = on_effects
        self.stats = ServiceStats()
        self._matcher: Matcher | None = None
        self.engine = self._new_engine(None)
        self._consumer: Any = None
        self._producer: Any = None
        self._publisher: OutboxPublisher | None = None
        self._processed: dict[TopicPartition, OffsetAndMetadata] = {}
        """The offsets after the last processed record of each partition (committed synchronously on closing)."""
        self._to_commit: dict[TopicPartition, OffsetAndMetadata] = {}
        """Processed offsets not sent in a commit yet."""
        self._commit_sent: dict[TopicPartition, OffsetAndMetadata] = {}
        self._commit_future: Any = None
        """The asynchronous offset commit in flight (sent with `_commit_sent`), if any."""
        self._assigned: set[TopicPartition] = set()
        self._buffers: dict[TopicPartition, deque[Pending]] = {}
        self._paused: set[TopicPartition] = set()
        self._blocked_since: float | None = None
        self._partitions = 0
        self._listener = RebalanceListener()
        self._scopes: dict[TopicPartition, list[ScopeItem]] = {}
        self._known_seqs: set[int] = set()
        self._last_ts: dict[TopicPartition, float] = {}
        self._foreign_floor = float("inf")
        self._barrier_since: float | None = None
        self._scope_records: dict[TopicPartition, deque[float]] = {}
        """The times of the scope events among the buffered records, per partition (see EventTimeOrder)."""

    # ------------------------------------------------------------------------------------------- engine

    def _new_engine(self, owned: set[int] | None) -> Engine:
        """A fresh engine (state comes back from the store) for the partitions owned; None means all."""
        partitions = self._partitions if owned is not None else 0
        owns: Callable[[str], bool] | None = None
        if owned is not None and partitions and len(owned) < partitions:
            owns = lambda cid: partition_of(cid, partitions) in owned  # noqa: E731
        engine = Engine(
            self.playbooks,
            self.store,
            max_customers=self.settings.max_customers,
            owns=owns,
            matcher=self._matcher,
        )
        self._matcher = engine.matcher
        return engine

    # ------------------------------------------------------------------------------------------- Kafka

    def _connect(self) -> None:
        settings = self.settings
        config = settings.kafka_config()
        self._ensure_topics(config)
        self._producer = KafkaProducer(acks="all", linger_ms=5, retries=5, batch_size=PRODUCER_BATCH_BYTES, **config)
        self._publisher = OutboxPublisher(self.store, self._producer)
        self._consumer = KafkaConsumer(
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=POLL_RECORDS,
            session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.kafka_session_timeout_s * 1000 / 3),
            **config,
        )
        self._listener = RebalanceListener()
        self._consumer.subscribe([settings.topic_events], listener=self._listener)

    def _ensure_topics(self, config: dict[str, Any]) -> None:
        s = self.settings
        admin = KafkaAdminClient(**config)
        try:
            existing = set(admin.list_topics())
            wanted = [s.topic_events, s.topic_tasks, s.topic_gestures, s.topic_dlq]
            missing = [NewTopic(t, s.topic_partitions, 1) for t in wanted if t not in existing]
            if missing:
                try:
                    admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass  # another instance was quicker
                logger.info("created topics", extra={"topics": [t.name for t in missing]})
        finally:
            admin.close()

    def _apply_rebalance(self) -> bool:
        """Act on what the rebalance listener saw (kafka-python calls it on its own I/O thread, inside `poll`).
        True when the assignment changed: records polled with it are then dropped, as the positions go back to
        the committed offsets."""
        listener = self._listener
        changed = False
        if listener.revoked:
            # What was processed is in the store; what is buffered is fetched again, by us or the next owner, from
            # the committed offsets (an offset commit still pending only makes some events come again, which the
            # ledger recognises). The next owners commit from here on; a commit in flight is left to itself.
            changed = True
            listener.revoked = False
            self._processed, self._to_commit, self._commit_sent, self._commit_future = {}, {}, {}, None
            self._buffers.clear()
            self._scope_records = {}
            self._paused.clear()
            self._scopes = {}
            self._assigned = set()
            if self.metrics is not None:
                self.metrics.forget_partitions()
        assigned = listener.take_assignment()
        if assigned is None:
            return changed
        self.stats.rebalances += 1
        self._assigned = assigned
        self._scope_records = {}
        self._rewind()
        self._buffers = {tp: deque() for tp in assigned}
        self._paused.clear()
        partitions = self._consumer.partitions_for_topic(self.settings.topic_events) or set()
        self._partitions = len(partitions)
        self.engine = self._new_engine({tp.partition for tp in assigned})
        self._load_scopes()
        logger.info(
            "partitions assigned",
            extra={"partitions": sorted(tp.partition for tp in assigned), "of": self._partitions},
        )
        return True

    def _rewind(self) -> None:
        """Position every assigned partition at its committed offset (kafka-python keeps the fetch position of a
        partition it keeps across a rebalance, past records that were buffered here but not processed)."""
        if self._assigned:
            self._consumer.resume(*self._assigned)
        for tp in self._assigned:
            committed = self._consumer.committed(tp)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    # ------------------------------------------------------------------------------------------- loop

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; then finish the batch, commit, publish, close."""
        backoff = self.settings.retry_backoff_s
        while not stop.is_set():
            try:
                if self._consumer is None:
                    self._connect()
                self._step(stop)
            except StoreError as exc:
                self.stats.store_errors += 1
                self.health.set(store=str(exc))
                if self.metrics is not None:
                    self.metrics.observe_store_error()
                logger.exception("store failure: the batch is rolled back and read again")
                self._recover()
                stop.wait(backoff)
            except KafkaError as exc:
                self.stats.broker_errors += 1
                self.health.set(broker=f"{type(exc).__name__}: {exc}")
                logger.exception("broker failure: retrying")
                self._recover()
                stop.wait(backoff)
        self._close()

    def request_reload(self, playbooks: Sequence[CompiledPlaybook]) -> None:
        """Run `playbooks` from the next loop step on (called from the API's thread; the loop swaps the engine)."""
        self._reload = list(playbooks)

    def _step(self, stop: threading.Event) -> None:
        reload, self._reload = self._reload, None
        if reload is not None:
            self.playbooks = reload
            self._matcher = None  # the new playbooks' conditions
            self.engine = self._new_engine({tp.partition for tp in self._assigned} if self._assigned else None)
            logger.info("playbooks reloaded", extra={"playbooks": len(reload)})
        consumer = self._consumer
        # Held back by another instance's watermark: look again soon rather than wait for new records.
        timeout_ms = BARRIER_POLL_MS if self._barrier_since is not None else int(self.settings.poll_timeout_s * 1000)
        # Drain what the fetcher holds (it fetches every partition ahead), so the merge sees all partitions.
        for _ in range(POLLS_PER_STEP):
            polled = consumer.poll(timeout_ms=timeout_ms, max_records=POLL_RECORDS)
            timeout_ms = 0
            if self._apply_rebalance() or not polled:
                break
            if self._polled_at is None:
                self._polled_at = time.monotonic()
            for tp, records in polled.items():
                buffer = self._buffers.setdefault(tp, deque())
                decoded = [self._decode(r) for r in records]
                buffer.extend(decoded)
                scope_times = [p.ts for p in decoded if p.event is not None and p.event.customer_id is None]
                if scope_times:
                    self._scope_records.setdefault(tp, deque()).extend(scope_times)
                if len(buffer) > PAUSE_ABOVE and tp not in self._paused:
                    consumer.pause(tp)
                    self._paused.add(tp)
        if self._assigned:
            self._update_barrier()
        self._observe_lag()
        # Poll again within a bounded time, so that a rebalance (a new instance joining) or a stop is not held up.
        budget = time.monotonic() + STEP_BUDGET_S
        while not stop.is_set() and time.monotonic() < budget:
            batch = self._take_batch()
            if not batch:
                break
            self._process(batch)
        for tp in list(self._paused):
            if len(self._buffers.get(tp, ())) < RESUME_BELOW:
                consumer.resume(tp)
                self._paused.discard(tp)
        if self._caught_up() and not any(self._scopes.values()):
            effects = self.engine.advance(self.wall_clock() - self.settings.lateness_s)
            self._emit(effects)
        if self.on_step is not None:
            self.on_step(self.store, self.wall_clock())
        self._commit()
        self._send_offsets()  # what waited for a commit in flight, or failed, even when no batch follows
        self._observe_stored()
        self._polled_at = None
        self._check_broker()
        self.health.set(store=None)
        if self._publisher is not None:
            self._publisher.send()  # confirmed before the next commit: the next batch goes on meanwhile

    def _process(self, batch: list[Item]) -> None:
        """One store transaction: evaluate, queue effects and DLQ records, commit; then commit offsets."""
        engine = self.engine
        offsets: dict[TopicPartition, int] = {}
        events = [i.event for i in batch if isinstance(i, Pending) and i.event is not None]
        self.store.preload_events([e.id for e in events])
        missing = engine.uncached(e.customer_id for e in events if e.customer_id is not None)
        if missing:
            horizon = engine.horizon_s
            self.store.preload_customers(missing, engine.clock - horizon if horizon else float("inf"))
        for item in batch:
            if isinstance(item, ScopeItem):
                self._emit(engine.apply_scope(item.event, self._stream(item.tp), item.seq, self._members(item.tp)))
                continue
            record = item.record
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = record.offset
            if item.event is None:
                self._dead_letter(item, item.error or "invalid")
                continue
            event = item.event
            self._last_ts[tp] = max(self._last_ts.get(tp, item.ts), item.ts)
            try:
                effects = self._evaluate(engine, item, event)
            except StoreError:
                raise
            except Exception as exc:  # one event's failure is a policy, not a crash
                logger.exception("evaluation failed", extra={"event_id": event.id, "customer_id": event.customer_id})
                self._dead_letter(item, f"evaluation failed: {type(exc).__name__}: {exc}")
                continue
            self._emit(effects)
        if self._assigned:
            self._update_barrier()
        self._commit()
        self._observe_stored()
        self.stats.batches += 1
        if not offsets:
            return
        commit = {tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in offsets.items()}
        self._processed.update(commit)
        self._to_commit.update(commit)
        self._send_offsets()
        if self.metrics is not None and self._polled_at is not None:
            self.metrics.observe_batch(time.monotonic() - self._polled_at)

    def _send_offsets(self) -> None:
        """Commit the processed offsets asynchronously, one commit in flight at a time (kafka-python refuses more
        than a connection's in-flight limit): offsets processed meanwhile wait for the next call, and a commit that
        failed is sent again (unless newer offsets replaced it). Called after every batch and every loop step, so
        the last offsets are committed although no batch follows. A lost commit only redelivers events the ledger
        knows."""
        future = self._commit_future
        if future is not None:
            if not future.is_done:
                return
            self._commit_future = None
            if future.failed():
                self.stats.commit_failures += 1
                logger.warning(
                    "offset commit failed; it is sent again",
                    extra={"error": f"{type(future.exception).__name__}: {future.exception}"},
                )
                for tp, meta in self._commit_sent.items():
                    if tp in self._assigned:
                        self._to_commit.setdefault(tp, meta)
        if not self._to_commit or self._consumer is None:
            return
        offsets, self._to_commit = self._to_commit, {}
        self._commit_sent = offsets
        try:
            self._commit_future = self._consumer.commit_async(offsets)
        except KafkaError as exc:
            self.stats.commit_failures += 1
            logger.warning("offset commit failed; it is sent again", extra={"error": f"{type(exc).__name__}: {exc}"})
            for tp, meta in offsets.items():
                self._to_commit.setdefault(tp, meta)

    def _commit_offsets_now(self) -> None:
        """The last processed offsets, committed synchronously (on closing: nothing processed comes again)."""
        offsets, self._processed, self._to_commit = self._processed, {}, {}
        if offsets and self._consumer is not None and self._assigned:
            owned = {tp: meta for tp, meta in offsets.items() if tp in self._assigned}
            if owned:
                self._consumer.commit(owned)

    def _observe_stored(self) -> None:
        """Metrics of what the last commit made durable."""
        stored, self._stored = self._stored, []
        if self.metrics is not None:
            self.metrics.observe_effects(stored, time.time())
            self.metrics.observe_engine(self.engine.stats, self.engine.customers_in_memory)

    def _observe_lag(self) -> None:
        if self.metrics is None or self._consumer is None:
            return
        for tp in self._assigned:
            highwater = self._consumer.highwater(tp)
            position = self._consumer.position(tp) if highwater is not None else None
            if highwater is not None and position is not None:
                self.metrics.set_lag(tp.partition, max(highwater - position, 0) + len(self._buffers.get(tp, ())))

    def _check_broker(self) -> None:
        """Readiness: is any broker connected? (kafka-python reconnects by itself and raises nothing.)"""
        now = time.monotonic()
        if now - self._broker_checked < BROKER_CHECK_S:
            return
        self._broker_checked = now
        try:
            client = self._consumer._client
            connected = any(client.connected(b.node_id) for b in client.cluster.brokers())
        except Exception:  # private API moved: do not guess
            return
        self.health.set(broker=None if connected else f"no broker reachable at {self.settings.kafka_bootstrap_servers}")

    def _evaluate(self, engine: Engine, pending: Pending, event: Event) -> list[Effect]:
        before = engine.stats.duplicates
        if event.customer_id is None:
            effects, seq = engine.record_scope(event)
            if seq is not None:  # applied to each owned partition's customers at its place in their order
                for tp, items in self._scopes.items():
                    items.append(ScopeItem(tp, seq, pending.ts, event))
                    items.sort(key=lambda item: (item.ts, item.seq))
                self._known_seqs.add(seq)
        elif engine.owns is not None and not engine.owns(event.customer_id):
            # Keyed to the wrong partition (by its producer): send it to the one that owns the customer.
            self.store.outbox_add(self.settings.topic_events, event.customer_id, pending.record.value)
            self.stats.consumed["forwarded"] += 1
            if self.metrics is not None:
                self.metrics.observe_event(event.type, "forwarded")
            return []
        else:
            effects = engine.process(event)
        result = "duplicate" if engine.stats.duplicates != before else "processed"
        self.stats.consumed[result] += 1
        if self.metrics is not None:
            self.metrics.observe_event(event.type, result)
        return effects

    def _emit(self, effects: list[Effect]) -> None:
        settings = self.settings
        for effect in effects:
            topic = settings.topic_tasks if effect.kind == "task" else settings.topic_gestures
            self.store.outbox_add(topic, effect.customer_id, effect.to_json().encode())
            self.stats.effects[f"{effect.kind} {effect.playbook}"] += 1
            self._stored.append(effect)
        if effects and self.on_effects is not None:
            self.on_effects(effects)

    def _dead_letter(self, pending: Pending, reason: str) -> None:
        record = pending.record
        self.stats.consumed["invalid"] += 1
        self.stats.dlq[reason.split(":", 1)[0]] += 1
        if self.metrics is not None:
            self.metrics.observe_event(pending.event.type if pending.event else None, "invalid")
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

    # ------------------------------------------------------------------------------------------- failures

    def _commit(self) -> None:
        """Commit the store's transaction, once the broker has what the outbox sent (the take becomes final)."""
        if self._publisher is not None:
            self._publisher.confirm()
        self.store.commit()

    def _recover(self) -> None:
        """After a failed batch: forget uncommitted writes and in-memory state, read again from the committed
        offsets."""
        if self._publisher is not None:
            self._publisher.forget()
        try:
            self.store.rollback()
        except StoreError:
            logger.exception("rollback failed")
        consumer = self._consumer
        if consumer is None:
            return
        try:
            self._rewind()
        except KafkaError:
            logger.exception("cannot rewind to the committed offsets; reconnecting")
            self._close_clients()
        self._buffers = {tp: deque() for tp in self._assigned}
        self._scope_records = {}
        self._paused.clear()
        owned = {tp.partition for tp in self._assigned} if self._assigned else None
        self.engine = self._new_engine(owned)
        try:
            self._load_scopes()
        except StoreError:
            logger.exception("cannot reload the scope log; trying again with the next batch")
            self._scopes = {}

    def _close_clients(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a broken client must not hide the first error
                    logger.exception("closing a Kafka client failed")
        self._consumer = self._producer = self._publisher = None
        self._assigned = set()

    def _close(self) -> None:
        try:
            self._commit()
            self._commit_offsets_now()
            if self._publisher is not None:
                self._publisher.publish()
        except (KafkaError, StoreError):
            logger.exception("the outbox could not be published before closing; it is sent on the next start")
            # What was taken and not confirmed goes back to the outbox (closing the store commits).
            if self._publisher is not None:
                self._publisher.forget()
            with contextlib.suppress(StoreError):
                self.store.rollback()
        self._close_clients()
        logger.info(
            "stopped",
            extra={
                "consumed": dict(self.stats.consumed),
                "effects": sum(self.stats.effects.values()),
                "batches": self.stats.batches,
            },
        )
