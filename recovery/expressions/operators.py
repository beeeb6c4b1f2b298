"""The operators at run time: equality without cross-type surprises, ordered comparisons that are false for null
or values of different types, arithmetic on numbers only (and `+` on strings), null for anything else; and the
static result type of arithmetic, for the compiler.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from recovery.expressions.context import Context, Fn


def same(a: Any, b: Any) -> bool:
    """Equality without Python's cross-type surprises: True is not 1, "1" is not 1."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def comparison(op: str, lf: Fn, rf: Fn) -> Fn:
    """`lf op rf` for a comparison operator (==, !=, <, <=, >, >=)."""
    if op == "==":
        return lambda ctx: same(lf(ctx), rf(ctx))
    if op == "!=":
        return lambda ctx: not same(lf(ctx), rf(ctx))
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


def arith_type(op: str, lt: str, rt: str) -> str | None:
    """The static type of `op` (+ - * /) on values of types `lt` and `rt`; None when it does not apply."""
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


def is_number(value: Any) -> bool:
    """A number, and not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _safe_arith(fn: Callable[[Any, Any], Any], strings: bool = False) -> Callable[[Any, Any], Any]:
    """Arithmetic on numbers only (and `+` on two strings): anything else from the data gives null."""

    def run(a: Any, b: Any) -> Any:
        if not (is_number(a) and is_number(b)) and not (strings and isinstance(a, str) and isinstance(b, str)):
            return None
        try:
            return fn(a, b)
        except (ZeroDivisionError, OverflowError):
            return None

    return run


ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": _safe_arith(lambda a, b: a + b, strings=True),
    "-": _safe_arith(lambda a, b: a - b),
    "*": _safe_arith(lambda a, b: a * b),
    "/": _safe_arith(lambda a, b: a / b),
}
