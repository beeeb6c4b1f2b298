"""`Service`: the loop of `recovery serve` (see the package's docstring). Each step reads (`Reader`), takes batches in
event-time order (`Merge`, `Barrier`), evaluates them (`Evaluator`), commits the store and then the offsets
(`Offsets`), publishes the outbox (`OutboxPublisher`) and reports what it did (`Reporting`)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from recovery.config import Settings
from recovery.consumer.clients import kafka_transport
from recovery.consumer.evaluation import Evaluator, Poisoned
from recovery.consumer.fence import Fence, Fenced
from recovery.consumer.offsets import Offsets
from recovery.consumer.ordering import HOLD, Barrier, Floor, Merge
from recovery.consumer.reader import Reader
from recovery.consumer.records import BARRIER_POLL_MS, STEP_BUDGET_S, Item, ServiceStats
from recovery.consumer.reporting import Reporting
from recovery.consumer.transport import Rebalance, TopicPartition, Transport, describe
from recovery.effects import Effect
from recovery.exceptions import BrokerError, StoreError
from recovery.health import Health
from recovery.metrics import Metrics
from recovery.outbox import Answer, OutboxPublisher, Settled
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.base import OutboxStore, Store, Watermark

logger = logging.getLogger("recovery.consumer")  # one name for the loop's logs, whatever the module

TransportFactory = Callable[[Settings], Transport]
MAX_BACKOFF_S = 10.0
"""The longest pause between two tries while a failure lasts (the store or the broker is back within it)."""
CLOSE_PUBLISH_S = 10.0
"""How long closing publishes what waits in the outbox."""
CLOCKS = "clock:{topic}/{partition}"
"""The store's watermark of a partition's event-time clock (the store is pruned below the lowest)."""
NO_CLOCK = Watermark(float("-inf"))  # a partition whose clock is not stored yet holds the pruning back


class Service:
    """One `recovery serve` instance's consumer loop. Build it, then `run(stop)` until `stop` is set.

    `transport` connects to the broker (called again after a broker failure); `wall_clock` and `monotonic` (epoch
    and monotonic seconds) are injectable so tests can pin what "now" is. `on_step` is called once per loop step
    with the loop's store (inside its transaction) and the wall clock: the task lifecycle's escalation
    (recovery.lifecycle.Escalator).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        playbooks: Sequence[CompiledPlaybook],
        *,
        transport: TransportFactory = kafka_transport,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        on_effects: Callable[[list[Effect]], None] | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        on_step: Callable[[Store, float], None] | None = None,
        outbox: OutboxStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.outbox = outbox if outbox is not None else store
        """The publisher's connection to the store (by default the loop's own, used between its transactions)."""
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """This instance among the publishers of the outbox."""
        self.connect = transport
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self.metrics = metrics
        self.health = health or Health()
        self.on_step = on_step
        self.stats = ServiceStats()
        self.evaluator = Evaluator(
            settings,
            store,
            playbooks,
            self.stats,
            metrics=metrics,
            on_effects=on_effects,
            prune_floor=self._prune_floor,
        )
        self.fence = Fence(store)
        self.merge = Merge(settings.batch_max_events)
        self.barrier = Barrier(
            store, settings.topic_events, self.merge, barrier_wait_s=settings.barrier_wait_s, monotonic=monotonic
        )
        self.offsets = Offsets(self.stats)
        self.reporting = Reporting(settings, self.evaluator, self.merge, metrics, self.health)
        self.reader: Reader | None = None
        """The connection to the broker (None until connected, and after a broker failure)."""
        self.publisher: OutboxPublisher | None = None
        self._unsettled: list[Answer] = []
        self._reload: list[CompiledPlaybook] | None = None
        self._polled_at: float | None = None
        self._outbox_behind = False  # the last step sent a full claim of the outbox: more may wait
        self._stale = False
        """After a failure: the engines and the scope log are read again from the store before the next step."""
        self._released = False
        self.poisoned: dict[tuple[str, int, int], str] = {}
        """Records whose evaluation raised, by (topic, partition, offset): sent to the DLQ, not evaluated again."""

    # ------------------------------------------------------------------------------------------- the loop

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; then finish the batch, commit, publish, close. A step is atomic: whatever
        fails in it is rolled back and read again, after a backoff that doubles up to `MAX_BACKOFF_S` while the
        failure lasts (`/readyz` says what fails meanwhile)."""
        backoff = self.settings.retry_backoff_s
        while not stop.is_set():
            try:
                reader = self.reader or self._connect()
                if self._stale:
                    self._restore(reader)
                self._step(stop, reader)
                backoff = self.settings.retry_backoff_s
                continue
            except Poisoned as poisoned:
                self.poisoned[poisoned.key] = poisoned.reason
                logger.warning("evaluation failed: the step is read again, the event goes to the DLQ")
                self._recover()
                continue  # no backoff: the event that failed is known now
            except StoreError as exc:
                self.stats.store_errors += 1
                self.health.set(store=str(exc))
                if self.metrics is not None:
                    self.metrics.observe_store_error()
                if isinstance(exc, Fenced):  # the store is fine: the group moved on while this instance was away
                    logger.warning("the step is rolled back: its partitions moved", extra={"error": str(exc)})
                else:
                    logger.exception("store failure: the step is rolled back and read again")
            except BrokerError as exc:
                self.stats.broker_errors += 1
                self.health.set(broker=str(exc))
                logger.exception("broker failure: the step is rolled back and read again")
            except Exception as exc:  # a step is atomic whatever fails
                self.stats.loop_errors += 1
                self.health.set(loop=f"{type(exc).__name__}: {exc}")
                logger.exception("unexpected failure: the step is rolled back and read again")
            self._recover()
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        self._close()

    def request_reload(self, playbooks: Sequence[CompiledPlaybook]) -> None:
        """Run `playbooks` from the next loop step on (called from the API's thread; the loop swaps the engine)."""
        self._reload = list(playbooks)

    def _connect(self) -> Reader:
        transport = self.connect(self.settings)
        self.reader = Reader(transport, self.merge, self._window)
        self.publisher = OutboxPublisher(
            self.outbox,
            transport,
            owner=self.owner,
            backoff_s=self.settings.retry_backoff_s,
            metrics=self.metrics,
            waiting=lambda: self.reporting.broker(transport, waiting=True),  # where a step meets an outage first
            answered=self._unsettled,
        )
        self._unsettled = []
        if not self._released and self.settings.store_url.startswith("sqlite:"):
            # The one instance on this store: the claims of its earlier runs died with them.
            self.outbox.outbox_release()
            self.outbox.commit()
        self._released = True
        return self.reader

    def _window(self) -> tuple[float, float]:
        """The event times accepted now: from `max_event_age_s` before wall time to `max_future_skew_s` after."""
        now, settings = self.wall_clock(), self.settings
        earliest = now - settings.max_event_age_s if settings.max_event_age_s else float("-inf")
        return earliest, now + settings.max_future_skew_s

    def _restore(self, reader: Reader) -> None:
        """After a failure, before the next step: the committed offsets, the engines and the scope log again."""
        try:
            reader.rewind()
        except BrokerError:
            logger.warning("cannot read the committed offsets; connecting to the broker again")
            self._close_transport()
            raise
        self._load(reader)
        self._stale = False

    def _load(self, reader: Reader) -> int:
        """The assigned partitions claimed (once), their engines and scope log read; returns the topic's partitions."""
        self.fence.claim()
        partitions = reader.partitions()
        self.evaluator.rebuild([tp.partition for tp in reader.assigned], partitions)
        self.barrier.load(reader.assigned, partitions)
        return partitions

    def _step(self, stop: threading.Event, reader: Reader) -> None:
        transport = reader.transport
        reload, self._reload = self._reload, None
        if reload is not None:
            self.evaluator.reload(reload)
            logger.info("playbooks reloaded", extra={"playbooks": len(reload)})
        # Held back by another instance's watermark: look again soon. The outbox behind: do not wait for records.
        held = self.barrier.held_since is not None
        wait_ms = 0 if self._outbox_behind else BARRIER_POLL_MS if held else int(self.settings.poll_timeout_s * 1000)
        self.barrier.reading(self.wall_clock())
        read, rebalance = reader.read(wait_ms)
        if rebalance is not None:
            self._rebalanced(reader, rebalance)
        elif read and self._polled_at is None:
            self._polled_at = self.monotonic()
        stuck = reader.stuck(read, self.monotonic())
        if stuck:  # the step fails as a broker failure; the next connects again, from the committed offsets
            self._close_transport()
            raise BrokerError(stuck)
        self.reporting.broker(transport)  # before the step waits on the producer (Reporting.broker)
        if reader.assigned:
            self.barrier.update(reader.lagging, self._scope_since())
        self.reporting.lag(reader)
        # Poll again within a bounded time, so that a rebalance (a new instance joining) or a stop is not held up.
        budget = self.monotonic() + STEP_BUDGET_S
        floors = self.barrier.floors(reader.lagging)
        batches = self.stats.batches
        while not stop.is_set() and self.monotonic() < budget:
            batch = self.merge.take(floors, reader.lagging)
            if not batch:
                break
            if self.stats.batches != batches:
                self._publish()  # what the batch before stored: through a backlog too, not after it
            self._process(batch, reader)
            floors = self.barrier.floors(reader.lagging)
        reader.resume_drained()
        if self.stats.batches == batches:  # nothing could be taken
            reader.resume_holding(floors)
        self._follow_wall_clock(reader, floors)
        if self.on_step is not None:
            self.on_step(self.store, self.wall_clock())
        self._commit()
        self.offsets.send(transport, reader.assigned)  # what waited for a commit in flight, or failed
        self.reporting.stored()
        self._polled_at = None
        self._publish()
        self.health.set(store=None, loop=None)

    def _publish(self) -> None:
        """Settle what was sent last, send what was stored since (after each batch but a step's last, and at the
        step's end). What it publishes is committed already: a failure here holds up publishing only (tried again
        at the next step), but a producer that no longer answers at all fails the step, to connect again."""
        self._outbox_behind = False
        if self.publisher is None:
            return
        settled = self._publishing(self.publisher, self.publisher.cycle)
        self._outbox_behind = settled is not None and settled.more
        if settled is not None and settled.unanswered:  # past the producer's own bound (outbox.FLUSH_TIMEOUT_S)
            self._close_transport()
            raise BrokerError(f"the Kafka producer left {settled.unanswered} message(s) unanswered: connecting again")
        if settled is not None and settled.broken:  # every send through it fails: only a new producer can try
            self._close_transport()
            raise BrokerError(f"the Kafka producer can send nothing more ({settled.broken}): connecting again")

    def _publishing(self, publisher: OutboxPublisher, step: Callable[[], Settled]) -> Settled | None:
        """One of `publisher`'s steps; when it fails, what was in flight is sent again later (None)."""
        try:
            return step()
        except (BrokerError, StoreError) as exc:
            logger.warning("publishing the outbox failed; tried again at the next step", extra={"error": str(exc)})
            publisher.forget()
            try:
                self.outbox.rollback()  # a lost connection is opened again here, if the server is back
            except StoreError:
                logger.warning("the outbox's connection is not back yet")
            return None

    def _process(self, batch: list[Item], reader: Reader) -> None:
        """One store transaction: evaluate, queue effects and DLQ records, commit; then commit offsets."""
        done = self.evaluator.evaluate(batch, self.barrier, self.poisoned)
        for tp, ts in done.last_ts.items():
            self.merge.processed(tp, ts)
        topic = self.settings.topic_events
        for partition, clock in self.evaluator.clocks().items():
            self.store.set_watermark(CLOCKS.format(topic=topic, partition=partition), clock)
        if reader.assigned:
            self.barrier.update(reader.lagging, self._scope_since())
        self._commit()
        self.reporting.stored()
        self.stats.batches += 1
        if not done.offsets:
            return
        self.offsets.stored(done.offsets)
        self.offsets.send(reader.transport, reader.assigned)
        if self.metrics is not None and self._polled_at is not None:
            self.metrics.observe_batch(self.monotonic() - self._polled_at)

    def _rebalanced(self, reader: Reader, rebalance: Rebalance) -> None:
        if rebalance.revoked:
            # What was processed is in the store; what is buffered is fetched again, by us or the next owners,
            # from the committed offsets (a commit still pending only makes some events come again, which the
            # ledger recognises).
            self.offsets.forget()
            reader.revoked()
            self.merge.reset(())
            self.merge.scopes = {}
            self.fence.revoked()
            if self.metrics is not None:
                self.metrics.forget_partitions()
        if rebalance.assigned is None:
            return
        self.stats.rebalances += 1
        self.fence.assigned(rebalance.assigned)  # first: if what follows fails, `_restore` claims them
        reader.rewind(rebalance.assigned)
        partitions = self._load(reader)
        logger.info(
            "partitions assigned",
            extra={"partitions": sorted(tp.partition for tp in rebalance.assigned), "of": partitions},
        )

    def _follow_wall_clock(self, reader: Reader, floors: dict[TopicPartition, Floor]) -> None:
        """A partition read to its end, with nothing left to apply, follows wall time minus `lateness_s` (so that its
        deadlines fire although no event comes), but never past a scope event another partition may still log."""
        now = self.wall_clock() - self.settings.lateness_s
        for tp in reader.assigned:
            if tp.partition in self.evaluator.engines and not self.merge.buffered(tp) and not reader.lagging(tp):
                if not self.merge.scopes_pending(tp):
                    self.evaluator.advance(tp.partition, min(now, floors.get(tp, HOLD).at(now)))

    def _scope_since(self) -> float:
        """Scope events other instances log are read from this event time on (none older matters to the engines)."""
        engines = self.evaluator.engines.values()
        horizon = max((engine.horizon_s for engine in engines), default=0.0)
        return min(engine.clock for engine in engines) - horizon if horizon else float("-inf")

    def _prune_floor(self, ts: float) -> float:
        """How far the store may be pruned: the lowest clock of all the partitions, of every instance (history,
        scope log and ledger are shared by them all; a partition not seen yet holds it all)."""
        prefix = CLOCKS.format(topic=self.settings.topic_events, partition="")
        marks = self.store.watermarks(prefix)
        clocks = [marks.get(f"{prefix}{n}", NO_CLOCK).ts for n in range(self.barrier.partitions)]
        return min(clocks, default=float("-inf"))

    def _commit(self) -> None:
        self.fence.check()
        self.store.commit()

    # ------------------------------------------------------------------------------------------- failures

    def _recover(self) -> None:
        """After a failed step: forget what it wrote and what is held in memory; the next step reads the committed
        offsets, the engines and the scope log again (`_restore`). Nothing is read here: the store or the broker may
        still be away. What the publisher has in flight stays: its claims were committed apart from the step, and
        the next `_publish` settles them as the broker answered (forgotten, they would be sent again)."""
        self.evaluator.forget_stored()
        for store in {id(self.store): self.store, id(self.outbox): self.outbox}.values():
            try:
                store.rollback()  # a lost connection is opened again here, if the server is back
            except StoreError as exc:
                self.health.set(store=str(exc))
                logger.warning("rollback failed; trying again", extra={"error": str(exc)})
        self._stale = True

    def _close_transport(self) -> None:
        if self.publisher is not None:  # what the broker took is not sent again by the next clients
            self._publishing(self.publisher, self.publisher.settle_answered)
            self._unsettled = self.publisher.answered  # the store failed meanwhile: the next publisher stores them
        if self.reader is not None:
            self.reader.transport.close()  # it logs what fails to close (transport.close_each)
        self.reader = None
        self.publisher = None

    def _close(self) -> None:
        """The last step's work is committed, its offsets too, and what waits in the outbox is published (for a
        bounded time: what is left is published by the next start)."""
        try:
            if not self._stale:
                self._commit()
                if self.reader is not None:
                    self.offsets.commit_now(self.reader.transport, self.reader.assigned)
            if self.publisher is not None:
                self.publisher.publish(CLOSE_PUBLISH_S)
        except (BrokerError, StoreError) as exc:
            logger.warning(
                "the outbox could not be published before closing; it is published on the next start",
                extra={"error": describe(exc)},
            )
            if self.publisher is not None:
                self.publisher.forget()
            for store in (self.store, self.outbox):
                try:
                    store.rollback()
                except StoreError:
                    logger.exception("rollback failed")
        self._close_transport()
        stats = self.stats
        consumed, effects = dict(stats.consumed), sum(stats.effects.values())
        logger.info("stopped", extra={"consumed": consumed, "effects": effects, "batches": stats.batches})
