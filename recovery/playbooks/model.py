"""The playbook format as pydantic models: structure, types, durations and enumerations.

Expressions and templates are kept as text here; `compiler.py` parses and checks them with the names in scope,
so that every problem is reported with its file, line and column.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from recovery.events import EVENT_TYPE_PATTERN, Tier
from recovery.expressions.parser import MAX_INTEGER
from recovery.times import DURATION_PATTERN, parse_duration


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("a duration is written with a unit, e.g. 48h, 7d or 2h30m")
    return parse_duration(value)


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "description": "e.g. 90s, 45m, 48h, 7d, 2h30m"}),
]
"""A duration written with units in YAML (`48h`), held as seconds."""


def _expression_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return value


Expr = Annotated[
    str,
    BeforeValidator(_expression_text),
    Field(min_length=1, max_length=2000, description="An expression, see docs/playbooks.md"),
]
Template = Annotated[
    str,
    Field(max_length=4000, description="Text with {{ expression }} placeholders"),
]
EventType = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, description="Dotted lowercase, e.g. service.call")]
Priority = Literal["P1", "P2", "P3", "P4"]
KeyField = Annotated[
    str,
    Field(
        pattern=r"^(data\.)?[A-Za-z_][A-Za-z0-9_]*$",
        description="A data field, e.g. outage_id; customer_id (or no key) pairs any events of the customer",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customers(_Strict):
    """Which customers the playbook is for. All given filters must hold."""

    tiers: list[Tier] | None = Field(default=None, min_length=1)
    segments: list[str] | None = Field(default=None, min_length=1)
    regions: list[str] | None = Field(default=None, min_length=1)
    where: Expr | None = None


class Sequence(_Strict):
    """`first` followed by `then` of the same customer (and with the same `key`, when given), at most `within`
    apart. Fires on `then`."""

    first: EventType
    then: EventType
    key: KeyField | None = None
    within: Duration


class Absence(_Strict):
    """`first` not followed by `missing` of the same customer (and with the same `key`, when given) within `within`
    (inclusive). Fires at the deadline."""

    first: EventType
    missing: EventType
    key: KeyField | None = None
    within: Duration


def _event_types(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Trigger(_Strict):
    """Exactly one of: `event` (an event type, or a list of them), `sequence`, `absence`."""

    event: (
        Annotated[
            list[EventType],
            BeforeValidator(_event_types, json_schema_input_type=EventType | list[EventType]),
            Field(min_length=1, description="An event type, or a list of them: any of them fires the playbook"),
        ]
        | None
    ) = None
    sequence: Sequence | None = None
    absence: Absence | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        given = [name for name in ("event", "sequence", "absence") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a trigger names exactly one of: event, sequence, absence"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class PriorityCase(_Strict):
    when: Expr | None = None
    then: Priority


def _priority_cases(value: Any) -> Any:
    if isinstance(value, str):
        return [{"then": value}]
    return value


class TaskAction(_Strict):
    """Raise a frontline task."""

    queue: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)
    priority: Annotated[
        list[PriorityCase],
        BeforeValidator(_priority_cases, json_schema_input_type=Priority | list[PriorityCase]),
        Field(min_length=1, description="P1..P4, or a list of {when, then} cases, the last without when"),
    ]
    due_in: Duration
    title: Template = Field(min_length=1)
    reason: Template = Field(min_length=1)
    talking_points: list[Template] = Field(default_factory=list)
    when: Expr | None = None
    escalate_to: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        max_length=100,
        description="The queue a task moves to when it is not done by its due time (else it stays in its queue)",
    )

    @model_validator(mode="after")
    def _default_last(self) -> TaskAction:
        if self.priority[-1].when is not None:
            raise ValueError("the last priority case must have no 'when': it is the default")
        return self


class GestureAction(_Strict):
    """Offer a gesture: a credit, an apology, an upgrade..."""

    type: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=60)
    amount: Expr = "0"
    cap: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    requires_approval: bool = False
    reason: Template = Field(min_length=1)
    when: Expr | None = None


class Action(_Strict):
    """Exactly one of: `task`, `gesture`."""

    task: TaskAction | None = None
    gesture: GestureAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        if (self.task is None) == (self.gesture is None):
            raise ValueError("an action is either a task or a gesture")
        return self


class Inhibitor(_Strict):
    """Another playbook that mutes this one for a customer: while a task of it is open in the customer's case, and,
    with `within`, for that long after it last raised anything for them."""

    playbook: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=80)
    within: Duration | None = None


def _percent(value: Any) -> Any:
    """`10%` (or `10`, a number) as the number 10."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1])
        except ValueError:
            return value
    return value


Percent = Annotated[
    float,
    BeforeValidator(_percent, json_schema_input_type=str | float),
    Field(gt=0, le=50, description="A share of customers in percent, e.g. 10%"),
]


def _inhibitors(value: Any) -> Any:
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"playbook": item} if isinstance(item, str) else item for item in value]
    return value


class Playbook(_Strict):
    """One recovery playbook: a pattern of events that marks a customer in distress, and what to do."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=80, description="Unique id, e.g. repeat-caller")
    version: int = Field(default=1, ge=1, le=MAX_INTEGER)
    description: str = ""
    enabled: bool = True
    customers: Customers | None = None
    trigger: Trigger
    let: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")], Expr] = Field(default_factory=dict)
    when: Expr | None = None
    cooldown: Duration | None = None
    inhibited_by: Annotated[
        list[Inhibitor],
        BeforeValidator(_inhibitors, json_schema_input_type=str | list[str | Inhibitor]),
        Field(description="Playbooks that mute this one for a customer: ids, or {playbook, within}"),
    ] = Field(default_factory=list)
    mode: Literal["live", "shadow"] = Field(
        default="live", description="shadow: evaluated, counted and kept as shadow effects, never published or queued"
    )
    holdout: Percent | None = Field(
        default=None, description="A deterministic share of customers that gets nothing from this playbook, e.g. 10%"
    )
    holdout_salt: str | None = Field(
        default=None, min_length=1, max_length=100, description="Who is held out depends on it (default: the id)"
    )
    actions: list[Action] = Field(min_length=1)


FieldName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=100)]


class DeclaredType(_Strict):
    """An event type of the catalog (`events.yaml`): its `data` fields and their types."""

    description: str = ""
    fields: dict[FieldName, Literal["string", "number", "bool", "list", "any"]] = Field(default_factory=dict)


class CatalogFile(_Strict):
    """`events.yaml` in a rules folder: the event types its playbooks may name beyond the standard ones."""

    types: dict[EventType, DeclaredType] = Field(default_factory=dict)
