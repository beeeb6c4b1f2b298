"""Type-check a syntax tree against what a playbook may name (`scope.py`), and turn it into a Python closure.

No `eval`/`exec`: every node becomes a small function of an evaluation `Context` (`context.py`). Static types
catch mistakes at load time (a duration compared with a bare number, an unknown field, a wrong argument count), so
a running playbook only meets data problems, and those evaluate to null instead of raising. The built-in
functions are in `functions.py`, the operators' run-time rules in `operators.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from operator import attrgetter
from typing import Any

from recovery.events import Occurrence
from recovery.exceptions import ExpressionError
from recovery.expressions.context import Context, Fn
from recovery.expressions.functions import WINDOW_FUNCTIONS, check_known, compile_call, compile_window_call
from recovery.expressions.nodes import COMPARISONS, Binary, Call, ListExpr, Literal, Node, Path, Unary
from recovery.expressions.operators import ARITH, arith_type, comparison, is_number, same
from recovery.expressions.parser import MAX_DEPTH
from recovery.expressions.scope import (
    CUSTOMER_FIELDS,
    EVENT_FIELDS,
    Compiled,
    Scope,
    expect,
    suggest,
)

_UNSET: Any = object()
_OCCURRENCE: dict[str, Callable[[Context], Occurrence | None]] = {
    "event": attrgetter("event"),
    "first": attrgetter("first"),
    "it": attrgetter("it"),
}
"""The occurrence each event name reads in a context."""


class Compiler:
    """Compiles nodes for one scope. Raises ExpressionError at the offending node's offset.

    A let value is evaluated where it is used, inside the expression that names it: its levels count there. An
    expression nests at most MAX_DEPTH levels in all (the parser bounds the text's own), so that evaluating it
    stays well within Python's recursion limit however lets are chained.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.level = 0
        """The level of the node being compiled (1 for a whole expression)."""
        self.deepest = 0
        """The deepest level the expression being compiled reaches, let values included."""

    def compile(self, node: Node) -> Compiled:
        root = self.level == 0
        if root:
            self.deepest = 0
        self.level += 1
        try:
            self.deepest = max(self.deepest, self.level)
            method = getattr(self, "_" + type(node).__name__.lower())
            result: Compiled = method(node)
        finally:
            self.level -= 1
        return replace(result, depth=self.deepest) if root else result

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
            total = self.level + let.depth
            if total > MAX_DEPTH:
                raise ExpressionError(
                    f"expression nests too deeply with the let values it uses ('{head}' adds {let.depth} levels): "
                    f"at most {MAX_DEPTH} levels in all",
                    node.pos,
                )
            self.deepest = max(self.deepest, total)
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
        if head == "event":
            return self._event_path(node, head, scope.event_types)
        if head == "first" and scope.first_types is not None:
            return self._event_path(node, head, scope.first_types)
        if head == "it" and scope.it_types is not None:
            return self._event_path(node, head, scope.it_types)
        if head == "duration" and scope.has_duration:
            if len(parts) > 1:
                raise ExpressionError("'duration' is a duration, it has no fields", node.pos)
            return Compiled(lambda ctx: ctx.duration, "duration", node)
        extra = ""
        if head == "first":
            extra = " ('first' exists only for sequence and absence triggers)"
        elif head == "duration":
            extra = " ('duration' exists only for sequence triggers)"
        elif head == "it":
            extra = (
                " ('it' exists only in the arguments of count, had, sum, distinct, values and last after the window)"
            )
        raise ExpressionError(f"unknown name '{head}'{extra}{suggest(head, scope.names())}", node.pos)

    def _customer(self, node: Path) -> Compiled:
        parts = node.parts
        if len(parts) != 2:
            raise ExpressionError(
                "write a customer field as customer.FIELD, e.g. customer.tier", node.pos + len("customer")
            )
        name = parts[1]
        if name not in CUSTOMER_FIELDS:
            raise ExpressionError(
                f"unknown customer field '{name}'{suggest(name, list(CUSTOMER_FIELDS))}; known fields: "
                + ", ".join(CUSTOMER_FIELDS),
                node.pos + len("customer."),
            )
        if name == "id":
            return Compiled(lambda ctx: ctx.customer_id, "string", node)
        if name == "tier":
            return Compiled(lambda ctx: ctx.profile.get("tier") or "standard", "string", node)
        return Compiled(lambda ctx: ctx.profile.get(name), CUSTOMER_FIELDS[name], node)

    def _event_path(self, node: Path, head: str, types: frozenset[str]) -> Compiled:
        """A field of `event`, `first` or `it` (an event a look-back function looks at)."""
        parts = node.parts
        if len(parts) == 1:
            raise ExpressionError(f"write a field of '{head}', e.g. {head}.data.FIELD or {head}.type", node.pos)
        name = parts[1]
        pick = _OCCURRENCE[head]
        if name == "data":
            if len(parts) < 3:
                raise ExpressionError(f"write a data field as {head}.data.FIELD", node.pos)
            fname = parts[2]
            kind = self._data_field(types, fname, node.pos + len(head) + len(".data."))
            if len(parts) > 3:
                kind = "any"
            rest = parts[3:]

            def get_data(ctx: Context) -> Any:
                occ = pick(ctx)
                value: Any = occ.data.get(fname) if occ is not None else None
                for p in rest:
                    value = value.get(p) if isinstance(value, dict) else None
                return value

            return Compiled(get_data, kind, node)
        if name not in EVENT_FIELDS:
            raise ExpressionError(
                f"unknown field '{name}' of '{head}'{suggest(name, [*EVENT_FIELDS, 'data'])}; "
                "known fields: id, type, occurred_at, customer_id, data.FIELD",
                node.pos + len(head) + 1,
            )
        if len(parts) > 2:
            raise ExpressionError(f"'{head}.{name}' has no fields", node.pos)
        attr = "ts" if name == "occurred_at" else name

        def get_field(ctx: Context) -> Any:
            occ = pick(ctx)
            return getattr(occ, attr) if occ is not None else None

        return Compiled(get_field, EVENT_FIELDS[name], node)

    def _data_field(self, types: frozenset[str], fname: str, offset: int) -> str:
        """The static type of data field `fname` of an event of one of `types`; ExpressionError (at `offset`) when
        no type has it. A type the catalog does not know (reported where it is named) has free-form data."""
        catalog = self.scope.catalog
        known: dict[str, str] = {}
        kinds: set[str] = set()
        for t in types:
            fields = catalog.fields(t)
            if fields is None:
                return "any"
            known.update(fields)
            kinds.add(fields.get(fname, "string"))
        if fname not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise ExpressionError(
                f"unknown data field '{fname}' for {'/'.join(sorted(types))}"
                f"{suggest(fname, sorted(known))}; known fields: {listed}",
                offset,
            )
        return kinds.pop() if len(kinds) == 1 else "any"

    # -- operators

    def _unary(self, node: Unary) -> Compiled:
        inner = self.compile(node.operand)
        f = inner.fn
        if node.op == "not":
            expect(inner, ("bool", "any"), "'not' needs a true/false value")
            return Compiled(lambda ctx: not f(ctx), "bool", node, windows=inner.windows)
        expect(inner, ("number", "duration", "any"), "'-' needs a number or a duration")
        return Compiled(lambda ctx: -v if is_number(v := f(ctx)) else None, inner.type, node, windows=inner.windows)

    def _binary(self, node: Binary) -> Compiled:
        left = self.compile(node.left)
        right = self.compile(node.right)
        op = node.op
        windows = left.windows | right.windows
        lf, rf = left.fn, right.fn
        if op in ("and", "or"):
            expect(left, ("bool", "any"), f"'{op}' needs true/false values on both sides")
            expect(right, ("bool", "any"), f"'{op}' needs true/false values on both sides")
            if op == "and":
                fn: Fn = lambda ctx: bool(lf(ctx)) and bool(rf(ctx))  # noqa: E731
            else:
                fn = lambda ctx: bool(lf(ctx)) or bool(rf(ctx))  # noqa: E731
            return Compiled(fn, "bool", node, windows=windows)
        if op in COMPARISONS:
            self._check_comparable(node, left, right)
            return Compiled(comparison(op, lf, rf), "bool", node, windows=windows)
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
                    found = value in container if type(value) is str else any(same(value, i) for i in container)
                else:
                    found = False
                return not found if negate else found

            return Compiled(member, "bool", node, windows=windows)
        result = arith_type(op, left.type, right.type)
        if result is None:
            raise ExpressionError(f"cannot apply '{op}' to {left.type} and {right.type}", node.pos)
        arith = ARITH[op]
        return Compiled(lambda ctx: arith(lf(ctx), rf(ctx)), result, node, windows=windows)

    def _about(self, node: Node, event_type: str) -> Compiled:
        """An argument of a look-back function, where `it` is each event of `event_type` looked at."""
        scope = self.scope
        saved = scope.it_types
        scope.it_types = frozenset({event_type})
        try:
            return self.compile(node)
        finally:
            scope.it_types = saved

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
        if node.name in WINDOW_FUNCTIONS:
            return compile_window_call(node, self.scope, self._about)
        check_known(node)
        return compile_call(node, [self.compile(a) for a in node.args])
