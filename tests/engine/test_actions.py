"""build_effects: a matched playbook's actions as tasks and gestures, with ids from their cause and the evidence."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from recovery.catalog import EventCatalog, EventType
from recovery.effects import Gesture, Task
from recovery.engine.actions import build_effects
from recovery.events import Occurrence
from recovery.expressions.context import Context
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbook_text
from recovery.times import format_time

DAY = 86400.0
AT = 1_800_000_000.0

PLAYBOOK = """\
id: p
version: 3
trigger:
  event: x.y
when: count("x.call", 7d) >= 0
actions:
  - task:
      queue: first
      priority: P2
      due_in: 24h
      title: "n is {{ event.data.n }}"
      reason: r
      talking_points: ["keep", "{{ coalesce(event.data.blank, '') }}", "  "]
  - task:
      queue: big
      priority: P1
      due_in: 1h
      title: t
      reason: r
      when: event.data.n > 100
  - gesture:
      type: apology
      amount: event.data.n
      cap: 50
      currency: EUR
      requires_approval: true
      reason: "sorry, {{ customer.id }}"
"""


@pytest.fixture(scope="module")
def playbook() -> CompiledPlaybook:
    custom = {"x.y": EventType("x.y", {"n": "any", "blank": "string"}), "x.call": EventType("x.call", {})}
    return load_playbook_text(PLAYBOOK, "p.yaml", EventCatalog(custom))


def context(data: dict[str, Any], history: list[Occurrence] | None = None) -> tuple[Context, Occurrence]:
    """An evaluation at AT of an x.y event with `data` (id e9), `history` (in time order) kept per type."""
    event = Occurrence("e9", "x.y", AT, "C1", data)
    by_type: dict[str, list[Occurrence]] = {}
    for occ in history or ():
        by_type.setdefault(occ.type, []).append(occ)
    return Context(event, "C1", {}, AT, by_type), event


def test_tasks_and_gestures_whose_when_holds(playbook: CompiledPlaybook) -> None:
    ctx, event = context({"n": 7})
    effects = build_effects(playbook, ctx, "e9", AT - DAY, [event])
    task, gesture = effects
    assert isinstance(task, Task) and isinstance(gesture, Gesture)
    assert (task.queue, task.priority, task.title, task.talking_points) == ("first", "P2", "n is 7", ["keep"])
    assert (task.playbook, task.playbook_version, task.customer_id) == ("p", 3, "C1")
    assert (task.created_at, task.due_at) == (format_time(AT), format_time(AT))  # due 24h after the anchor
    assert (gesture.amount, gesture.currency, gesture.status) == (7.0, "EUR", "proposed")
    assert gesture.requires_approval
    assert (gesture.reason, gesture.task_id) == ("sorry, C1", task.id)


def test_a_due_time_past_year_9999_is_the_last_instant_rfc_3339_writes(playbook: CompiledPlaybook) -> None:
    last = 253402300799.0  # 9999-12-31T23:59:59Z
    event = Occurrence("e9", "x.y", last - 3600, "C1", {"n": 7})
    ctx = Context(event, "C1", {}, last - 3600, {})
    task = build_effects(playbook, ctx, "e9", last - 3600, [event])[0]
    assert isinstance(task, Task)
    assert (task.created_at, task.due_at) == ("9999-12-31T22:59:59Z", "9999-12-31T23:59:59Z")  # due 24h later


def test_ids_come_from_the_cause(playbook: CompiledPlaybook) -> None:
    ctx, event = context({"n": 7})
    once = [e.id for e in build_effects(playbook, ctx, "e9", AT, [event])]
    again = [e.id for e in build_effects(playbook, context({"n": 7})[0], "e9", AT, [event])]
    other = [e.id for e in build_effects(playbook, ctx, "e10", AT, [event])]
    assert once == again and set(once).isdisjoint(other) and len(set(once)) == 2


def test_an_amount_is_capped_and_rounded(playbook: CompiledPlaybook) -> None:
    ctx, event = context({"n": 500})
    effects = build_effects(playbook, ctx, "e9", AT, [event])
    assert [e.queue if isinstance(e, Task) else e.amount for e in effects] == ["first", "big", 50.0]
    ctx, event = context({"n": 1.23456})
    assert [e.amount for e in build_effects(playbook, ctx, "e9", AT, [event]) if isinstance(e, Gesture)] == [1.23]


@pytest.mark.parametrize(
    "amount",
    [
        -1,
        "5",
        True,
        None,
        float("nan"),
        float("inf"),
        float("-inf"),
        10**400,
        -(10**400),
        pytest.param(10**5000, id="5000-digits"),
    ],
)
def test_a_gesture_without_a_usable_amount_is_skipped(
    playbook: CompiledPlaybook, amount: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ctx, event = context({"n": amount})
    with caplog.at_level(logging.WARNING, logger="recovery.engine.actions"):
        effects = build_effects(playbook, ctx, "e9", AT, [event])
    assert [e.kind for e in effects if isinstance(e, Gesture)] == []
    assert [r.getMessage() for r in caplog.records] == [
        "gesture amount is not a finite non-negative number; gesture skipped"
    ]


def test_evidence_is_the_cause_and_the_windows_looked_at_by_time_then_id(playbook: CompiledPlaybook) -> None:
    history = [
        Occurrence("old", "x.call", AT - 8 * DAY, "C1", {}),
        Occurrence("b", "x.call", AT - DAY, "C1", {}),
        Occurrence("a", "x.call", AT - DAY, "C1", {}),
        Occurrence("e9", "x.call", AT, "C1", {}),  # the cause's id: listed once
    ]
    ctx, event = context({"n": 1}, sorted(history, key=lambda o: o.ts))
    first = Occurrence("f1", "x.first", AT - 2 * DAY, "C1", {})
    [task, _] = build_effects(playbook, ctx, "f1+e9", AT, [first, event])
    assert isinstance(task, Task)
    assert task.evidence == ["f1", "a", "b", "e9"]
