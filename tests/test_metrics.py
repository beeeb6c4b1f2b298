from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from recovery import __version__
from recovery.effects import Effect, Gesture, Task
from recovery.engine import Engine, EngineStats
from recovery.events import Event
from recovery.metrics import DLQ_REASONS, Metrics, dlq_reason, event_type_label
from recovery.playbooks.loader import load_playbook_text
from recovery.store import MemoryStore
from recovery.times import format_time, parse_time
from tests.promtool import run_promtool

T0 = parse_time("2026-11-20T10:00:00Z")
EVERY_FAMILY = {
    "recovery_build",
    "recovery_events_consumed",
    "recovery_dlq_messages",
    "recovery_consumer_lag",
    "recovery_batch_poll_to_commit_seconds",
    "recovery_event_to_effect_seconds",
    "recovery_playbook_matches",
    "recovery_cooldown_suppressions",
    "recovery_effects",
    "recovery_effects_muted",
    "recovery_shadow_effects",
    "recovery_holdout_triggers",
    "recovery_playbook_errors",
    "recovery_customers_in_memory",
    "recovery_playbook_reloads",
    "recovery_store_errors",
    "recovery_outbox_published",
    "recovery_outbox_retries",
    "recovery_outbox_parked",
    "recovery_tasks_raised",
    "recovery_tasks_cancelled",
    "recovery_tasks_open",
    "recovery_tasks_overdue",
    "recovery_task_time_to_claim_seconds",
    "recovery_task_time_to_complete_seconds",
    "recovery_task_outcomes",
    "recovery_gestures",
    "recovery_gesture_value",
}
"""Every metric family (names as prometheus_client reports them: counters without `_total`, info without `_info`)."""
PROMTOOL_SETUP_TIMEOUT_S = 900
"""The first promtool test may install the prometheus package first."""


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, playbooks=["repeat-caller", "outage-recovery"])


def make_task(**overrides: Any) -> Task:
    values: dict[str, Any] = {
        "id": "task-1",
        "playbook": "repeat-caller",
        "playbook_version": 1,
        "customer_id": "C1",
        "queue": "care-callback",
        "priority": "P2",
        "title": "Repeat caller",
        "reason": "called three times",
        "evidence": ["e1", "e2", "e3"],
        "due_at": format_time(T0 + 86400),
        "created_at": format_time(T0),
        "talking_points": [],
    }
    return Task(**{**values, **overrides})


def make_gesture(**overrides: Any) -> Gesture:
    values: dict[str, Any] = {
        "id": "gesture-1",
        "playbook": "outage-recovery",
        "playbook_version": 1,
        "customer_id": "C1",
        "type": "service-credit",
        "amount": 10.0,
        "currency": "USD",
        "status": "issued",
        "requires_approval": False,
        "reason": "a 2-hour outage",
        "evidence": ["o1"],
        "created_at": format_time(T0),
    }
    return Gesture(**{**values, **overrides})


@pytest.fixture
def task_factory() -> Callable[..., Task]:
    return make_task


@pytest.fixture
def gesture_factory() -> Callable[..., Gesture]:
    return make_gesture


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


class TestLabels:
    @pytest.mark.parametrize(
        ("event_type", "label"),
        [
            ("service.call", "service.call"),
            ("task.completed", "task.completed"),
            ("x.custom", "other"),
            (None, "other"),
        ],
    )
    def test_event_types_outside_the_standard_ones_are_other(self, event_type: str | None, label: str) -> None:
        assert event_type_label(event_type) == label

    @pytest.mark.parametrize(
        ("reason", "label"),
        [
            ("empty message (no value)", "empty"),
            ("invalid event: event: Invalid JSON: key must be a string at line 1 column 2", "invalid_json"),
            ("invalid event: id: Field required", "invalid_event"),
            ("invalid", "invalid_event"),
            ("evaluation failed: ZeroDivisionError: division by zero", "evaluation_failed"),
            *((reason, reason) for reason in DLQ_REASONS),
        ],
    )
    def test_dlq_reasons_fall_into_a_fixed_set(self, reason: str, label: str) -> None:
        assert dlq_reason(reason) == label


class TestConsumption:
    def test_events_by_type_and_result_start_at_zero(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        name = "recovery_events_consumed_total"
        assert value(registry, name, type="service.call", result="processed") == 0
        assert value(registry, name, type="other", result="invalid") == 0

    def test_events_are_counted_by_bounded_type_and_result(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        metrics.observe_event("service.call", "processed")
        metrics.observe_event("service.call", "processed")
        metrics.observe_event("service.call", "duplicate")
        metrics.observe_event("acme.custom", "processed")
        metrics.observe_event(None, "invalid")
        name = "recovery_events_consumed_total"
        assert value(registry, name, type="service.call", result="processed") == 2
        assert value(registry, name, type="service.call", result="duplicate") == 1
        assert value(registry, name, type="other", result="processed") == 1
        assert value(registry, name, type="other", result="invalid") == 1
        assert value(registry, name, type="acme.custom", result="processed") is None

    def test_an_unknown_result_is_a_programming_error(self, metrics: Metrics) -> None:
        with pytest.raises(ValueError, match="skipped"):
            metrics.observe_event("service.call", "skipped")

    def test_dlq_messages_by_reason(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        metrics.observe_dlq("empty message (no value)")
        metrics.observe_dlq("invalid event: event: Invalid JSON: expected value")
        metrics.observe_dlq("invalid event: id: Field required")
        metrics.observe_dlq("invalid event: type: String should match pattern")
        assert value(registry, "recovery_dlq_messages_total", reason="empty") == 1
        assert value(registry, "recovery_dlq_messages_total", reason="invalid_json") == 1
        assert value(registry, "recovery_dlq_messages_total", reason="invalid_event") == 2
        assert value(registry, "recovery_dlq_messages_total", reason="evaluation_failed") == 0

    def test_batch_poll_to_commit_is_a_histogram_in_seconds(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        metrics.observe_batch(0.02)
        metrics.observe_batch(3.0)
        name = "recovery_batch_poll_to_commit_seconds"
        assert value(registry, f"{name}_count") == 2
        assert value(registry, f"{name}_sum") == pytest.approx(3.02)
        assert value(registry, f"{name}_bucket", le="0.025") == 1
        assert value(registry, f"{name}_bucket", le="+Inf") == 2

    def test_lag_per_partition_and_forgetting_revoked_partitions(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        metrics.set_lag(0, 12)
        metrics.set_lag(3, 0)
        metrics.set_lag(4, -1)  # a position ahead of a stale high watermark is no lag
        assert value(registry, "recovery_consumer_lag", partition="0") == 12
        assert value(registry, "recovery_consumer_lag", partition="3") == 0
        assert value(registry, "recovery_consumer_lag", partition="4") == 0
        metrics.forget_partitions([3, 7])
        assert value(registry, "recovery_consumer_lag", partition="3") is None
        assert value(registry, "recovery_consumer_lag", partition="0") == 12
        metrics.forget_partitions()
        assert value(registry, "recovery_consumer_lag", partition="0") is None

    def test_store_errors(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        assert value(registry, "recovery_store_errors_total") == 0
        metrics.observe_store_error()
        assert value(registry, "recovery_store_errors_total") == 1


class TestEngine:
    def test_matches_and_suppressions_count_what_changed_since_the_last_call(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        assert value(registry, "recovery_playbook_matches_total", playbook="repeat-caller") == 0
        stats = EngineStats()
        stats.matches["repeat-caller"] = 3
        stats.suppressed["repeat-caller"] = 1
        metrics.observe_engine(stats, customers_in_memory=40)
        stats.matches["repeat-caller"] = 5
        stats.matches["cancellation-save"] = 1
        metrics.observe_engine(stats, customers_in_memory=42)
        assert value(registry, "recovery_playbook_matches_total", playbook="repeat-caller") == 5
        assert value(registry, "recovery_playbook_matches_total", playbook="cancellation-save") == 1
        assert value(registry, "recovery_cooldown_suppressions_total", playbook="repeat-caller") == 1
        assert value(registry, "recovery_customers_in_memory") == 42

    def test_muted_effects_count_by_playbook_and_reason(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        muted = "recovery_effects_muted_total"
        assert value(registry, muted, playbook="repeat-caller", reason="snoozed") == 0
        stats = EngineStats()
        stats.muted["repeat-caller", "inhibited"] = 2
        metrics.observe_engine(stats, customers_in_memory=1)
        stats.muted["repeat-caller", "inhibited"] = 3
        stats.muted["repeat-caller", "snoozed"] = 1
        metrics.observe_engine(stats, customers_in_memory=1)
        assert value(registry, muted, playbook="repeat-caller", reason="inhibited") == 3
        assert value(registry, muted, playbook="repeat-caller", reason="snoozed") == 1

    def test_shadow_and_held_out_effects_triggers_by_group_and_errors_per_playbook(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        muted, errors = "recovery_effects_muted_total", "recovery_playbook_errors_total"
        for reason in ("shadow", "held-out"):
            assert value(registry, muted, playbook="repeat-caller", reason=reason) == 0
        assert value(registry, errors, playbook="outage-recovery") == 0
        stats = EngineStats()
        stats.shadow["new-caller", 2, "task"] = 3
        stats.muted["new-caller", "shadow"] = 3
        stats.muted["repeat-caller", "held-out"] = 1
        stats.triggers["repeat-caller", "treated"] = 9
        stats.playbook_errors["new-caller"] = 1
        metrics.observe_engine(stats, customers_in_memory=1)
        stats.shadow["new-caller", 2, "task"] = 4
        stats.shadow["new-caller", 3, "gesture"] = 1
        stats.triggers["repeat-caller", "held-out"] = 1
        metrics.observe_engine(stats, customers_in_memory=1)
        shadow = "recovery_shadow_effects_total"
        assert value(registry, shadow, playbook="new-caller", version="2", kind="task") == 4
        assert value(registry, shadow, playbook="new-caller", version="3", kind="gesture") == 1
        assert value(registry, muted, playbook="new-caller", reason="shadow") == 3
        assert value(registry, muted, playbook="repeat-caller", reason="held-out") == 1
        triggers = "recovery_holdout_triggers_total"
        assert value(registry, triggers, playbook="repeat-caller", group="treated") == 9
        assert value(registry, triggers, playbook="repeat-caller", group="held-out") == 1
        assert value(registry, errors, playbook="new-caller") == 1

    def test_a_held_out_customers_engine_counts_reach_the_metrics(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        text = (
            "id: caller\nholdout: 50%\ntrigger: {event: service.call}\n"
            "actions: [{task: {queue: care, priority: P2, due_in: 1d, title: t, reason: r}}]\n"
        )
        pb = load_playbook_text(text, "caller.yaml")
        engine = Engine([pb], MemoryStore())
        ids = [f"C{i}" for i in range(40)]
        for i, cid in enumerate(ids):
            raw = {"id": f"e{i}", "type": "service.call", "customer_id": cid, "occurred_at": format_time(T0 + i)}
            engine.process(Event.from_dict(raw))
        metrics.observe_engine(engine.stats, customers_in_memory=engine.customers_in_memory)
        held = sum(pb.held_out(cid) for cid in ids)
        triggers = "recovery_holdout_triggers_total"
        assert value(registry, triggers, playbook="caller", group="held-out") == held
        assert value(registry, triggers, playbook="caller", group="treated") == 40 - held
        assert value(registry, "recovery_effects_muted_total", playbook="caller", reason="held-out") == held

    def test_a_cancelled_task_is_counted_as_cancelled_not_raised(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        metrics.observe_effects([make_task(), make_task(id="task-2", status="cancelled")], now=T0)
        assert value(registry, "recovery_tasks_raised_total", queue="care-callback", priority="P2") == 1
        assert value(registry, "recovery_effects_total", playbook="repeat-caller", kind="task") == 1
        cancelled = "recovery_tasks_cancelled_total"
        assert value(registry, cancelled, playbook="repeat-caller", reason="customer-lost") == 1

    def test_a_new_engine_after_a_rebalance_counts_from_zero_again(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        old = EngineStats()
        old.matches["repeat-caller"] = 10
        metrics.observe_engine(old, customers_in_memory=1)
        new = EngineStats()
        new.matches["repeat-caller"] = 2
        metrics.observe_engine(new, customers_in_memory=1)
        assert value(registry, "recovery_playbook_matches_total", playbook="repeat-caller") == 12

    def test_reloads_by_result(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        metrics.observe_reload(ok=True)
        metrics.observe_reload(ok=False)
        metrics.observe_reload(ok=False)
        assert value(registry, "recovery_playbook_reloads_total", result="success") == 1
        assert value(registry, "recovery_playbook_reloads_total", result="failure") == 2

    def test_build_info_carries_the_version(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        assert value(registry, "recovery_build_info", version=__version__) == 1


class TestEffects:
    def test_effects_tasks_and_gestures_are_counted_by_their_labels(
        self,
        registry: CollectorRegistry,
        metrics: Metrics,
        task_factory: Callable[..., Task],
        gesture_factory: Callable[..., Gesture],
    ) -> None:
        effects: list[Effect] = [
            task_factory(),
            task_factory(id="task-2", priority="P1"),
            gesture_factory(),
            gesture_factory(id="gesture-2", type="retention-offer", amount=120.0, status="proposed"),
        ]
        metrics.observe_effects(effects, now=T0 + 2)
        assert value(registry, "recovery_effects_total", playbook="repeat-caller", kind="task") == 2
        assert value(registry, "recovery_effects_total", playbook="outage-recovery", kind="gesture") == 2
        assert value(registry, "recovery_tasks_raised_total", queue="care-callback", priority="P2") == 1
        assert value(registry, "recovery_tasks_raised_total", queue="care-callback", priority="P1") == 1
        assert value(registry, "recovery_gestures_total", type="service-credit", status="issued") == 1
        assert value(registry, "recovery_gestures_total", type="retention-offer", status="proposed") == 1
        # A proposed gesture is not granted yet: only the issued credit counts as spent.
        assert value(registry, "recovery_gesture_value_total", type="service-credit", currency="USD") == 10
        assert value(registry, "recovery_gesture_value_total", type="retention-offer", currency="USD") is None
        metrics.observe_effects([gesture_factory(id=f"credit-{n}", amount=2.5) for n in range(4)], now=T0 + 2)
        assert value(registry, "recovery_gestures_total", type="service-credit", status="issued") == 5
        assert value(registry, "recovery_gesture_value_total", type="service-credit", currency="USD") == 20

    def test_latency_is_measured_from_the_cause(
        self, registry: CollectorRegistry, metrics: Metrics, task_factory: Callable[..., Task]
    ) -> None:
        metrics.observe_effects([task_factory()], now=T0 + 0.2)  # from created_at
        metrics.observe_effects([task_factory()], now=T0 + 100, occurred_at_ts=T0 + 97)
        metrics.observe_effects([task_factory()], now=T0 - 5)  # clock skew is no negative latency
        name = "recovery_event_to_effect_seconds"
        assert value(registry, f"{name}_count") == 3
        assert value(registry, f"{name}_sum") == pytest.approx(3.2)
        assert value(registry, f"{name}_bucket", le="0.25") == 2

    def test_an_approval_grants_the_amount_and_issuing_it_adds_nothing(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        metrics.observe_gesture_status("retention-offer", "approved", 120.0, "EUR")
        metrics.observe_gesture_status("retention-offer", "issued", 120.0, "EUR")
        metrics.observe_gesture_status("retention-offer", "rejected", 80.0, "EUR")
        assert value(registry, "recovery_gestures_total", type="retention-offer", status="approved") == 1
        assert value(registry, "recovery_gestures_total", type="retention-offer", status="rejected") == 1
        assert value(registry, "recovery_gesture_value_total", type="retention-offer", currency="EUR") == 120

    def test_an_unknown_gesture_status_is_a_programming_error(self, metrics: Metrics) -> None:
        with pytest.raises(ValueError, match="granted"):
            metrics.observe_gesture_status("apology", "granted", 0.0, "USD")


class TestTasks:
    def test_open_and_overdue_by_queue_and_a_queue_that_empties_goes_to_zero(
        self, registry: CollectorRegistry, metrics: Metrics
    ) -> None:
        metrics.set_tasks({"care-callback": 5, "save-desk": 2}, {"care-callback": 1})
        assert value(registry, "recovery_tasks_open", queue="care-callback") == 5
        assert value(registry, "recovery_tasks_overdue", queue="care-callback") == 1
        assert value(registry, "recovery_tasks_overdue", queue="save-desk") == 0
        metrics.set_tasks({"care-callback": 4}, {})
        assert value(registry, "recovery_tasks_open", queue="save-desk") == 0
        assert value(registry, "recovery_tasks_overdue", queue="care-callback") == 0

    def test_time_to_claim_and_complete_and_outcomes(self, registry: CollectorRegistry, metrics: Metrics) -> None:
        metrics.observe_claim(600)
        metrics.observe_completion("repeat-caller", "saved", 7200)
        metrics.observe_completion("repeat-caller", "made-up", 90000)
        assert value(registry, "recovery_task_time_to_claim_seconds_count") == 1
        assert value(registry, "recovery_task_time_to_claim_seconds_bucket", le="900.0") == 1
        assert value(registry, "recovery_task_time_to_complete_seconds_sum") == 97200
        assert value(registry, "recovery_task_outcomes_total", playbook="repeat-caller", outcome="saved") == 1
        assert value(registry, "recovery_task_outcomes_total", playbook="repeat-caller", outcome="other") == 1


def test_metrics_use_only_the_registry_they_are_given() -> None:
    # Two services in one process (tests do this) must not collide on metric names.
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first).observe_store_error()
    Metrics(second)
    assert first.get_sample_value("recovery_store_errors_total") == 1
    assert second.get_sample_value("recovery_store_errors_total") == 0


def exercise_every_metric(metrics: Metrics) -> None:
    """Touch every metric, so that the exposition holds a sample of each (used by the promtool test)."""
    metrics.observe_event("service.call", "processed")
    metrics.observe_dlq("empty message (no value)")
    metrics.observe_batch(0.1)
    metrics.set_lag(0, 3)
    metrics.observe_store_error()
    stats = EngineStats()
    stats.matches["repeat-caller"] = 1
    stats.suppressed["repeat-caller"] = 1
    stats.muted["repeat-caller", "inhibited"] = 1
    stats.shadow["repeat-caller", 2, "task"] = 1
    stats.triggers["repeat-caller", "held-out"] = 1
    stats.playbook_errors["repeat-caller"] = 1
    metrics.observe_engine(stats, customers_in_memory=10)
    metrics.observe_reload(ok=True)
    metrics.observe_effects([make_task(), make_gesture(), make_task(status="cancelled")], now=T0 + 1)
    metrics.set_tasks({"care-callback": 1}, {"care-callback": 1})
    metrics.observe_claim(60)
    metrics.observe_completion("repeat-caller", "saved", 120)
    metrics.observe_gesture_status("service-credit", "approved", 5.0, "USD")


@pytest.mark.timeout(PROMTOOL_SETUP_TIMEOUT_S)
def test_every_metric_is_exposed_and_promtool_finds_no_problem(registry: CollectorRegistry, metrics: Metrics) -> None:
    exercise_every_metric(metrics)
    exposition = generate_latest(registry)
    families = {metric.name for metric in registry.collect()}
    for family in registry.collect():
        assert family.name.startswith("recovery_"), family.name
        assert family.samples, f"{family.name} has no sample"
    assert families == EVERY_FAMILY
    done = run_promtool("check", "metrics", stdin=exposition)
    assert done.returncode == 0, f"promtool check metrics:\n{done.stdout}{done.stderr}"
    # promtool prints lint problems (and exits 0 for some of them in older versions): expect none at all.
    assert done.stdout.strip() == "" and done.stderr.strip() == "", done.stdout + done.stderr
