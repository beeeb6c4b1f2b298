"""What the stores keep and give back: deadlines, outbox items, tasks, gestures, audit entries, and the filters of the
task desk. Plain frozen records, the same for every store."""

from __future__ import annotations

from collections.abc import Callable
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


@dataclass(slots=True)
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


CASE_STATUSES: Final = ("active", "open", "escalated", "claimed", "closed", "all")
"""The case queue's status filter: `active` (a task not done yet), one of the statuses of an active case (`open`: no
task held nor escalated; `escalated`: one escalated, none held; `claimed`: an agent holds one), `closed` (every
task done or cancelled) or `all`."""
TIER_RANK: Final = {"standard": 0, "silver": 1, "gold": 2, "platinum": 3}


def case_key(task: Task) -> str:
    """The desk's case of a task: its `case_id`, or, for a task raised without one (before cases), a case of its
    own under the task's id."""
    return task.case_id or task.id


def annual_value(profile: dict[str, Any] | None) -> float:
    """The profile's `annual_value` when it is a number, else 0 (as the SQL stores rank customers)."""
    value = (profile or {}).get("annual_value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def tier(profile: dict[str, Any] | None) -> str:
    """The profile's `tier` (`standard` without one)."""
    value = (profile or {}).get("tier")
    return value if isinstance(value, str) and value in TIER_RANK else "standard"


@dataclass(frozen=True)
class CaseQuery:
    """Filters of `TaskDesk.list_cases` (None matches everything): `status` one of `CASE_STATUSES`; `queue` and
    `priority` are the case's (those of its most urgent task); `claimed_by`: an agent holds one of its tasks."""

    queue: str | None = None
    status: str = "active"
    priority: str | None = None
    customer_id: str | None = None
    claimed_by: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class DeskCase:
    """A case as the desk sees it: its tasks (those whose `case_id` is `case_id`), most urgent first, and its
    customer's profile. Its priority, due time and queue are those of its active tasks (of all of them once it is
    closed): the highest priority, the earliest due time, the queue of the most urgent (by priority, due time, id)."""

    case_id: str
    customer_id: str
    tasks: tuple[TaskRecord, ...]
    profile: dict[str, Any] | None = None

    @property
    def active(self) -> tuple[TaskRecord, ...]:
        """Its tasks not done yet."""
        return tuple(t for t in self.tasks if t.status in ACTIVE)

    @property
    def _ranked(self) -> list[TaskRecord]:
        return sorted(self.active or self.tasks, key=lambda t: (t.priority, t.due_ts, t.id))

    @property
    def priority(self) -> str:
        return self._ranked[0].priority

    @property
    def due_ts(self) -> float:
        return min(t.due_ts for t in self._ranked)

    @property
    def queue(self) -> str:
        return self._ranked[0].queue

    @property
    def status(self) -> str:
        """`claimed`, `escalated`, `open` (see `CASE_STATUSES`) or `closed`."""
        statuses = {t.status for t in self.active}
        for status in ("claimed", "escalated", "open"):
            if status in statuses:
                return status
        return "closed"

    @property
    def holders(self) -> tuple[str, ...]:
        """The agents holding its active tasks (one, unless tasks were claimed one by one)."""
        return tuple(sorted({t.claimed_by for t in self.active if t.status == "claimed" and t.claimed_by}))

    @property
    def new(self) -> tuple[str, ...]:
        """Its active tasks that joined it while an agent held it, not seen by that agent since."""
        return tuple(t.id for t in self.active if t.joined_claimed)

    @property
    def opened_ts(self) -> float:
        return min(t.created_ts for t in self.tasks)

    @property
    def closed_ts(self) -> float | None:
        if self.active:
            return None
        return max((t.completed_at for t in self.tasks if t.completed_at is not None), default=None)

    @property
    def annual_value(self) -> float:
        return annual_value(self.profile)

    @property
    def tier(self) -> str:
        return tier(self.profile)

    def order(self) -> tuple[str, float, float, str]:
        """The queue's order: priority, then the customer's value (highest first), then due time, then id."""
        return (self.priority, -self.annual_value, self.due_ts, self.case_id)


def group_cases(tasks: list[TaskRecord], profile_of: Callable[[str], dict[str, Any] | None]) -> dict[str, DeskCase]:
    """Tasks grouped into their cases (each case's tasks most urgent first), with their customers' profiles."""
    grouped: dict[str, list[TaskRecord]] = {}
    for record in tasks:
        grouped.setdefault(case_key(record.task), []).append(record)
    cases: dict[str, DeskCase] = {}
    for key, members in grouped.items():
        members.sort(key=lambda t: (t.priority, t.due_ts, t.id))
        customer = members[0].task.customer_id
        cases[key] = DeskCase(key, customer, tuple(members), profile_of(customer))
    return cases


@dataclass(frozen=True)
class WatchedCustomer:
    """A customer with recent events of the types asked about, or an open case (`TaskDesk.customers_to_watch`):
    its profile, those events (oldest first) and its open cases."""

    customer_id: str
    profile: dict[str, Any] | None
    events: tuple[Occurrence, ...]
    cases: tuple[DeskCase, ...]

    @property
    def annual_value(self) -> float:
        return annual_value(self.profile)

    @property
    def tier(self) -> str:
        return tier(self.profile)

    def order(self) -> tuple[float, int, str]:
        """Most valuable first: annual value, then tier, then id."""
        return (-self.annual_value, -TIER_RANK[self.tier], self.customer_id)
