"""What the stores keep and give back: deadlines, outbox items, tasks, gestures, audit entries, and the filters of the
task desk. Plain frozen records, the same for every store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from recovery.effects import Effect, Gesture, GestureStatus, Task, TaskStatus
from recovery.events import Occurrence


@dataclass(frozen=True)
class Deadline:
    """An absence playbook waiting: fires at `due` unless an event with the same key arrives first."""

    id: str
    due: float
    playbook: str
    customer_id: str
    key: str
    first: Occurrence


@dataclass(frozen=True)
class OutboxItem:
    """A message waiting to be published: an effect, a fan-out delivery or a DLQ record."""

    seq: int
    topic: str
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    attempts: int = 0
    """Earlier tries that failed for a reason that may pass (the broker away, a timeout)."""


@dataclass(frozen=True)
class ParkedItem:
    """A message the broker refused for good (too large, a topic it may not write to...): kept, not published,
    until someone tells the outbox to try it again (`recovery outbox --retry`)."""

    seq: int
    topic: str
    key: str | None
    size: int
    parked_at: float
    error: str


TASK_OUTCOMES: Final = ("saved", "lost", "unreachable", "not-needed")
"""How a frontline agent closes a task."""
CLAIMABLE: Final = ("open", "escalated")
"""Task statuses an agent may claim."""
ACTIVE: Final = ("open", "claimed", "escalated")
"""Task statuses of a task not done yet (it counts as open, and can become overdue)."""


@dataclass(frozen=True)
class TaskRecord:
    """A task as raised (`task`, the effect) and where it stands now. Times are epoch seconds.

    `queue` and `priority` are the current ones (escalation moves them); `task.queue` and `task.priority` are
    those it was raised with."""

    task: Task
    status: TaskStatus
    queue: str
    priority: str
    due_ts: float
    created_ts: float
    claimed_by: str | None = None
    claimed_at: float | None = None
    completed_at: float | None = None
    outcome: str | None = None
    reason_code: str | None = None
    note: str | None = None
    escalated_at: float | None = None
    joined_claimed: bool = False
    """The task joined its case while an agent held the case: it went to that agent, marked new to them."""
    cancel_reason: str | None = None
    """Why a cancelled task was cancelled (`customer-lost`)."""

    @property
    def id(self) -> str:
        return self.task.id

    def view(self) -> Task:
        """The task effect with its current status, queue and priority."""
        return self.task.model_copy(update={"status": self.status, "queue": self.queue, "priority": self.priority})


@dataclass(frozen=True)
class GestureRecord:
    """A gesture as raised and its current status (`decided_by` approved or rejected it)."""

    gesture: Gesture
    status: GestureStatus
    decided_by: str | None = None
    decided_at: float | None = None

    @property
    def id(self) -> str:
        return self.gesture.id


@dataclass(frozen=True)
class AuditEntry:
    """One state change: who (`actor`, a token name or `recovery` for the service), when (`at`, epoch seconds),
    what (`action`), on which task or gesture, with details."""

    seq: int
    at: float
    actor: str
    action: str
    customer_id: str | None = None
    task_id: str | None = None
    gesture_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskQuery:
    """Filters of `TaskDesk.list_tasks`; None matches everything. `due_before` is epoch seconds (exclusive)."""

    queue: str | None = None
    status: str | None = None
    priority: str | None = None
    customer_id: str | None = None
    due_before: float | None = None
    limit: int = 50
    offset: int = 0


@dataclass
class CaseRecord:
    """A customer's case: opened by the first task raised for the customer while none is open, joined by the next
    ones, closed when its last open task is done (`done`) or the customer is lost (`customer-lost`). `open_tasks`:
    the ids of its tasks not done yet, with their playbook. Times are event times (epoch seconds)."""

    case_id: str
    customer_id: str
    opened_ts: float
    open_tasks: dict[str, str] = field(default_factory=dict)
    closed_ts: float | None = None
    closed_reason: str | None = None


@dataclass(frozen=True)
class Snooze:
    """A playbook snoozed for a customer by ops, until `until` (epoch seconds): it raises nothing for them before."""

    playbook: str
    until: float
    reason: str
    by: str


@dataclass(frozen=True)
class MutedRecord:
    """An effect a playbook would have raised, muted: by another playbook (an inhibition) or by a snooze. `at` is
    the event time it would have been raised at."""

    effect: Effect
    muted_by: str
    reason: str
    at: float


# ----------------------------------------------------------------------------------------------- report facts
# What `recovery report` reads, kept by the engine as events go by (store/facts.py).

LIFECYCLE_KINDS = ("joined", "renewed", "referred", "lost")
COMPLAINTS = "complaints"
"""The weekly count of `complaint.opened` per category (`uncategorized` when the event names none)."""
CALLS = "service_calls"
"""The weekly count of `service.call` per reason (`unspecified` when the event names none)."""
WEEK_S = 7 * 86400.0
MONDAY_S = 4 * 86400.0
"""1970-01-05T00:00:00Z, a Monday: weeks start on Mondays at 00:00 UTC (ISO weeks)."""


def week_of(ts: float) -> float:
    """The start (epoch seconds) of the ISO week `ts` falls in: Monday 00:00 UTC."""
    return (ts - MONDAY_S) // WEEK_S * WEEK_S + MONDAY_S


@dataclass(frozen=True)
class LifecycleFact:
    """A `customer.<kind>` event as it came: `value` is its `annual_value` (None when it has none)."""

    event_id: str
    kind: str
    customer_id: str
    ts: float
    value: float | None = None
    segment: str | None = None
    reason: str | None = None
    channel: str | None = None
    referred_id: str | None = None


@dataclass(frozen=True)
class ProfileFact:
    """A `customer.updated` event: the profile from `ts` on (until the next one)."""

    event_id: str
    customer_id: str
    ts: float
    tier: str = "standard"
    segment: str | None = None
    region: str | None = None
    value: float | None = None


@dataclass(frozen=True)
class OutageFact:
    """An outage's start or resolution (`kind`): the first of each per outage id counts."""

    outage_id: str
    kind: str
    ts: float
    region: str | None
    event_id: str


Fact = LifecycleFact | ProfileFact | OutageFact


@dataclass(frozen=True)
class WeeklyCount:
    metric: str
    key: str
    week: float
    n: int


@dataclass(frozen=True)
class Outage:
    """An outage paired: its region (the start's, else the resolution's), start, and resolution if any."""

    outage_id: str
    region: str | None
    started: float
    resolved: float | None


@dataclass(frozen=True)
class FactSet:
    """What a report reads: every lifecycle fact and profile before `until`, and the weekly counts and outages of the
    weeks it shows."""

    lifecycle: list[LifecycleFact]
    profiles: list[ProfileFact]
    counts: list[WeeklyCount]
    outages: list[Outage]
