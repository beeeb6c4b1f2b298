"""Prometheus metrics of `recovery serve`, on `/metrics` (DESIGN.md, HTTP).

`Metrics(registry)` defines every metric on the registry it is given (never the global one), so each test and
each service builds its own. The service calls the small `observe_*` / `set_*` methods below; each says where
in the loop (recovery/consumer/ `Service`) or the API it belongs.

Names follow Prometheus conventions: prefix `recovery_`, base units (seconds), `_total` for counters. Label values
come from small fixed sets (event types outside the standard ones are `other`, unknown outcomes `other`) or from
the playbooks themselves (playbook ids, queues, gesture types and currencies), so series stay bounded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from recovery import __version__
from recovery.effects import Effect, Task
from recovery.engine.cases import CUSTOMER_LOST, HELD_OUT, MUTED_REASONS, TREATED
from recovery.engine.stats import EngineStats
from recovery.events import STANDARD_TYPES
from recovery.metrics.labels import (
    DLQ_REASONS,
    EVENT_RESULTS,
    GESTURE_STATUSES,
    GRANTED_STATUSES,
    OTHER,
    RELOAD_RESULTS,
    TASK_OUTCOMES,
    dlq_reason,
    event_type_label,
)
from recovery.times import parse_time

# From sub-second (a caught-up stream) to a day (a backlog after downtime, evaluated in event time).
EVENT_TO_EFFECT_BUCKETS_S: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
)  # fmt: skip
# One store transaction and offset commit: milliseconds for small batches, seconds for 2,000 events on PostgreSQL.
POLL_TO_COMMIT_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# People: minutes to a week.
TASK_BUCKETS_S: Final = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 604800.0)


class Metrics:
    """Every metric of the service, on `registry`. `playbooks` (ids) start their per-playbook series at zero."""

    def __init__(self, registry: CollectorRegistry, playbooks: Iterable[str] = ()) -> None:
        self.registry = registry
        r = registry
        self.build_info = Info("recovery_build", "Version of recovery running.", registry=r)
        self.build_info.info({"version": __version__})

        # Consumption.
        self.events = Counter(
            "recovery_events_consumed_total",
            "Events consumed from the input topic, by type (standard types, else other) and result.",
            ["type", "result"],
            registry=r,
        )
        self.dlq = Counter(
            "recovery_dlq_messages_total", "Messages sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        self.consumer_lag = Gauge(
            "recovery_consumer_lag",
            "Messages on the broker not yet consumed (high watermark minus position), by input partition.",
            ["partition"],
            registry=r,
        )
        self.poll_to_commit = Histogram(
            "recovery_batch_poll_to_commit_seconds",
            "Time from polling a batch's first record to committing its offsets (after the store commit).",
            buckets=POLL_TO_COMMIT_BUCKETS_S,
            registry=r,
        )
        self.event_to_effect = Histogram(
            "recovery_event_to_effect_seconds",
            "Time from an effect's cause (occurred_at, or the deadline) to the effect being stored.",
            buckets=EVENT_TO_EFFECT_BUCKETS_S,
            registry=r,
        )

        # The engine.
        self.matches = Counter(
            "recovery_playbook_matches_total",
            "Playbook conditions that matched, by playbook.",
            ["playbook"],
            registry=r,
        )
        self.suppressions = Counter(
            "recovery_cooldown_suppressions_total",
            "Matches suppressed by the playbook's cooldown for that customer, by playbook.",
            ["playbook"],
            registry=r,
        )
        self.muted = Counter(
            "recovery_effects_muted_total",
            "Effects a matched playbook did not raise: muted for the customer by another playbook (inhibited) or by"
            " ops (snoozed), kept in shadow mode (shadow) or for a customer in its holdout (held-out), by playbook and"
            " reason.",
            ["playbook", "reason"],
            registry=r,
        )
        self.shadow = Counter(
            "recovery_shadow_effects_total",
            "Effects a playbook in shadow mode would have raised (kept, never published), by playbook, version and"
            " kind (task, gesture).",
            ["playbook", "version", "kind"],
            registry=r,
        )
        self.triggers = Counter(
            "recovery_holdout_triggers_total",
            "Matches of a playbook with a holdout that passed its cooldown and would raise something, by playbook and"
            " group (treated: raised, or muted; held-out: kept, not raised).",
            ["playbook", "group"],
            registry=r,
        )
        self.playbook_errors = Counter(
            "recovery_playbook_errors_total",
            "Evaluations of a playbook that failed (counted and logged; the event goes on), by playbook.",
            ["playbook"],
            registry=r,
        )
        self.effects = Counter(
            "recovery_effects_total",
            "Effects raised, by playbook and kind (task, gesture).",
            ["playbook", "kind"],
            registry=r,
        )
        self.customers_in_memory = Gauge(
            "recovery_customers_in_memory", "Customers whose state the engine holds in memory.", registry=r
        )
        self.reloads = Counter(
            "recovery_playbook_reloads_total", "Playbook loads and reloads, by result.", ["result"], registry=r
        )
        self.store_errors = Counter(
            "recovery_store_errors_total", "Store failures (the batch is rolled back and read again).", registry=r
        )

        # The outbox.
        self.published = Counter(
            "recovery_outbox_published_total",
            "Messages the broker took from the outbox (effects, DLQ records, hand-overs, the API's events).",
            registry=r,
        )
        self.outbox_retries = Counter(
            "recovery_outbox_retries_total",
            "Messages whose publishing failed for a reason that may pass, to be tried again after a backoff.",
            registry=r,
        )
        self.outbox_parked = Gauge(
            "recovery_outbox_parked",
            "Messages the broker refused for good, kept in the outbox unpublished (`recovery outbox` lists them).",
            registry=r,
        )

        # Tasks.
        self.tasks_raised = Counter(
            "recovery_tasks_raised_total", "Tasks raised, by queue and priority.", ["queue", "priority"], registry=r
        )
        self.tasks_cancelled = Counter(
            "recovery_tasks_cancelled_total",
            "Tasks cancelled before they were done (reason customer-lost: a customer.lost event closed their case),"
            " by playbook and reason.",
            ["playbook", "reason"],
            registry=r,
        )
        self.tasks_open = Gauge(
            "recovery_tasks_open", "Tasks open or claimed (not done, not cancelled), by queue.", ["queue"], registry=r
        )
        self.tasks_overdue = Gauge(
            "recovery_tasks_overdue", "Open or claimed tasks past their due_at, by queue.", ["queue"], registry=r
        )
        self.time_to_claim = Histogram(
            "recovery_task_time_to_claim_seconds",
            "Time from a task's created_at to its first claim.",
            buckets=TASK_BUCKETS_S,
            registry=r,
        )
        self.time_to_complete = Histogram(
            "recovery_task_time_to_complete_seconds",
            "Time from a task's created_at to its completion.",
            buckets=TASK_BUCKETS_S,
            registry=r,
        )
        self.outcomes = Counter(
            "recovery_task_outcomes_total",
            "Tasks completed, by playbook and outcome (saved, lost, unreachable, not-needed, other).",
            ["playbook", "outcome"],
            registry=r,
        )

        # Gestures.
        self.gestures = Counter(
            "recovery_gestures_total",
            "Gestures entering a status (raised as proposed or issued; approved, issued, rejected later), by type.",
            ["type", "status"],
            registry=r,
        )
        self.gesture_value = Counter(
            "recovery_gesture_value_total",
            "Amount of gestures granted (raised as issued, or approved later), by type and currency.",
            ["type", "currency"],
            registry=r,
        )

        self._engine_stats: EngineStats | None = None
        self._seen: dict[str, dict[Any, int]] = {}
        """Per counter, the engine's counts already added (`_add_deltas`)."""
        self._lag_partitions: set[int] = set()
        self._task_queues: set[str] = set()

        for event_type in (*STANDARD_TYPES, OTHER):
            for result in EVENT_RESULTS:
                self.events.labels(event_type, result)
        for reason in DLQ_REASONS:
            self.dlq.labels(reason)
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)
        for playbook in playbooks:
            self.matches.labels(playbook)
            self.suppressions.labels(playbook)
            for reason in MUTED_REASONS:
                self.muted.labels(playbook, reason)
            self.tasks_cancelled.labels(playbook, CUSTOMER_LOST)
            self.playbook_errors.labels(playbook)

    # ------------------------------------------------------------------------------------------- consumption

    def observe_event(self, event_type: str | None, result: str, count: int = 1) -> None:
        """`count` consumed records (the evaluator sums a batch's). Result `processed`, `duplicate` or `forwarded`,
        or `invalid` for one sent to the DLQ (type: the event's, or None when it could not be decoded)."""
        if result not in EVENT_RESULTS:
            raise ValueError(f"event result {result!r} is not one of {', '.join(EVENT_RESULTS)}")
        self.events.labels(event_type_label(event_type), result).inc(count)

    def observe_dlq(self, reason: str) -> None:
        """One message queued for the DLQ. Call in `Service._dead_letter` with the reason text it writes in the
        `recovery-error` header (or a label of `DLQ_REASONS`); see `dlq_reason`."""
        self.dlq.labels(dlq_reason(reason)).inc()

    def observe_batch(self, poll_to_commit_s: float) -> None:
        """One batch processed and committed. Call at the end of `Service._process`, after `consumer.commit`, with
        the seconds since the batch's first record was polled (a `time.monotonic()` taken in `_step`)."""
        self.poll_to_commit.observe(max(poll_to_commit_s, 0.0))

    def set_lag(self, partition: int, lag: int) -> None:
        """A partition's lag (`highwater - position`, in messages). Call in `Service._step` after polling, for every
        assigned partition whose high watermark is known."""
        self._lag_partitions.add(partition)
        self.consumer_lag.labels(str(partition)).set(max(lag, 0))

    def forget_partitions(self, partitions: Iterable[int] | None = None) -> None:
        """Drop the lag series of partitions no longer assigned (all when None). Call in
        `Service._apply_rebalance` with the revoked partitions, and in `Service._close`."""
        gone = set(self._lag_partitions) if partitions is None else set(partitions) & self._lag_partitions
        for partition in gone:
            self.consumer_lag.remove(str(partition))
        self._lag_partitions -= gone

    def observe_published(self, count: int) -> None:
        """Messages the broker took. Call in `OutboxPublisher.confirm`."""
        if count:
            self.published.inc(count)

    def observe_outbox_retries(self, count: int) -> None:
        """Messages to be tried again. Call in `OutboxPublisher.confirm`."""
        if count:
            self.outbox_retries.inc(count)

    def set_outbox_parked(self, count: int) -> None:
        """The parked messages in the outbox. Call from the publisher, now and then and after parking one."""
        self.outbox_parked.set(count)

    def observe_store_error(self) -> None:
        """A store failure. Call in `Service.run`'s `except StoreError` handler (and wherever else a StoreError is
        caught and survived, such as the API's task endpoints)."""
        self.store_errors.inc()

    # ------------------------------------------------------------------------------------------- engine

    def observe_engine(self, stats: EngineStats, customers_in_memory: int) -> None:
        """Matches, cooldown suppressions, muted and shadow effects, holdout triggers and evaluation errors since the
        last call, and the customers held in memory.
        Call once per batch at the end of `Service._process` (and after `engine.advance` in `_step`) with
        `engine.stats` and `engine.customers_in_memory`. The counts in `stats` are cumulative; a new engine (a
        rebalance) starts its own, which is noticed by identity."""
        if stats is not self._engine_stats:
            self._engine_stats = stats
            self._seen = {}
        seen = self._seen
        _add_deltas(self.matches, stats.matches, seen.setdefault("matches", {}))
        _add_deltas(self.suppressions, stats.suppressed, seen.setdefault("suppressed", {}))
        _add_deltas(self.muted, stats.muted, seen.setdefault("muted", {}))
        _add_deltas(self.playbook_errors, stats.playbook_errors, seen.setdefault("errors", {}))
        shadow = {(playbook, str(version), kind): n for (playbook, version, kind), n in stats.shadow.items()}
        _add_deltas(self.shadow, shadow, seen.setdefault("shadow", {}))
        for playbook, _ in stats.triggers:  # both groups have a series once either has
            for group in (TREATED, HELD_OUT):
                self.triggers.labels(playbook, group)
        _add_deltas(self.triggers, stats.triggers, seen.setdefault("triggers", {}))
        self.customers_in_memory.set(customers_in_memory)

    def observe_reload(self, ok: bool) -> None:
        """A load of the playbooks. Call where `serve` loads them at start and where a reload is applied (the ops
        API): `ok=False` when it failed and the last good version kept running."""
        self.reloads.labels("success" if ok else "failure").inc()

    def observe_effects(self, effects: Iterable[Effect], now: float, occurred_at_ts: float | None = None) -> None:
        """Effects just made durable. Call right after the `store.commit()` that stored them: in `Service._process`
        with the batch's effects (collect them in `Service._emit`), and in `_step` after `engine.advance`. `now`
        is wall time (epoch seconds); the latency is measured from `occurred_at_ts` when given (the triggering
        event's time), else from each effect's `created_at` (the event time of its cause, a deadline included)."""
        # Summed per series first: a fan-out commits 100,000 credits at once, and each labelled increment is a
        # lookup and a lock.
        sums: dict[tuple[Any, tuple[str, ...]], float] = defaultdict(float)
        causes: dict[str, float] = {}
        for effect in effects:
            if effect.status == "cancelled":  # a task published again, cancelled: counted once, raised before
                sums[self.tasks_cancelled, (effect.playbook, CUSTOMER_LOST)] += 1
                continue
            sums[self.effects, (effect.playbook, effect.kind)] += 1
            cause = occurred_at_ts
            if cause is None:
                cause = causes.get(effect.created_at)
                if cause is None:
                    cause = causes[effect.created_at] = parse_time(effect.created_at)
            self.event_to_effect.observe(max(now - cause, 0.0))
            if isinstance(effect, Task):
                sums[self.tasks_raised, (effect.queue, effect.priority)] += 1
                continue
            sums[self.gestures, (effect.type, effect.status)] += 1
            if effect.status in GRANTED_STATUSES:
                sums[self.gesture_value, (effect.type, effect.currency)] += effect.amount
        for (metric, labels), amount in sums.items():
            metric.labels(*labels).inc(amount)

    # ------------------------------------------------------------------------------------------- tasks and people

    def set_tasks(self, open_by_queue: Mapping[str, int], overdue_by_queue: Mapping[str, int]) -> None:
        """Open (open or claimed) and overdue tasks per queue, counted in the store. Call every few seconds from
        the service (after a batch at most every N seconds, or a timer) and after a task changes in the API. A
        queue missing from both mappings is set to 0, so a queue once seen keeps a series."""
        self._task_queues |= set(open_by_queue) | set(overdue_by_queue)
        for queue in self._task_queues:
            self.tasks_open.labels(queue).set(open_by_queue.get(queue, 0))
            self.tasks_overdue.labels(queue).set(overdue_by_queue.get(queue, 0))

    def observe_claim(self, seconds: float) -> None:
        """A task's first claim. Call in the API's claim endpoint with claim time minus the task's created_at."""
        self.time_to_claim.observe(max(seconds, 0.0))

    def observe_completion(self, playbook: str, outcome: str, seconds: float) -> None:
        """A task completed. Call in the API's complete endpoint with the task's playbook, the outcome and
        completion time minus the task's created_at (not from `task.completed` events: the API counts each once)."""
        self.outcomes.labels(playbook, outcome if outcome in TASK_OUTCOMES else OTHER).inc()
        self.time_to_complete.observe(max(seconds, 0.0))

    def observe_gesture_status(self, gesture_type: str, status: str, amount: float, currency: str) -> None:
        """A gesture moved to `status` after it was raised (the API's approve and reject, the issuing of an
        approved one). Its amount counts as granted when it is approved; issuing an approved gesture adds nothing
        to the value (it was counted on approval)."""
        if status not in GESTURE_STATUSES:
            raise ValueError(f"gesture status {status!r} is not one of {', '.join(GESTURE_STATUSES)}")
        self.gestures.labels(gesture_type, status).inc()
        if status == "approved":
            self.gesture_value.labels(gesture_type, currency).inc(amount)


def _add_deltas(counter: Counter, current: Mapping[Any, int], seen: dict[Any, int]) -> None:
    """Add to `counter` what each label (a playbook id, or a tuple of label values) counted since `seen`."""
    for labels, count in current.items():
        delta = count - seen.get(labels, 0)
        if delta > 0:
            counter.labels(*labels if isinstance(labels, tuple) else (labels,)).inc(delta)
        seen[labels] = count
