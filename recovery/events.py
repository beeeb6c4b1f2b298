"""The event envelope (DESIGN.md, contracts) and the `data` of the standard event types.

`Event.from_json` is the one way raw bytes become an event: it validates the envelope, then the `data` of a
standard type; an unknown type is valid and keeps its `data` as given. Every number in `data` (nested too) is one
a finite 64-bit float holds (JSON's NaN, Infinity or 1e999 are refused), and `occurred_at` is within the years
0001 to 9999 in UTC.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from recovery.exceptions import EventError
from recovery.times import format_time

TIERS: tuple[str, ...] = ("standard", "silver", "gold", "platinum")
Tier = Literal["standard", "silver", "gold", "platinum"]
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$"


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")


class CustomerUpdated(_Data):
    tier: Tier = "standard"
    segment: str | None = None
    region: str | None = None
    annual_value: float | None = Field(default=None, ge=0, strict=True, allow_inf_nan=False)
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None


class OutageEvent(_Data):
    outage_id: str = Field(min_length=1)
    customer_ids: list[str] | None = None
    region: str | None = None


class ServiceCall(_Data):
    reason: str | None = None


class ComplaintEvent(_Data):
    complaint_id: str = Field(min_length=1)
    category: str | None = None


class SurveyResponse(_Data):
    score: int = Field(ge=0, le=10, strict=True)


class TaskCompleted(_Data):
    task_id: str | None = None
    playbook: str | None = None
    queue: str | None = None
    outcome: str | None = None
    reason_code: str | None = None
    agent: str | None = None


Value = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]
"""An annual value: a finite number, never negative."""


class CustomerJoined(_Data):
    annual_value: Value | None = None
    segment: str | None = None
    channel: str | None = None


class CustomerRenewed(_Data):
    annual_value: Value | None = None
    reason: str | None = None


class CustomerReferred(_Data):
    referred_customer_id: str = Field(min_length=1)


class CustomerLost(_Data):
    reason: str | None = None
    annual_value: Value | None = None


class PlaybookSnoozed(_Data):
    playbook: str = Field(min_length=1)
    until: AwareDatetime
    reason: str | None = None
    by: str | None = None


class _Empty(_Data):
    pass


STANDARD_TYPES: dict[str, type[_Data]] = {
    "customer.updated": CustomerUpdated,
    "outage.started": OutageEvent,
    "outage.resolved": OutageEvent,
    "service.call": ServiceCall,
    "complaint.opened": ComplaintEvent,
    "complaint.resolved": ComplaintEvent,
    "cancellation.requested": _Empty,
    "payment.failed": _Empty,
    "survey.response": SurveyResponse,
    "task.completed": TaskCompleted,
    "payment.succeeded": _Empty,
    "customer.joined": CustomerJoined,
    "customer.renewed": CustomerRenewed,
    "customer.referred": CustomerReferred,
    "customer.lost": CustomerLost,
    "playbook.snoozed": PlaybookSnoozed,
}
"""The standard event types and the model of their `data`."""

_SHARED_FIELDS = frozenset({"tier", "segment", "region", "language"})


_INT_MAX = int(sys.float_info.max)
_INT_MIN = -_INT_MAX
"""The largest whole numbers a 64-bit float holds either way (compared as ints: cheaper than against floats)."""
NOT_FINITE = "not a finite number"
FIRST_TIME = datetime(1, 1, 1, tzinfo=UTC)
LAST_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The instants RFC 3339 writes in UTC: an offset must not take an event's time out of them."""


def _finite(data: dict[str, Any]) -> bool:
    """True when every number in `data`, nested ones too, is one a finite 64-bit float holds. Flat data (most
    events') is one loop; nested containers are walked without recursion (`from_dict` data may be deep)."""
    nested: list[Any] | None = None
    for value in data.values():
        kind = type(value)
        if kind is str:  # most values
            continue
        if kind is float:
            if value - value != 0.0:  # inf - inf and NaN - NaN are NaN
                return False
        elif kind is int:
            if not _INT_MIN <= value <= _INT_MAX:
                return False
        elif kind is dict or kind is list:
            if nested is None:
                nested = [value]
            else:
                nested.append(value)
    return nested is None or _finite_nested(nested)


def _finite_nested(stack: list[Any]) -> bool:
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is float:
            if value - value != 0.0:
                return False
        elif kind is int:
            if not _INT_MIN <= value <= _INT_MAX:
                return False
        elif kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
    return True


def _not_finite_at(data: dict[str, Any]) -> str:
    """Where (`minutes`, `a.b.2`) the first number of `data` in reading order is that `_finite` refuses."""
    stack: list[tuple[str, Any]] = [(str(key), value) for key, value in reversed(data.items())]
    while stack:
        path, value = stack.pop()
        if type(value) is dict:
            stack.extend((f"{path}.{key}", item) for key, item in reversed(value.items()))
        elif type(value) is list:
            stack.extend((f"{path}.{i}", item) for i, item in reversed(list(enumerate(value))))
        elif not _finite_nested([value]):
            return path
    return ""  # pragma: no cover - only called for data that `_finite` refused


def _data_checker(model: type[_Data]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Validates a `data` dict as `model` does, the same rules and messages, without building a model instance:
    the fields as a TypedDict that ignores other keys. It gives the fields found (only to count them: `data` is
    kept as given)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = Required[annotation] if info.is_required() else NotRequired[annotation]
    checked = TypedDict(f"{model.__name__}Fields", fields)  # type: ignore[misc]  # pydantic needs typing_extensions on 3.11
    checked.__pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[attr-defined]
    validate: Callable[[dict[str, Any]], dict[str, Any]] = TypeAdapter(checked).validator.validate_python
    return validate


_DATA_VALIDATORS = {name: _data_checker(model) for name, model in STANDARD_TYPES.items() if model.model_fields}
"""A check of each standard type's `data` that has fields (any dict is valid data of the others). The fields refuse
what is not finite themselves: only data with keys of its own needs `_finite` too."""

PROFILE_TYPE = "customer.updated"
"""The type that carries a customer's profile (tier, segment, region, value...)."""

SCOPE_TYPES = frozenset({"outage.started", "outage.resolved"})
"""Types that may concern many customers at once (no `customer_id`): fanned out to every affected customer."""

FEEDBACK_TYPES = frozenset({"task.completed", "playbook.snoozed"})
"""Types recovery sends itself, from what people do (a task closed, a playbook snoozed for a customer through the
API): stamped with the frontline's
wall time, which may run far ahead of a backlog still being read. They are evaluated at their time, but move no
clock (nor fire deadlines): otherwise an agent at work during a backlog would fire its partition's deadlines early."""


def data_fields(event_type: str) -> frozenset[str] | None:
    """The known `data` fields of a standard type, or None for a type whose data is free-form."""
    model = STANDARD_TYPES.get(event_type)
    if model is None or model is _Empty:
        return None if model is None else frozenset()
    return frozenset(model.model_fields)


class Event(BaseModel):
    """One operational event, as carried by one Kafka message or one line of a replay file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    type: str = Field(pattern=EVENT_TYPE_PATTERN, max_length=100)
    occurred_at: Annotated[AwareDatetime, Field(ge=FIRST_TIME, le=LAST_TIME)]
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def ts(self) -> float:
        """`occurred_at` as epoch seconds."""
        return self.occurred_at.timestamp()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        """Decode and validate one event; raises EventError naming the field at fault."""
        try:
            # `model_validate_json` without its per-call Python layer: this runs for every event read.
            event: Event = cls.__pydantic_validator__.validate_json(raw)
        except ValidationError as exc:
            raise EventError(_describe(exc, prefix="")) from None
        return event.checked()

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Event:
        try:
            event = cls.model_validate(value)
        except ValidationError as exc:
            raise EventError(_describe(exc, prefix="")) from None
        return event.checked()

    def checked(self) -> Event:
        """Validate `data` (finite numbers; the standard types' fields) and the envelope rules that span fields.

        Only for an event just validated (`from_json`, `from_dict`): its `data` is then a dict of its own (pydantic
        copies it), completed here in place (a profile's default tier, shared strings).
        """
        data = self.data
        validator = _DATA_VALIDATORS.get(self.type)
        if validator is None:
            if not _finite(data):
                raise self._not_finite()
        else:
            try:
                found = validator(data)
            except ValidationError as exc:
                if not _finite(data):  # said the same way for every type, nested or not
                    raise self._not_finite() from None
                raise EventError(f"event {self.id!r} ({self.type}): {_describe(exc, prefix='data.')}") from None
            if len(found) != len(data) and not _finite(data):  # keys of its own
                raise self._not_finite()
            if self.type == PROFILE_TYPE:
                # Profiles repeat a few values across millions of customers: share one string each.
                for key in _SHARED_FIELDS.intersection(data):
                    value = data[key]
                    if isinstance(value, str):
                        data[key] = sys.intern(value)
                data.setdefault("tier", "standard")
        if self.customer_id is not None:
            return self
        if self.type not in SCOPE_TYPES:
            raise EventError(f"event {self.id!r} ({self.type}): customer_id is required for this type")
        if self.type == "outage.started" and not (data.get("customer_ids") or data.get("region")):
            raise EventError(
                f"event {self.id!r} ({self.type}): an outage without customer_id must name the affected "
                "customers in data.customer_ids or data.region"
            )
        return self

    def _not_finite(self) -> EventError:
        return EventError(f"event {self.id!r} ({self.type}): data.{_not_finite_at(self.data)}: {NOT_FINITE}")

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "occurred_at": _rfc3339(self.occurred_at),
        }
        if self.customer_id is not None:
            out["customer_id"] = self.customer_id
        out["data"] = self.data
        return out


def _rfc3339(value: datetime) -> str:
    return format_time(value.timestamp())


def _describe(exc: ValidationError, prefix: str) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = prefix + ".".join(str(p) for p in err["loc"]) if err["loc"] else prefix.rstrip(".") or "event"
        received = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {_short(received)})"
        parts.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Occurrence:
    """An event as the engine holds it: epoch-second time, the customer it concerns, its data.

    A scope event fanned out to many customers gives one occurrence per customer, all with the event's id.
    """

    __slots__ = ("customer_id", "data", "id", "ts", "type")

    def __init__(self, id: str, type: str, ts: float, customer_id: str, data: dict[str, Any]) -> None:
        self.id = id
        self.type = type
        self.ts = ts
        self.customer_id = customer_id
        self.data = data

    def __repr__(self) -> str:
        return f"Occurrence({self.id!r}, {self.type!r}, {self.ts!r}, {self.customer_id!r})"
