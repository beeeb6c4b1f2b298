"""What happens to a task after it is raised, besides people acting on it: the running playbooks (listed, validated
and reloaded by ops), escalation of tasks not done by their due time, the `task.completed` event that closing
a task sends back to `ops.events` so playbooks can react to outcomes, the `playbook.snoozed` event ops send the same
way (the engine mutes the playbook for the customer), and a gesture published again when it is approved or
rejected.

Escalation runs in the service loop (`Escalator`, called once per loop step with the loop's own store and wall
clock) and is recorded in the store: a task is escalated once, whatever restarts happen.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recovery.effects import effect_id
from recovery.exceptions import Problem
from recovery.metrics import Metrics
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbooks
from recovery.store.base import Outbox, TaskDesk
from recovery.store.records import GestureRecord, Snooze, TaskRecord
from recovery.times import format_time

logger = logging.getLogger(__name__)

PRIORITIES = ("P1", "P2", "P3", "P4")
SERVICE_ACTOR = "recovery"
"""The audit trail's actor for what the service does by itself (escalation)."""
ESCALATE_BATCH = 500


def raised_priority(priority: str) -> str:
    """One step more urgent: P3 -> P2; P1 stays P1."""
    index = PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES) - 1
    return PRIORITIES[max(index - 1, 0)]


class Catalog:
    """The playbooks running now, and their reload from `rules_dir`. A reload that finds problems changes nothing
    and returns them; one that succeeds calls `on_reload` (the service loop swaps its engine at its next step).
    Thread-safe: the API reloads, the loop reads."""

    def __init__(
        self,
        rules_dir: Path,
        playbooks: Sequence[CompiledPlaybook],
        *,
        on_reload: Callable[[list[CompiledPlaybook]], None] | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules_dir = rules_dir
        self.on_reload = on_reload
        self.metrics = metrics
        self.clock = clock
        self._lock = threading.Lock()
        self._playbooks = list(playbooks)
        self.loaded_at = clock()
        self.last_error: str | None = None

    @property
    def playbooks(self) -> list[CompiledPlaybook]:
        return list(self._playbooks)

    def reload(self) -> list[Problem]:
        """Load every playbook under `rules_dir`; [] when they are live (at the loop's next step)."""
        with self._lock:
            playbooks, problems = load_playbooks([self.rules_dir])
            if self.metrics is not None:
                self.metrics.observe_reload(not problems)
            if problems:
                self.last_error = f"{len(problems)} problem(s): {problems[0]}"
                logger.warning("reload refused; the running playbooks stay", extra={"problems": len(problems)})
                return problems
            self._playbooks = playbooks
            self.loaded_at = self.clock()
            self.last_error = None
            if self.on_reload is not None:
                self.on_reload(playbooks)
            logger.info("playbooks reloaded", extra={"playbooks": {pb.id: pb.version for pb in playbooks}})
            return []

    def escalation_queue(self, playbook_id: str, queue: str) -> str | None:
        """The queue a task of `playbook_id` raised in `queue` moves to when overdue (its action's `escalate_to`)."""
        for pb in self._playbooks:
            if pb.id == playbook_id:
                for task in pb.tasks:
                    if task.queue == queue and task.escalate_to:
                        return task.escalate_to
        return None


def escalate_overdue(store: TaskDesk, catalog: Catalog, now: float, *, batches: int | None = None) -> list[TaskRecord]:
    """Escalate the tasks not done by `now` (epoch seconds) and never escalated, oldest due first: all of them, or
    at most `batches` times `ESCALATE_BATCH`; returns them as they were. The caller commits."""
    escalated: list[TaskRecord] = []
    while batches is None or batches > 0:
        batches = None if batches is None else batches - 1
        overdue = store.overdue_tasks(now, ESCALATE_BATCH)
        for record in overdue:
            priority = raised_priority(record.priority)
            queue = catalog.escalation_queue(record.task.playbook, record.task.queue) or record.queue
            if store.escalate_task(record.id, priority, queue, now):
                store.add_audit(
                    now,
                    SERVICE_ACTOR,
                    "escalate",
                    customer_id=record.task.customer_id,
                    task_id=record.id,
                    details={"priority": [record.priority, priority], "queue": [record.queue, queue]},
                )
                escalated.append(record)
                logger.info(
                    "task escalated",
                    extra={"task_id": record.id, "customer_id": record.task.customer_id, "queue": queue},
                )
        if len(overdue) < ESCALATE_BATCH:
            break
    return escalated


class Escalator:
    """The service loop's hook: at most every `every_s` of wall time, escalate overdue tasks and refresh the task
    gauges. Called with the loop's store, inside its transaction (the loop commits). A step escalates at most
    `ESCALATE_BATCH` tasks, so that a pile of overdue tasks (after a backlog) never holds the loop up: the rest
    follows at the next steps."""

    def __init__(self, catalog: Catalog, metrics: Metrics | None = None, every_s: float = 5.0) -> None:
        self.catalog = catalog
        self.metrics = metrics
        self.every_s = every_s
        self._last = float("-inf")
        self._more = False

    def __call__(self, store: TaskDesk, now: float) -> None:
        if now - self._last < self.every_s and not self._more:
            return
        self._last = now
        self._more = len(escalate_overdue(store, self.catalog, now, batches=1)) >= ESCALATE_BATCH
        if self.metrics is not None:
            self.metrics.set_tasks(*store.task_counts(now))


def task_completed_event(record: TaskRecord, agent: str, at: float) -> dict[str, Any]:
    """The `task.completed` event for `ops.events` (DESIGN.md, event envelope); its id is the task's, so a repeat
    is a duplicate."""
    return {
        "id": f"task-completed-{record.id}",
        "type": "task.completed",
        "occurred_at": format_time(at),
        "customer_id": record.task.customer_id,
        "data": {
            "task_id": record.id,
            "playbook": record.task.playbook,
            "queue": record.queue,
            "outcome": record.outcome,
            "reason_code": record.reason_code,
            "agent": agent,
        },
    }


def emit_task_completed(store: Outbox, topic: str, record: TaskRecord, agent: str, at: float) -> None:
    """Queue the event in the store's outbox, in the transaction that closes the task: it is sent by the service
    loop's outbox publisher, once the close is durable, and never lost."""
    event = task_completed_event(record, agent, at)
    store.outbox_add(topic, record.task.customer_id, json.dumps(event, separators=(",", ":")).encode())


def snoozed_event(customer_id: str, snooze: Snooze, at: float) -> dict[str, Any]:
    """The `playbook.snoozed` event for `ops.events` (DESIGN.md, event envelope), sent at `at` (wall time); its id
    comes from what it says and when, so a repeat is a duplicate."""
    until = format_time(snooze.until)
    return {
        "id": effect_id("playbook-snoozed", customer_id, snooze.playbook, until, snooze.by, format_time(at)),
        "type": "playbook.snoozed",
        "occurred_at": format_time(at),
        "customer_id": customer_id,
        "data": {"playbook": snooze.playbook, "until": until, "reason": snooze.reason, "by": snooze.by},
    }


def emit_playbook_snoozed(store: Outbox, topic: str, customer_id: str, snooze: Snooze, at: float) -> str:
    """Queue the event in the store's outbox, in the transaction that audits it (as `emit_task_completed`): the
    engine reads it back and mutes the playbook for the customer until `snooze.until`. Returns the event's id."""
    event = snoozed_event(customer_id, snooze, at)
    store.outbox_add(topic, customer_id, json.dumps(event, separators=(",", ":")).encode())
    return str(event["id"])


def emit_gesture_decision(store: Outbox, topic: str, record: GestureRecord) -> None:
    """Queue the gesture for the gestures topic again, same id and content with its new status (approved, rejected;
    DESIGN.md, effects), in the transaction that decides it: the system that issues it learns the decision once
    the decision is durable, and never misses it. Keyed by customer, as effects are."""
    decided = record.gesture.model_copy(update={"status": record.status})
    store.outbox_add(topic, decided.customer_id, decided.to_json().encode())
