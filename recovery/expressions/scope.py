"""What an expression may name in one place of a playbook (`Scope`), with the static types of the fields it can
read, and what checking an expression gives (`Compiled`: its function and its static type).

Types: number, string, bool, duration (seconds), time (epoch seconds), list, null, any (free-form data).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from recovery.catalog import STANDARD, EventCatalog
from recovery.exceptions import ExpressionError
from recovery.expressions.context import Fn
from recovery.expressions.nodes import Node

CUSTOMER_FIELDS: dict[str, str] = {
    "id": "string",
    "tier": "string",
    "segment": "string",
    "region": "string",
    "annual_value": "number",
    "name": "string",
    "email": "string",
    "phone": "string",
    "language": "string",
}
EVENT_FIELDS: dict[str, str] = {
    "id": "string",
    "type": "string",
    "occurred_at": "time",
    "customer_id": "string",
}


@dataclass(frozen=True)
class Compiled:
    """A checked expression: `fn(ctx)` evaluates it, `type` is its static type. `depth` is how many levels deep
    evaluating it goes, those of the let values it uses included (set on a whole expression, see `Compiler`)."""

    fn: Fn
    type: str
    node: Node
    constant: bool = False
    windows: frozenset[tuple[str, float]] = frozenset()
    depth: int = 1


@dataclass
class Scope:
    """The names an expression may use in one place of one playbook.

    `event_types` are the types the `event` name can be (its `data` fields are checked against `catalog`);
    `first_types` likewise for `first` (sequence and absence triggers only); `duration` exists for sequences.
    `it_types` is set while the arguments of a look-back function are compiled: `it` is each event looked at.
    `data_types` collects the types whose past events' data a look-back reads (the engine keeps their data).
    """

    event_types: frozenset[str]
    first_types: frozenset[str] | None = None
    has_duration: bool = False
    lets: dict[str, Compiled] = field(default_factory=dict)
    allow_windows: bool = True
    catalog: EventCatalog = STANDARD
    it_types: frozenset[str] | None = None
    data_types: set[str] = field(default_factory=set)

    def names(self) -> list[str]:
        base = ["event", "customer", *self.lets]
        if self.first_types is not None:
            base.append("first")
        if self.has_duration:
            base.append("duration")
        if self.it_types is not None:
            base.append("it")
        return base


def suggest(name: str, options: Sequence[str]) -> str:
    """` (did you mean 'X'?)` for the closest of `options`, or nothing."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def expect(c: Compiled, kinds: tuple[str, ...], message: str) -> None:
    """Raise ExpressionError at `c` unless its static type is one of `kinds` (or null)."""
    if c.type not in kinds and c.type != "null":
        raise ExpressionError(f"{message}, got {c.type}", c.node.pos)
