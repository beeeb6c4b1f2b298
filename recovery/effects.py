"""What the engine decides: tasks for the frontline and gestures for the customer (DESIGN.md, effects).

The JSON form is the contract shared by `recovery replay`, the output topics and the API.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

TaskStatus = Literal["open", "claimed", "done", "escalated", "cancelled"]
GestureStatus = Literal["proposed", "approved", "issued", "rejected"]


def effect_id(prefix: str, *parts: str) -> str:
    """A deterministic id from the cause: the same playbook, customer and cause give the same id, always."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:24]}"


def task_id(playbook_id: str, customer_id: str, cause: str, index: int) -> str:
    """The id of a playbook's `index`-th task action raised for a customer by `cause` (an event trigger's cause is
    its event id)."""
    return effect_id("tsk", playbook_id, customer_id, cause, f"task{index}")


class _Effect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> str:
        """`model_dump_json()`, without pydantic's per-call Python layer (every effect is written once or more)."""
        return self.__pydantic_serializer__.to_json(self).decode()


class Task(_Effect):
    kind: Literal["task"] = "task"
    id: str
    playbook: str
    playbook_version: int
    customer_id: str
    queue: str
    priority: Literal["P1", "P2", "P3", "P4"]
    title: str
    reason: str
    evidence: list[str]
    due_at: str
    created_at: str
    status: TaskStatus = "open"
    talking_points: list[str]
    case_id: str = ""
    """The customer's case the task belongs to (DESIGN.md, effects): the case its first open task opened."""


class Gesture(_Effect):
    kind: Literal["gesture"] = "gesture"
    id: str
    playbook: str
    playbook_version: int
    customer_id: str
    type: str
    amount: float
    currency: str
    status: GestureStatus
    requires_approval: bool
    reason: str
    evidence: list[str]
    created_at: str
    task_id: str | None = None


Effect = Task | Gesture


def effect_from_dict(value: dict[str, Any]) -> Effect:
    if value.get("kind") == "task":
        return Task.model_validate(value)
    return Gesture.model_validate(value)
