"""What `recovery explain` says about a customer, and its JSON (`--format json`, `GET /api/customers/{id}/explain`).

The JSON's shape is a contract (docs/playbooks.md, "recovery explain"): times are RFC 3339 UTC, every key is always
present (null or [] when it does not apply), and `playbooks` come in the order of `VERDICTS`, then by id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from recovery.times import format_time

VERDICTS: Final = ("raised", "muted", "held back", "waiting", "no action", "not matched", "answered", "not triggered")
"""What became of a playbook's last trigger for the customer, those that matter most first:
raised (it raised effects), muted (snoozed, or inhibited by another playbook), held back (a cooldown, a holdout, shadow
mode), waiting (an absence's deadline is pending), no action (the condition held but no action's `when` did), not
matched (the condition failed), answered (an absence's awaited event came in time), not triggered."""


def _time(ts: float | None) -> str | None:
    return format_time(ts) if ts is not None and math.isfinite(ts) else None


@dataclass(frozen=True)
class EventRef:
    id: str
    type: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "at": _time(self.at)}


@dataclass(frozen=True)
class Trigger:
    """The last time the playbook's trigger came: `event` set it off (the event, a sequence's `then`, an absence's
    `first`); `first` is a sequence's first event. `state`: `evaluated` at `evaluated_at` (an absence's deadline),
    `waiting` for an absence's `deadline`, or `answered` by `answered_by`."""

    event: EventRef
    state: str
    evaluated_at: float | None = None
    first: EventRef | None = None
    deadline: float | None = None
    answered_by: EventRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.to_dict(),
            "first": self.first.to_dict() if self.first is not None else None,
            "state": self.state,
            "evaluated_at": _time(self.evaluated_at),
            "deadline": _time(self.deadline),
            "answered_by": self.answered_by.to_dict() if self.answered_by is not None else None,
        }


@dataclass(frozen=True)
class LetValue:
    name: str
    type: str
    value: Any
    text: str

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        if self.type == "time" and isinstance(value, int | float) and not isinstance(value, bool):
            value = _time(value)
        elif not (value is None or isinstance(value, str | int | float | bool | list)):
            value = self.text
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        return {"name": self.name, "type": self.type, "value": value, "text": self.text}


@dataclass(frozen=True)
class PartResult:
    section: str
    text: str
    holds: bool

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "text": self.text, "holds": self.holds}


@dataclass(frozen=True)
class ConditionResult:
    """The condition at the last trigger: the customer filter's parts (all must hold) and `when`'s, joined by `op`."""

    holds: bool
    op: str | None
    parts: tuple[PartResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"holds": self.holds, "op": self.op, "parts": [p.to_dict() for p in self.parts]}


BLOCKERS: Final = ("cooldown", "snoozed", "muted", "held-out", "shadow", "missing-profile")


@dataclass(frozen=True)
class Blocker:
    """What holds a playbook back for the customer (one of `BLOCKERS`), checked at instant `at`: a cooldown `until`;
    a snooze `by` someone `until`, with its `reason`; muted `by` another playbook (`reason` inhibited); the customer
    held out; the playbook in shadow mode; profile `fields` the playbook reads that the profile lacks."""

    kind: str
    detail: str
    at: float
    until: float | None = None
    by: str | None = None
    reason: str | None = None
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "at": _time(self.at),
            "until": _time(self.until),
            "by": self.by,
            "reason": self.reason,
            "fields": list(self.fields),
        }


@dataclass(frozen=True)
class EffectRef:
    """An effect the playbook raised for the customer; `at_trigger`: raised by the last trigger."""

    id: str
    kind: str
    created_at: float
    status: str
    detail: str
    at_trigger: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "created_at": _time(self.created_at), "status": self.status,
                "detail": self.detail, "at_trigger": self.at_trigger}  # fmt: skip


@dataclass(frozen=True)
class MutedRef:
    id: str
    kind: str
    at: float
    muted_by: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": _time(self.at), "muted_by": self.muted_by,
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class DeadlineRef:
    id: str
    due: float
    first: EventRef
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "due": _time(self.due), "first": self.first.to_dict(), "key": self.key}


@dataclass
class PlaybookExplanation:
    id: str
    version: int
    kind: str
    mode: str
    holdout: float
    verdict: str
    summary: str
    trigger: Trigger | None = None
    lets: list[LetValue] = field(default_factory=list)
    condition: ConditionResult | None = None
    blockers: list[Blocker] = field(default_factory=list)
    deadlines: list[DeadlineRef] = field(default_factory=list)
    effects: list[EffectRef] = field(default_factory=list)
    muted: list[MutedRef] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def order(self) -> tuple[int, str]:
        return (VERDICTS.index(self.verdict), self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "mode": self.mode,
            "holdout_percent": round(self.holdout * 100, 6),
            "verdict": self.verdict,
            "summary": self.summary,
            "trigger": self.trigger.to_dict() if self.trigger is not None else None,
            "lets": [v.to_dict() for v in self.lets],
            "condition": self.condition.to_dict() if self.condition is not None else None,
            "blockers": [b.to_dict() for b in self.blockers],
            "deadlines": [d.to_dict() for d in self.deadlines],
            "effects": [e.to_dict() for e in self.effects],
            "muted": [m.to_dict() for m in self.muted],
            "notes": list(self.notes),
        }


@dataclass
class Explanation:
    """Why (or why not) each playbook acted for one customer, as of `at`. `source`: `events` (a file replayed, every
    event of the customer seen: `complete_history`) or `store` (the events it keeps only). `truncated`: the customer
    has more effects than were read."""

    customer_id: str
    at: float
    source: str
    complete_history: bool
    profile: dict[str, Any] | None
    open_case: dict[str, Any] | None
    playbooks: list[PlaybookExplanation]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "at": _time(self.at),
            "source": self.source,
            "complete_history": self.complete_history,
            "profile": self.profile,
            "open_case": self.open_case,
            "truncated": self.truncated,
            "playbooks": [p.to_dict() for p in self.playbooks],
        }
