"""The API's bodies and answers. A task or gesture answer is the effect JSON (DESIGN.md, effects) with its
current status, queue and priority, plus where it stands in the lifecycle."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recovery.effects import Gesture, Task
from recovery.store.records import AuditEntry, GestureRecord, TaskRecord
from recovery.times import format_time

Outcome = Literal["saved", "lost", "unreachable", "not-needed"]


def _time(ts: float | None) -> str | None:
    return None if ts is None else format_time(ts)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompleteBody(_Body):
    outcome: Outcome
    reason_code: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=60, description="Why, as a code, e.g. offer-accepted"
    )
    note: str = Field(default="", max_length=2000)


class DecisionBody(_Body):
    note: str = Field(default="", max_length=2000)


class TaskOut(Task):
    """A task (the effect, with current status, queue and priority) and its lifecycle."""

    raised_queue: str
    raised_priority: str
    overdue: bool
    claimed_by: str | None = None
    claimed_at: str | None = None
    completed_at: str | None = None
    outcome: str | None = None
    reason_code: str | None = None
    note: str | None = None
    escalated_at: str | None = None

    @classmethod
    def of(cls, record: TaskRecord, now: float) -> TaskOut:
        return cls(
            **record.view().model_dump(),
            raised_queue=record.task.queue,
            raised_priority=record.task.priority,
            overdue=record.status in ("open", "claimed", "escalated") and record.due_ts < now,
            claimed_by=record.claimed_by,
            claimed_at=_time(record.claimed_at),
            completed_at=_time(record.completed_at),
            outcome=record.outcome,
            reason_code=record.reason_code,
            note=record.note,
            escalated_at=_time(record.escalated_at),
        )


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class GestureOut(Gesture):
    decided_by: str | None = None
    decided_at: str | None = None

    @classmethod
    def of(cls, record: GestureRecord) -> GestureOut:
        return cls(
            **record.gesture.model_copy(update={"status": record.status}).model_dump(),
            decided_by=record.decided_by,
            decided_at=_time(record.decided_at),
        )


class AuditOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    customer_id: str | None
    task_id: str | None
    gesture_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        return cls(
            seq=entry.seq,
            at=format_time(entry.at),
            actor=entry.actor,
            action=entry.action,
            customer_id=entry.customer_id,
            task_id=entry.task_id,
            gesture_id=entry.gesture_id,
            details=entry.details,
        )


class EvidenceOut(BaseModel):
    """An evidence event of a task: its type, time and data when the store still keeps it."""

    id: str
    type: str | None = None
    occurred_at: str | None = None
    data: dict[str, Any] | None = None


class TaskDetail(BaseModel):
    task: TaskOut
    evidence: list[EvidenceOut] = Field(description="The task's evidence events (type and data while still kept)")
    recent_events: list[EvidenceOut] = Field(description="The customer's kept events up to the task, newest last")
    gestures: list[GestureOut]
    audit: list[AuditOut]


class TimelineItem(BaseModel):
    at: str
    kind: Literal["event", "task", "gesture", "outcome", "audit"]
    id: str | None
    summary: str
    details: dict[str, Any]


class Timeline(BaseModel):
    customer_id: str
    profile: dict[str, Any] | None
    items: list[TimelineItem]


class PlaybookOut(BaseModel):
    id: str
    version: int
    file: str
    enabled: bool
    description: str
    trigger: str
    queues: list[str]


class Playbooks(BaseModel):
    playbooks: list[PlaybookOut]
    loaded_at: str
    last_reload_error: str | None


class Validation(BaseModel):
    valid: bool
    problems: list[str] = Field(description="FILE:LINE:COL: message, one per problem")
    id: str | None = None
    version: int | None = None


class Me(BaseModel):
    name: str
    role: str
