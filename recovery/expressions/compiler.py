"""Type-check a syntax tree against what a playbook may name, and turn it into a Python closure.

No `eval`/`exec`: every node becomes a small function of an evaluation `Context`. Static types catch mistakes
at load time (a duration compared with a bare number, an unknown field, a wrong argument count), so a running
playbook only meets data problems, and those evaluate to null instead of raising.

Types: number, string, bool, duration (seconds), time (epoch seconds), list, null, any (free-form data).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from recovery.events import EVENT_TYPE_PATTERN, STANDARD_TYPES, Occurrence, data_fields
from recovery.exceptions import ExpressionError
from recovery.expressions.nodes import COMPARISONS, Binary, Call, ListExpr, Literal, Node, Path, Unary
from recovery.expressions.parser import parse

Fn = Callable[["Context"], Any]

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
_DATA_TYPES: dict[str, dict[str, str]] = {
    "customer.updated": {"annual_value": "number", "tier": "string"},
    "survey.response": {"score": "number"},
    "outage.started": {"customer_ids": "list"},
    "outage.resolved": {"customer_ids": "list"},
}


_ts = attrgetter("ts")
_UNSET: Any = object()


def split_by_type(occurrences: Iterable[Occurrence]) -> dict[str, list[Occurrence]]:
    """Occurrences in time order, split per type (each list keeps the order)."""
    split: dict[str, list[Occurrence]] = {}
    for occ in occurrences:
        split.setdefault(occ.type, []).append(occ)
    return split


class Context:
    """Everything an expression can see while a playbook is evaluated for one customer at one instant.

    `at` is the evaluation instant (epoch seconds): look-back windows end there, inclusive.
    `by_type` holds the customer's recent occurrences of the types playbooks look back to, per type, each list in
    time order (what the engine keeps, so that a window is two binary searches). `history` gives the same as one
    sequence of any types instead; it is sorted and split here.
    """

    __slots__ = ("_counts", "at", "by_type", "customer_id", "duration", "event", "first", "lets", "profile")

    def __init__(
        self,
        event: Occurrence,
        customer_id: str,
        profile: dict[str, Any],
        at: float,
        by_type: Mapping[str, list[Occurrence]] | None = None,
        first: Occurrence | None = None,
        duration: float | None = None,
        *,
        history: Sequence[Occurrence] = (),
    ) -> None:
        self.event = event
        self.customer_id = customer_id
        self.profile = profile
        self.at = at
        self.by_type = by_type if by_type is not None else split_by_type(sorted(history, key=_ts))
        self.first = first
        self.duration = duration
        self.lets: dict[str, Any] = {}
        self._counts: dict[tuple[str, float], list[Occurrence]] = {}

    def window(self, event_type: str, window_s: float) -> list[Occurrence]:
        """Occurrences of `event_type` in [at - window_s, at], both ends included (memoized)."""
        key = (event_type, window_s)
        found = self._counts.get(key)
        if found is None:
            same = self.by_type.get(event_type)
            if not same:
                found = []
            else:
                at = self.at
                start = at - window_s
                lo = 0 if same[0].ts >= start else bisect_left(same, start, key=_ts)
                hi = len(same) if same[-1].ts <= at else bisect_right(same, at, key=_ts)
                found = same[lo:hi]
            self._counts[key] = found
        return found


@dataclass(frozen=True)
class Compiled:
    """A checked expression: `fn(ctx)` evaluates it, `type` is its static type."""

    fn: Fn
    type: str
    node: Node
    constant: bool = False
    windows: frozenset[tuple[str, float]] = frozenset()


@dataclass
class Scope:
    """The names an expression may use in one place of one playbook.

    `event_types` are the types the `event` name can be (its `data` fields are checked for standard types);
    `first_types` likewise for `first` (sequence and absence triggers only); `duration` exists for sequences.
    """

    event_types: frozenset[str]
    first_types: frozenset[str] | None = None
    has_duration: bool = False
    lets: dict[str, Compiled] = field(default_factory=dict)
    allow_windows: bool = True

    def names(self) -> list[str]:
        base = ["event", "customer", *self.lets]
        if self.first_types is not None:
            base.append("first")
        if self.has_duration:
            base.append("duration")
        return base


def _suggest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------------------------------------- functions

_NUMERIC = ("number", "any")


def _round(x: Any, digits: Any = 0) -> Any:
    if x is None:
        return None
    return round(x, int(digits)) if digits else float(round(x))


def _nullsafe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        for a in args:  # a loop, not any(<generator>): this runs for every call
            if a is None:
                return None
        try:
            return fn(*args)
        except (TypeError, ValueError, OverflowError):
            return None

    return wrapped


_ROUNDING: dict[str, Callable[[Any], Any]] = {"floor": math.floor, "ceil": math.ceil, "abs": abs}
_UNIT_FUNCS: dict[str, float] = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}
FUNCTIONS = (
    "count",
    "had",
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
    *_UNIT_FUNCS,
)


# ---------------------------------------------------------------------------------------------- compiler


class Compiler:
    """Compiles nodes for one scope. Raises ExpressionError at the offending node's offset."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def compile(self, node: Node) -> Compiled:
        method = getattr(self, "_" + type(node).__name__.lower())
        result: Compiled = method(node)
        return result

    # -- leaves

    def _literal(self, node: Literal) -> Compiled:
        value = node.value
        return Compiled(lambda ctx: value, node.kind, node, constant=True)

    def _listexpr(self, node: ListExpr) -> Compiled:
        items = [self.compile(i) for i in node.items]
        fns = [i.fn for i in items]
        constant = all(i.constant for i in items)
        windows = frozenset().union(*(i.windows for i in items)) if items else frozenset()
        if constant:
            value = [i.fn(None) for i in items]  # type: ignore[arg-type]
            return Compiled(lambda ctx: value, "list", node, constant=True)
        return Compiled(lambda ctx: [f(ctx) for f in fns], "list", node, windows=windows)

    def _path(self, node: Path) -> Compiled:
        parts = node.parts
        head = parts[0]
        scope = self.scope
        if head in scope.lets:
            if len(parts) > 1:
                raise ExpressionError(f"'{head}' is a value, it has no field '{parts[1]}'", node.pos)
            let = scope.lets[head]
            let_fn = let.fn

            def get_let(ctx: Context) -> Any:
                lets = ctx.lets
                value = lets.get(head, _UNSET)
                if value is _UNSET:
                    value = lets[head] = let_fn(ctx)
                return value

            return Compiled(get_let, let.type, node, windows=let.windows)
        if head == "customer":
            return self._customer(node)
        if head == "event" or (head == "first" and scope.first_types is not None):
            types = scope.event_types if head == "event" else scope.first_types
            return self._event_path(node, head, types or frozenset())
        if head == "duration" and scope.has_duration:
            if len(parts) > 1:
                raise ExpressionError("'duration' is a duration, it has no fields", node.pos)
            return Compiled(lambda ctx: ctx.duration, "duration", node)
        extra = ""
        if head == "first":
            extra = " ('first' exists only for sequence and absence triggers)"
        elif head == "duration":
            extra = " ('duration' exists only for sequence triggers)"
        raise ExpressionError(f"unknown name '{head}'{extra}{_suggest(head, scope.names())}", node.pos)

    def _customer(self, node: Path) -> Compiled:
        parts = node.parts
        if len(parts) != 2:
            raise ExpressionError(
                "write a customer field as customer.FIELD, e.g. customer.tier", node.pos + len("customer")
            )
        name = parts[1]
        if name not in CUSTOMER_FIELDS:
            raise ExpressionError(
                f"unknown customer field '{name}'{_suggest(name, list(CUSTOMER_FIELDS))}; known fields: "
                + ", ".join(CUSTOMER_FIELDS),
                node.pos + len("customer."),
            )
        if name == "id":
            return Compiled(lambda ctx: ctx.customer_id, "string", node)
        if name == "tier":
            return Compiled(lambda ctx: ctx.profile.get("tier") or "standard", "string", node)
        return Compiled(lambda ctx: ctx.profile.get(name), CUSTOMER_FIELDS[name], node)

    def _event_path(self, node: Path, head: str, types: frozenset[str]) -> Compiled:
        parts = node.parts
        is_first = head == "first"
        if len(parts) == 1:
            raise ExpressionError(f"write a field of '{head}', e.g. {head}.data.FIELD or {head}.type", node.pos)
        name = parts[1]
        if name == "data":
            if len(parts) < 3:
                raise ExpressionError(f"write a data field as {head}.data.FIELD", node.pos)
            fname = parts[2]
            offset = node.pos + len(head) + len(".data.")
            known: set[str] = set()
            free = False
            for t in types:
                fields = data_fields(t)
                if fields is None:
                    free = True
                else:
                    known |= fields
            if not free and fname not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise ExpressionError(
                    f"unknown data field '{fname}' for {'/'.join(sorted(types))}"
                    f"{_suggest(fname, sorted(known))}; known fields: {listed}",
                    offset,
                )
            kind = "any"
            if len(parts) == 3 and not free:
                kinds = {_DATA_TYPES.get(t, {}).get(fname, "string") for t in types if t in STANDARD_TYPES}
                kind = kinds.pop() if len(kinds) == 1 else "any"
            rest = parts[3:]

            def get_data(ctx: Context) -> Any:
                occ = ctx.first if is_first else ctx.event
                value: Any = occ.data.get(fname) if occ is not None else None
                for p in rest:
                    value = value.get(p) if isinstance(value, dict) else None
                return value

            return Compiled(get_data, kind, node)
        if name not in EVENT_FIELDS:
            raise ExpressionError(
                f"unknown field '{name}' of '{head}'{_suggest(name, [*EVENT_FIELDS, 'data'])}; "
                "known fields: id, type, occurred_at, customer_id, data.FIELD",
                node.pos + len(head) + 1,
            )
        if len(parts) > 2:
            raise ExpressionError(f"'{head}.{name}' has no fields", node.pos)
        attr = "ts" if name == "occurred_at" else name

        def get_field(ctx: Context) -> Any:
            occ = ctx.first if is_first else ctx.event
            return getattr(occ, attr) if occ is not None else None

        return Compiled(get_field, EVENT_FIELDS[name], node)

    # -- operators

    def _unary(self, node: Unary) -> Compiled:
        inner = self.compile(node.operand)
        f = inner.fn
        if node.op == "not":
            self._expect(inner, ("bool", "any"), "'not' needs a true/false value")
            return Compiled(lambda ctx: not f(ctx), "bool", node, windows=inner.windows)
        self._expect(inner, ("number", "duration", "any"), "'-' needs a number or a duration")
        return Compiled(lambda ctx: -v if _is_number(v := f(ctx)) else None, inner.type, node, windows=inner.windows)

    def _expect(self, c: Compiled, kinds: tuple[str, ...], message: str) -> None:
        if c.type not in kinds and c.type != "null":
            raise ExpressionError(f"{message}, got {c.type}", c.node.pos)

    def _binary(self, node: Binary) -> Compiled:
        left = self.compile(node.left)
        right = self.compile(node.right)
        op = node.op
        windows = left.windows | right.windows
        lf, rf = left.fn, right.fn
        if op in ("and", "or"):
            self._expect(left, ("bool", "any"), f"'{op}' needs true/false values on both sides")
            self._expect(right, ("bool", "any"), f"'{op}' needs true/false values on both sides")
            if op == "and":
                fn: Fn = lambda ctx: bool(lf(ctx)) and bool(rf(ctx))  # noqa: E731
            else:
                fn = lambda ctx: bool(lf(ctx)) or bool(rf(ctx))  # noqa: E731
            return Compiled(fn, "bool", node, windows=windows)
        if op in COMPARISONS:
            self._check_comparable(node, left, right)
            return Compiled(_comparison(op, lf, rf), "bool", node, windows=windows)
        if op in ("in", "not in"):
            if right.type not in ("list", "string", "any", "null"):
                raise ExpressionError(f"'{op}' needs a list or a string on its right, got {right.type}", node.right.pos)
            negate = op == "not in"

            def member(ctx: Context) -> Any:
                container = rf(ctx)
                value = lf(ctx)
                if isinstance(container, str):
                    found = isinstance(value, str) and value in container
                elif isinstance(container, list):
                    # A string equals only a string: `in` is exact for it, and quick.
                    found = value in container if type(value) is str else any(_same(value, i) for i in container)
                else:
                    found = False
                return not found if negate else found

            return Compiled(member, "bool", node, windows=windows)
        result = _arith_type(op, left.type, right.type)
        if result is None:
            raise ExpressionError(f"cannot apply '{op}' to {left.type} and {right.type}", node.pos)
        arith = _ARITH[op]
        return Compiled(lambda ctx: arith(lf(ctx), rf(ctx)), result, node, windows=windows)

    def _check_comparable(self, node: Binary, left: Compiled, right: Compiled) -> None:
        lt, rt = left.type, right.type
        if "any" in (lt, rt) or "null" in (lt, rt) or lt == rt:
            if node.op not in ("==", "!=") and (lt in ("bool", "list") or rt in ("bool", "list")):
                raise ExpressionError(
                    f"'{node.op}' cannot order {lt if lt in ('bool', 'list') else rt} values", node.pos
                )
            return
        hint = ""
        if {lt, rt} == {"duration", "number"}:
            hint = ": write the number with a unit, e.g. 2h or 7d, or convert with hours(...)"
        raise ExpressionError(f"cannot compare {lt} with {rt}{hint}", node.pos)

    # -- calls

    def _call(self, node: Call) -> Compiled:
        name = node.name
        args = node.args
        if name in ("count", "had"):
            return self._window_call(node)
        if name not in FUNCTIONS:
            raise ExpressionError(
                f"unknown function '{name}'{_suggest(name, FUNCTIONS)}; functions: {', '.join(FUNCTIONS)}",
                node.pos,
            )
        compiled = [self.compile(a) for a in args]
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
            self._expect(compiled[0], ("number", "duration", "any"), f"{name}() needs a number")
            op = _ROUNDING[name]
            safe = _nullsafe(op)
            f0 = fns[0]
            return Compiled(lambda ctx: safe(f0(ctx)), compiled[0].type, node, windows=windows)
        if name == "round":
            arity(1, 2)
            self._expect(compiled[0], _NUMERIC, "round() needs a number")
            if len(compiled) == 2:
                self._expect(compiled[1], _NUMERIC, "round() takes a number of digits")
            safe_round = _nullsafe(_round)
            return Compiled(lambda ctx: safe_round(*(f(ctx) for f in fns)), "number", node, windows=windows)
        if name in _UNIT_FUNCS:
            arity(1, 1)
            self._expect(compiled[0], ("duration", "any"), f"{name}() needs a duration, e.g. {name}(duration)")
            unit = _UNIT_FUNCS[name]
            f0 = fns[0]
            return Compiled(lambda ctx: v / unit if _is_number(v := f0(ctx)) else None, "number", node, windows=windows)
        if name == "if":
            arity(3, 3)
            self._expect(compiled[0], ("bool", "any"), "if() needs a condition first")
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
        self._expect(compiled[0], ("string", "any"), f"{name}() needs a string")
        method = str.lower if name == "lower" else str.upper
        f0 = fns[0]
        return Compiled(
            lambda ctx: method(v) if isinstance(v := f0(ctx), str) else None, "string", node, windows=windows
        )

    def _window_call(self, node: Call) -> Compiled:
        name = node.name
        if not self.scope.allow_windows:
            raise ExpressionError(f"{name}() cannot be used here", node.pos)
        if len(node.args) != 2:
            raise ExpressionError(
                f'{name}() takes an event type and a window, e.g. {name}("service.call", 7d)', node.pos
            )
        type_node, window_node = node.args
        if not (isinstance(type_node, Literal) and type_node.kind == "string"):
            raise ExpressionError(
                f'{name}() needs the event type as a quoted string, e.g. "service.call"', type_node.pos
            )
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
        windows = frozenset({(event_type, window_s)})
        if name == "count":
            return Compiled(lambda ctx: len(ctx.window(event_type, window_s)), "number", node, windows=windows)
        return Compiled(lambda ctx: bool(ctx.window(event_type, window_s)), "bool", node, windows=windows)


def _same(a: Any, b: Any) -> bool:
    """Equality without Python's cross-type surprises: True is not 1, "1" is not 1."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _comparison(op: str, lf: Fn, rf: Fn) -> Fn:
    if op == "==":
        return lambda ctx: _same(lf(ctx), rf(ctx))
    if op == "!=":
        return lambda ctx: not _same(lf(ctx), rf(ctx))
    cmp = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def ordered(ctx: Context) -> bool:
        a = lf(ctx)
        b = rf(ctx)
        if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
            return False
        try:
            return bool(cmp(a, b))
        except TypeError:
            return False

    return ordered


_ARITH_TYPES: dict[str, dict[tuple[str, str], str]] = {
    "+": {
        ("number", "number"): "number",
        ("duration", "duration"): "duration",
        ("time", "duration"): "time",
        ("duration", "time"): "time",
        ("string", "string"): "string",
    },
    "-": {
        ("number", "number"): "number",
        ("duration", "duration"): "duration",
        ("time", "duration"): "time",
        ("time", "time"): "duration",
    },
    "*": {
        ("number", "number"): "number",
        ("duration", "number"): "duration",
        ("number", "duration"): "duration",
    },
    "/": {
        ("number", "number"): "number",
        ("duration", "number"): "duration",
        ("duration", "duration"): "number",
    },
}


def _arith_type(op: str, lt: str, rt: str) -> str | None:
    if "null" in (lt, rt):
        return "null"
    if "any" in (lt, rt):
        other = rt if lt == "any" else lt
        if other == "any":
            return "any"
        if op in ("*", "/") and other == "duration":
            return "any"
        if other in ("number", "duration", "time", "string"):
            return "any" if op == "-" and other == "time" else (other if other != "string" or op == "+" else None)
        return None
    return _ARITH_TYPES[op].get((lt, rt))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _safe_arith(fn: Callable[[Any, Any], Any], strings: bool = False) -> Callable[[Any, Any], Any]:
    """Arithmetic on numbers only (and `+` on two strings): anything else from the data gives null."""

    def run(a: Any, b: Any) -> Any:
        if not (_is_number(a) and _is_number(b)) and not (strings and isinstance(a, str) and isinstance(b, str)):
            return None
        try:
            return fn(a, b)
        except (ZeroDivisionError, OverflowError):
            return None

    return run


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": _safe_arith(lambda a, b: a + b, strings=True),
    "-": _safe_arith(lambda a, b: a - b),
    "*": _safe_arith(lambda a, b: a * b),
    "/": _safe_arith(lambda a, b: a / b),
}


def compile_expression(text: str, scope: Scope, want: tuple[str, ...] | None = None) -> Compiled:
    """Parse and check `text` in `scope`; `want` restricts the result type (e.g. ("bool",) for conditions)."""
    node = parse(text)
    compiled = Compiler(scope).compile(node)
    if want is not None and compiled.type not in (*want, "any", "null"):
        raise ExpressionError(f"expected {' or '.join(want)} here, but the expression gives {compiled.type}", 0)
    return compiled
