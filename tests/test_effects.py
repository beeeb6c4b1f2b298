"""The effect JSON (DESIGN.md, effects): what replay writes, the outbox publishes and the API returns."""

from __future__ import annotations

import json

from recovery.effects import Gesture, Task, effect_from_dict, effect_id


def task(**changes: object) -> Task:
    values: dict[str, object] = {
        "id": effect_id("tsk", "repeat-caller", "C1", "e1", "task0"),
        "playbook": "repeat-caller",
        "playbook_version": 3,
        "customer_id": "C1",
        "queue": "care-callback",
        "priority": "P1",
        "title": 'Repeat caller: 3 calls "in" 7 days',
        "reason": "Zoë called about billing\\n again",
        "evidence": ["e0", "e1"],
        "due_at": "2026-11-02T10:00:00Z",
        "created_at": "2026-11-01T10:00:00Z",
        "talking_points": ["Apologise", "Leave your number"],
    }
    values.update(changes)
    return Task.model_validate(values)


def gesture(**changes: object) -> Gesture:
    values: dict[str, object] = {
        "id": effect_id("gst", "outage-recovery", "C1", "o1+o2", "gesture0"),
        "playbook": "outage-recovery",
        "playbook_version": 1,
        "customer_id": "C1",
        "type": "service-credit",
        "amount": 12.5,
        "currency": "USD",
        "status": "issued",
        "requires_approval": False,
        "reason": "Outage of 2h 30m",
        "evidence": ["o1", "o2"],
        "created_at": "2026-11-01T12:30:00Z",
    }
    values.update(changes)
    return Gesture.model_validate(values)


def test_to_json_is_the_models_json() -> None:
    for effect in (task(), task(talking_points=[]), gesture(), gesture(task_id="tsk-1", amount=0.0)):
        text = effect.to_json()
        assert isinstance(text, str)
        assert text == effect.model_dump_json()
        assert json.loads(text) == effect.model_dump(mode="json")
        assert effect_from_dict(json.loads(text)) == effect


def test_to_json_keeps_every_field_in_order() -> None:
    keys = list(json.loads(task().to_json()))
    assert keys[:2] == ["kind", "id"] and keys[-2:] == ["talking_points", "case_id"] and "status" in keys
    assert json.loads(gesture().to_json())["task_id"] is None
    assert "Zoë" in task().to_json()  # not escaped to \\u: the JSON is UTF-8 text


def test_effect_ids_are_deterministic_and_distinct() -> None:
    assert effect_id("tsk", "p", "C1", "e1") == effect_id("tsk", "p", "C1", "e1")
    assert effect_id("tsk", "p", "C1", "e1") != effect_id("tsk", "p", "C1", "e2")
    assert effect_id("tsk", "p", "C1", "e1") != effect_id("gst", "p", "C1", "e1")
    assert effect_id("tsk", "p", "C1x", "e1") != effect_id("tsk", "p", "C1", "xe1")  # parts are separated
    assert effect_id("tsk", "p").startswith("tsk-") and len(effect_id("tsk", "p")) == 4 + 24
