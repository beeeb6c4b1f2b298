"""The built-in functions: their names, how a call of each is checked and compiled, and the null-safe helpers
the compiled calls run. A call whose arguments do not fit is an ExpressionError at load time; at run time a
function of missing or odd data gives null.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from recovery.events import EVENT_TYPE_PATTERN, Occurrence
from recovery.exceptions import ExpressionError
from recovery.expressions.context import Context, Fn
from recovery.expressions.nodes import Call, Literal, Node
from recovery.expressions.operators import is_number
from recovery.expressions.scope import Compiled, Scope, expect, suggest

NUMERIC = ("number", "any")


def round_number(x: Any, digits: Any = 0) -> Any:
    """`round(x, digits)`; with no digits, a whole number as a float."""
    if x is None:
        return None
    return round(x, int(digits)) if digits else float(round(x))


def nullsafe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, giving null when an argument is null or `fn` fails on the data."""

    def wrapped(*args: Any) -> Any:
        for a in args:  # a loop, not any(<generator>): this runs for every call
            if a is None:
                return None
        try:
            return fn(*args)
        except (TypeError, ValueError, OverflowError):
            return None

    return wrapped


ROUNDING: dict[str, Callable[[Any], Any]] = {"floor": math.floor, "ceil": math.ceil, "abs": abs}
UNIT_FUNCS: dict[str, float] = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}
FUNCTIONS = (
    "count",
    "had",
    "sum",
    "distinct",
    "values",
    "last",
    "min",
    "max",
    "floor",
    "ceil",
    "round",
    "abs",
    "if",
    "coalesce",
    "lower",
    "upper",
    *UNIT_FUNCS,
)

WINDOW_FUNCTIONS = ("count", "had", "sum", "distinct", "values", "last")
"""The functions that look back over the customer's history: `count(TYPE, WINDOW[, CONDITION])`, `had(...)`,
`sum(TYPE, WINDOW, NUMBER[, CONDITION])`, `distinct(TYPE, WINDOW, VALUE[, CONDITION])`,
`values(TYPE, WINDOW, VALUE[, CONDITION])` and `last(TYPE, WINDOW[, VALUE[, CONDITION]])`; `it` in their later
arguments is each event looked at."""


def check_known(node: Call) -> None:
    """Raise ExpressionError unless `node` calls a built-in function."""
    name = node.name
    if name not in FUNCTIONS:
        raise ExpressionError(
            f"unknown function '{name}'{suggest(name, FUNCTIONS)}; functions: {', '.join(FUNCTIONS)}",
            node.pos,
        )


def compile_call(node: Call, compiled: list[Compiled]) -> Compiled:
    """A call of a built-in function other than the window functions, its arguments compiled (`compiled`)."""
    name = node.name
    args = node.args
    fns = [c.fn for c in compiled]
    windows = frozenset().union(*(c.windows for c in compiled)) if compiled else frozenset()

    def arity(lo: int, hi: int | None) -> None:
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = str(lo) if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"
            raise ExpressionError(f"{name}() takes {want} argument(s), got {len(args)}", node.pos)

    if name in ("min", "max"):
        arity(1, None)
        kinds = {c.type for c in compiled} - {"any", "null"}
        if len(kinds) > 1 or (kinds and kinds.pop() not in ("number", "duration", "time")):
            raise ExpressionError(f"{name}() needs numbers, or durations, of one kind", node.pos)
        kind = next((c.type for c in compiled if c.type not in ("any", "null")), "any")
        pick = min if name == "min" else max

        def minmax(ctx: Context) -> Any:
            values = [v for v in (f(ctx) for f in fns) if v is not None]
            try:
                return pick(values) if values else None
            except TypeError:
                return None

        return Compiled(minmax, kind, node, windows=windows)
    if name in ("floor", "ceil", "abs"):
        arity(1, 1)
        expect(compiled[0], ("number", "duration", "any"), f"{name}() needs a number")
        op = ROUNDING[name]
        safe = nullsafe(op)
        f0 = fns[0]
        return Compiled(lambda ctx: safe(f0(ctx)), compiled[0].type, node, windows=windows)
    if name == "round":
        arity(1, 2)
        expect(compiled[0], NUMERIC, "round() needs a number")
        if len(compiled) == 2:
            expect(compiled[1], NUMERIC, "round() takes a number of digits")
        safe_round = nullsafe(round_number)
        return Compiled(lambda ctx: safe_round(*(f(ctx) for f in fns)), "number", node, windows=windows)
    if name in UNIT_FUNCS:
        arity(1, 1)
        expect(compiled[0], ("duration", "any"), f"{name}() needs a duration, e.g. {name}(duration)")
        unit = UNIT_FUNCS[name]
        f0 = fns[0]

        def in_unit(ctx: Context) -> Any:
            v = f0(ctx)
            if not is_number(v):
                return None
            try:
                return v / unit
            except OverflowError:  # a whole number beyond any float
                return None

        return Compiled(in_unit, "number", node, windows=windows)
    if name == "if":
        arity(3, 3)
        expect(compiled[0], ("bool", "any"), "if() needs a condition first")
        a, b = compiled[1].type, compiled[2].type
        kind = a if a == b or b == "null" else b if a == "null" else "any"
        c0, c1, c2 = fns
        return Compiled(lambda ctx: c1(ctx) if c0(ctx) else c2(ctx), kind, node, windows=windows)
    if name == "coalesce":
        arity(1, None)
        kinds = {c.type for c in compiled} - {"null"}
        kind = kinds.pop() if len(kinds) == 1 else "any"

        def coalesce(ctx: Context) -> Any:
            for f in fns:
                v = f(ctx)
                if v is not None:
                    return v
            return None

        return Compiled(coalesce, kind, node, windows=windows)
    # lower / upper
    arity(1, 1)
    expect(compiled[0], ("string", "any"), f"{name}() needs a string")
    method = str.lower if name == "lower" else str.upper
    f0 = fns[0]
    return Compiled(lambda ctx: method(v) if isinstance(v := f0(ctx), str) else None, "string", node, windows=windows)


def _window_args(node: Call, scope: Scope) -> tuple[str, float]:
    """The event type and the window of a look-back call, checked."""
    name = node.name
    if scope.it_types is not None:
        raise ExpressionError(f"{name}() cannot look back inside another look-back's arguments", node.pos)
    if not scope.allow_windows:
        raise ExpressionError(f"{name}() cannot be used here", node.pos)
    lo, hi = _WINDOW_ARITY[name]
    if not lo <= len(node.args) <= hi:
        raise ExpressionError(f"{name}() takes {_WINDOW_USAGE[name]}", node.pos)
    type_node, window_node = node.args[:2]
    if not (isinstance(type_node, Literal) and type_node.kind == "string"):
        raise ExpressionError(f'{name}() needs the event type as a quoted string, e.g. "service.call"', type_node.pos)
    if not (isinstance(window_node, Literal) and window_node.kind == "duration"):
        raise ExpressionError(f"{name}() needs the window as a duration, e.g. 7d or 48h", window_node.pos)
    event_type = str(type_node.value)
    window_s = float(window_node.value)
    if window_s <= 0:
        raise ExpressionError(f"{name}() needs a window longer than zero", window_node.pos)
    if not re.match(EVENT_TYPE_PATTERN, event_type):
        raise ExpressionError(
            f"'{event_type}' is not an event type (dotted lowercase, e.g. service.call)", type_node.pos
        )
    if not scope.catalog.known(event_type):
        raise ExpressionError(scope.catalog.unknown_type(event_type), type_node.pos)
    return event_type, window_s


_WINDOW_ARITY = {"count": (2, 3), "had": (2, 3), "sum": (3, 4), "distinct": (3, 4), "values": (3, 4), "last": (2, 4)}
_WINDOW_USAGE = {
    "count": 'an event type, a window and a condition on `it`, e.g. count("service.call", 7d) or '
    'count("service.call", 7d, it.data.reason == "billing")',
    "had": 'an event type, a window and a condition on `it`, e.g. had("complaint.opened", 14d)',
    "sum": 'an event type, a window, a number of `it` and a condition, e.g. sum("payment.failed", 30d, it.data.amount)',
    "distinct": 'an event type, a window, a value of `it` and a condition, e.g. distinct("service.call", 30d, '
    "it.data.reason)",
    "values": 'an event type, a window, a value of `it` and a condition, e.g. values("complaint.resolved", 14d, '
    "it.data.complaint_id)",
    "last": 'an event type, a window, a value of `it` and a condition, e.g. last("complaint.opened", 14d, '
    "it.data.complaint_id)",
}


def compile_window_call(node: Call, scope: Scope, about: Callable[[Node, str], Compiled]) -> Compiled:
    """A call of a look-back function. `about(arg, type)` compiles an argument after the window with `it` standing
    for each event of that type looked at (no look-back inside it)."""
    name = node.name
    event_type, window_s = _window_args(node, scope)
    windows = frozenset({(event_type, window_s)})
    extra = [about(arg, event_type) for arg in node.args[2:]]
    if extra:
        scope.data_types.add(event_type)
    if name in ("count", "had"):
        if extra:
            expect(extra[0], ("bool", "any"), f"{name}() needs a condition on `it` as its third argument")
            matching = _matching(event_type, window_s, extra[0].fn)
            if name == "count":
                return Compiled(lambda ctx: len(matching(ctx)), "number", node, windows=windows)
            return Compiled(lambda ctx: bool(matching(ctx)), "bool", node, windows=windows)
        if name == "count":
            return Compiled(lambda ctx: len(ctx.window(event_type, window_s)), "number", node, windows=windows)
        return Compiled(lambda ctx: bool(ctx.window(event_type, window_s)), "bool", node, windows=windows)
    if len(extra) == 2:
        expect(extra[1], ("bool", "any"), f"{name}() needs a condition on `it` as its fourth argument")
    matching = _matching(event_type, window_s, extra[1].fn if len(extra) == 2 else None)
    if name == "last":
        if not extra:
            return Compiled(
                lambda ctx: found[-1].ts if (found := matching(ctx)) else None, "time", node, windows=windows
            )
        return Compiled(_last(matching, extra[0].fn), extra[0].type, node, windows=windows)
    value = extra[0]
    if name == "sum":
        expect(value, ("number", "any"), "sum() needs a number of `it`, e.g. it.data.minutes")
        return Compiled(_sum(matching, value.fn), "number", node, windows=windows)
    if name == "values":
        return Compiled(_values(matching, value.fn), "list", node, windows=windows)
    return Compiled(_distinct(matching, value.fn), "number", node, windows=windows)


def _each(ctx: Context, items: list[Occurrence], fn: Fn) -> list[Any]:
    """`fn` for each of `items` as `it` (the context's `it` as it was afterwards)."""
    saved = ctx.it
    try:
        values = []
        for occ in items:
            ctx.it = occ
            values.append(fn(ctx))
        return values
    finally:
        ctx.it = saved


def _matching(event_type: str, window_s: float, condition: Fn | None) -> Callable[[Context], list[Occurrence]]:
    """The events of the window, in time order, those for which `condition` holds when there is one."""
    if condition is None:
        return lambda ctx: ctx.window(event_type, window_s)

    def matching(ctx: Context) -> list[Occurrence]:
        items = ctx.window(event_type, window_s)
        return [occ for occ, keep in zip(items, _each(ctx, items, condition), strict=True) if keep]

    return matching


def _last(matching: Callable[[Context], list[Occurrence]], value: Fn) -> Fn:
    def last(ctx: Context) -> Any:
        found = matching(ctx)
        return _each(ctx, found[-1:], value)[0] if found else None

    return last


def _sum(matching: Callable[[Context], list[Occurrence]], value: Fn) -> Fn:
    def total(ctx: Context) -> Any:
        result = sum(v for v in _each(ctx, matching(ctx), value) if is_number(v))
        try:
            return result if math.isfinite(result) else None
        except OverflowError:  # a whole number beyond any float
            return None

    return total


def _values(matching: Callable[[Context], list[Occurrence]], value: Fn) -> Fn:
    def values(ctx: Context) -> list[Any]:
        return [v for v in _each(ctx, matching(ctx), value) if v is not None]

    return values


def _distinct(matching: Callable[[Context], list[Occurrence]], value: Fn) -> Fn:
    def distinct(ctx: Context) -> int:
        seen = {json.dumps(v, sort_keys=True) for v in _each(ctx, matching(ctx), value) if v is not None}
        return len(seen)

    return distinct
