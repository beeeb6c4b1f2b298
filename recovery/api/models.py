"""The API's bodies and answers. A task or gesture answer is the effect JSON (DESIGN.md, effects) with its
current status, queue and priority, plus where it stands in the lifecycle; a case answer is its tasks and what they
add up to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from recovery.effects import Gesture, Task
from recovery.store.records import AuditEntry, DeskCase, GestureRecord, MutedRecord, Snooze, TaskRecord
from recovery.times import format_time

Outcome = Literal["saved", "lost", "unreachable", "not-needed"]
CaseStatus = Literal["active", "open", "escalated", "claimed", "closed", "all"]


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
    cancel_reason: str | None = None
    new: bool = Field(
        default=False, description="It joined its case while an agent held the case, who has not opened it since"
    )

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
            cancel_reason=record.cancel_reason,
            new=record.joined_claimed and record.status in ("open", "claimed", "escalated"),
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


class CaseOut(BaseModel):
    """A case: its tasks (most urgent first) and what they add up to. Its priority, due time and queue are those of
    its tasks not done yet (of all of them once it is closed)."""

    case_id: str
    customer_id: str
    annual_value: float = Field(description="The customer's, from its profile (0 without one)")
    tier: str
    status: Literal["open", "escalated", "claimed", "closed"]
    priority: str = Field(description="The highest of its tasks'")
    queue: str = Field(description="That of its most urgent task")
    due_at: str = Field(description="The earliest of its tasks'")
    overdue: bool
    opened_at: str = Field(description="When its first task was raised (event time)")
    closed_at: str | None
    holders: list[str] = Field(description="Who holds its tasks (one agent, unless tasks were claimed one by one)")
    open_tasks: int
    new: list[str] = Field(description="Its tasks that joined it while an agent held it, unseen by that agent yet")
    tasks: list[TaskOut]

    @classmethod
    def of(cls, case: DeskCase, now: float) -> CaseOut:
        return cls(
            case_id=case.case_id,
            customer_id=case.customer_id,
            annual_value=case.annual_value,
            tier=case.tier,
            status=case.status,  # type: ignore[arg-type]
            priority=case.priority,
            queue=case.queue,
            due_at=format_time(case.due_ts),
            overdue=case.status != "closed" and case.due_ts < now,
            opened_at=format_time(case.opened_ts),
            closed_at=_time(case.closed_ts),
            holders=list(case.holders),
            open_tasks=len(case.active),
            new=list(case.new),
            tasks=[TaskOut.of(t, now) for t in case.tasks],
        )


class CasePage(BaseModel):
    items: list[CaseOut]
    total: int
    limit: int
    offset: int
    truncated: bool = Field(description="More cases match than this page holds")
    next_offset: int | None = Field(description="The offset of the next page, when there is one")


class ReasonOut(BaseModel):
    task_id: str
    playbook: str
    title: str
    reason: str
    status: str


class CaseEvidenceOut(EvidenceOut):
    tasks: list[str] = Field(description="The case's tasks that cite it")


class MutedOut(BaseModel):
    """An effect a playbook would have raised for the customer, muted: by another playbook or by a snooze."""

    id: str
    kind: str
    playbook: str
    summary: str
    muted_by: str
    reason: str
    at: str = Field(description="When it would have been raised (event time)")
    effect: dict[str, Any]

    @classmethod
    def of(cls, record: MutedRecord) -> MutedOut:
        effect = record.effect
        summary = effect.title if isinstance(effect, Task) else f"{effect.type} {effect.amount:g} {effect.currency}"
        return cls(
            id=effect.id,
            kind=effect.kind,
            playbook=effect.playbook,
            summary=summary,
            muted_by=record.muted_by,
            reason=record.reason,
            at=format_time(record.at),
            effect=effect.model_dump(),
        )


class SnoozeOut(BaseModel):
    playbook: str
    until: str
    reason: str
    by: str
    active: bool = Field(description="Its expiry is still ahead (wall time)")

    @classmethod
    def of(cls, snooze: Snooze, now: float) -> SnoozeOut:
        until = format_time(snooze.until)
        return cls(playbook=snooze.playbook, until=until, reason=snooze.reason, by=snooze.by, active=snooze.until > now)


class CaseDetail(BaseModel):
    case: CaseOut
    reasons: list[ReasonOut] = Field(description="Every task's reason, most urgent first")
    evidence: list[CaseEvidenceOut] = Field(description="Every task's evidence events, once each, oldest first")
    talking_points: list[str] = Field(description="Every task's talking points, once each")
    gestures: list[GestureOut]
    gestures_truncated: bool
    muted: list[MutedOut] = Field(description="The customer's muted effects from 30 days before the case opened")
    muted_truncated: bool
    snoozes: list[SnoozeOut]
    audit: list[AuditOut] = Field(description="Every entry about the case and its tasks and gestures, oldest first")
    audit_truncated: bool


class SnoozeBody(_Body):
    playbook: str = Field(min_length=1, max_length=200, description="A running playbook's id")
    until: AwareDatetime = Field(description="RFC 3339 with an offset, in the future")
    reason: str = Field(min_length=1, max_length=500)


class SnoozeAccepted(BaseModel):
    """A snooze sent to the engine as a `playbook.snoozed` event: in force once the service has read it."""

    customer_id: str
    playbook: str
    until: str
    reason: str
    by: str
    event_id: str


class SnoozesOut(BaseModel):
    customer_id: str
    snoozes: list[SnoozeOut]


class SignalsOut(BaseModel):
    """What happened to a customer in the window (kept events)."""

    service_calls: int
    outage_minutes: int
    open_complaints: int
    lowest_survey_score: int | None
    failed_payments: int


class AtRiskOut(BaseModel):
    customer_id: str
    annual_value: float
    tier: str
    segment: str | None
    why: list[str] = Field(description="What puts the customer on the list, in words")
    signals: SignalsOut
    cases: list[CaseOut] = Field(description="The customer's open cases")


class AtRiskPage(BaseModel):
    items: list[AtRiskOut]
    since: str = Field(description="The window's start (wall time): signals are counted from here")
    limit: int
    truncated: bool = Field(description="More customers are at risk than this page holds (or than were looked at)")
    scanned: int = Field(description="Customers looked at, most valuable first")
