"""A condition as a durable-rules pattern (the JSON ruleset form) plus the features it tests.

durable-rules matches flat messages against patterns. A condition such as
`count("service.call", 7d) >= 3 and customer.tier in ["gold", "platinum"]` becomes

    {"$and": [{"$gte": {"f0": 3}}, {"$or": [{"f1": "gold"}, {"f1": "platinum"}]}]}

where `f0` and `f1` are features: sub-expressions that recovery computes per evaluation and puts in the
message. Comparisons against constants, `in` a constant list, `and`, `or` and `not` are left to durable-rules;
any other sub-expression (two non-constant sides, arithmetic inside a comparison is fine as it is a feature)
becomes a true/false feature.

The null rules match the reference evaluator (`compiler.py`, `operators.py`) exactly: `==` and `!=` treat null as a
value (null != "x" is true), ordered comparisons with null, or between values of different types, are false.

durable-rules refuses a pattern of more than MAX_CONNECTIVES `$and`/`$or`: a condition that would need more is
decided by recovery whole, and durable-rules tests its one true/false feature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from recovery.expressions.compiler import Compiler
from recovery.expressions.context import Context, Fn
from recovery.expressions.nodes import COMPARISONS, FLIPPED, NEGATED, Binary, ListExpr, Literal, Node, Unary
from recovery.expressions.scope import Compiled

ALWAYS_KEY = "k"
ALWAYS: dict[str, Any] = {ALWAYS_KEY: 1}
NEVER: dict[str, Any] = {ALWAYS_KEY: 0}
_DURABLE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


_json_string = json.JSONEncoder(ensure_ascii=False).encode
"""A string as JSON text (the encoder's fast path for a bare string)."""
_int_text = int.__repr__
_float_text = float.__repr__
"""Numbers as the json module writes them (whatever a subclass's repr says)."""


@dataclass(frozen=True)
class Feature:
    key: str
    fn: Fn
    boolean: bool
    text: dict[str, str] = field(init=False, repr=False, compare=False)
    """The feature's members of the message, as JSON text to append to it: per type tag (z, o, `true`, `false`)
    whole, and (n, s) up to the value."""

    def __post_init__(self) -> None:
        k = self.key
        if self.boolean:
            text = {"true": f',"{k}":true', "false": f',"{k}":false'}
        else:
            text = {
                "z": f',"{k}t":"z"',
                "o": f',"{k}t":"o"',
                "true": f',"{k}t":"b","{k}b":true',
                "false": f',"{k}t":"b","{k}b":false',
                "n": f',"{k}t":"n","{k}n":',
                "s": f',"{k}t":"s","{k}s":',
            }
        object.__setattr__(self, "text", text)


def _tag(value: Any) -> str:
    if value is None:
        return "z"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int | float):
        return "n"
    if isinstance(value, str):
        return "s"
    return "o"


# durable-rules reads numbers from JSON: an exponent (1e+16, 1e-07) is refused (error 204) and integers lose
# precision past int64. So durable-rules only ever sees numbers in a window that prints without an exponent:
# constants outside SAFE are compared in Python instead, and values outside it are clamped to stand-ins that
# order the same way against every safe constant and equal none of them.
_SMALL, _BIG = 0.001, 1e14
_TINY_STANDIN, _HUGE_STANDIN = 0.0005, 5e14

MAX_CONNECTIVES = 15
"""`$and` and `$or` in one pattern: durable-rules 2.0.28 keeps two entries per connective in a sequence of fewer
than 32 (rete.c, MAX_SEQUENCE_EXPRESSIONS) and refuses a larger pattern with error 113 when the ruleset is made.
(With at most 15 binary connectives a pattern has at most 16 features: its messages stay far below
durable-rules' 255 properties.)"""


def _safe_constant(value: float) -> bool:
    return value == 0 or _SMALL <= abs(value) < _BIG


def _durable_number(value: int | float) -> int | float | None:
    """The number to put in a message, or None when it cannot be compared (NaN)."""
    if value != value:  # NaN
        return None
    magnitude = abs(value)
    if magnitude >= _BIG:
        return _HUGE_STANDIN if value > 0 else -_HUGE_STANDIN
    if 0 < magnitude < _SMALL:
        return _TINY_STANDIN if value > 0 else -_TINY_STANDIN
    return value


@dataclass(frozen=True)
class Pattern:
    """`pattern` for durable-rules, and `message_json(ctx)` that writes the message to post for one evaluation.

    A value feature `fK` travels as its type tag `fKt` (z null, b bool, n number, s string, o other), always
    present, plus the value under a key for its type (`fKn`, `fKs`, `fKb`). durable-rules then only ever compares
    like with like, and never tests a key for presence: `$ex`/`$nex` on a missing key hang durable-rules 2.0.28.
    """

    pattern: dict[str, Any]
    features: tuple[Feature, ...]

    @cached_property
    def trivial(self) -> bool:
        """True when the pattern holds for every message (no condition at all)."""
        return self.pattern == ALWAYS

    def message_json(self, ctx: Context) -> str:
        """The message to post for one evaluation, as the JSON text durable-rules reads: `sid`, the constant
        key `k` and each feature's members. Written directly (no dict, no encoder): it is built once per post."""
        parts = [_MESSAGE_START]
        for f in self.features:
            value = f.fn(ctx)
            text = f.text
            if f.boolean:
                parts.append(text["true"] if value else text["false"])
            elif value is None:
                parts.append(text["z"])
            elif value is True or value is False:
                parts.append(text["true"] if value else text["false"])
            elif isinstance(value, int):
                value = _durable_number(value)
                parts.append(text["n"] + _int_text(value) if isinstance(value, int) else _number_text(text, value))
            elif isinstance(value, float):
                parts.append(_number_text(text, _durable_number(value)))
            elif isinstance(value, str):
                parts.append(text["s"] + _json_string(value))
            else:
                parts.append(text["o"])
        parts.append("}")
        return "".join(parts)


_MESSAGE_START = f'{{"sid":"0","{ALWAYS_KEY}":1'


def _number_text(text: dict[str, str], value: float | None) -> str:
    return text["o"] if value is None else text["n"] + _float_text(value)


def _scalar(node: Node) -> tuple[bool, Any]:
    """(True, value) when `node` is a constant that durable-rules can compare against."""
    if isinstance(node, Literal) and node.kind in ("number", "string", "bool", "duration", "null"):
        value = node.value
        if node.kind in ("number", "duration") and not _safe_constant(float(value)):
            return False, None
        return True, value
    return False, None


def _equal(key: str, value: Any, equal: bool) -> dict[str, Any]:
    tag = _tag(value)
    if tag == "z":
        return {key + "t": "z"} if equal else {"$neq": {key + "t": "z"}}
    if equal:
        return {key + tag: value}
    return {"$or": [{"$neq": {key + "t": tag}}, {"$neq": {key + tag: value}}]}


class _Builder:
    def __init__(self, compiler: Compiler) -> None:
        self.compiler = compiler
        self.features: list[Feature] = []

    def feature(self, node: Node, boolean: bool) -> str:
        compiled: Compiled = self.compiler.compile(node)
        key = f"f{len(self.features)}"
        self.features.append(Feature(key, compiled.fn, boolean))
        return key

    def truthy(self, node: Node, negate: bool) -> dict[str, Any]:
        key = self.feature(node, boolean=True)
        return {key: not negate}

    def build(self, node: Node, negate: bool = False) -> dict[str, Any]:
        if isinstance(node, Literal) and node.kind == "bool":
            return ALWAYS if bool(node.value) != negate else NEVER
        if isinstance(node, Unary) and node.op == "not":
            return self.build(node.operand, not negate)
        if isinstance(node, Binary):
            if node.op in ("and", "or"):
                conj = (node.op == "and") != negate
                parts = [self.build(node.left, negate), self.build(node.right, negate)]
                return {"$and" if conj else "$or": parts}
            if node.op in COMPARISONS:
                return self.comparison(node, negate)
            if node.op in ("in", "not in") and isinstance(node.right, ListExpr):
                return self.membership(node, negate != (node.op == "not in"))
        return self.truthy(node, negate)

    def comparison(self, node: Binary, negate: bool) -> dict[str, Any]:
        op = node.op
        lconst, lval = _scalar(node.left)
        rconst, rval = _scalar(node.right)
        if lconst == rconst:  # both constant or neither: evaluate the whole comparison in Python
            return self.truthy(node, negate)
        if lconst:
            op, other, value = FLIPPED[op], node.right, lval
        else:
            other, value = node.left, rval
        if op in ("==", "!=") or value is None or isinstance(value, bool):
            if op not in ("==", "!="):  # ordered comparison with null or a bool is false
                return ALWAYS if negate else NEVER
            key = self.feature(other, boolean=False)
            return _equal(key, value, (op == "==") != negate)
        tag = _tag(value)
        if tag == "s":  # durable-rules orders "" wrongly: string ordering is left to Python
            return self.truthy(node, negate)
        key = self.feature(other, boolean=False)
        if not negate:
            return {_DURABLE_OPS[op]: {key + tag: value}}
        return {"$or": [{"$neq": {key + "t": tag}}, {_DURABLE_OPS[NEGATED[op]]: {key + tag: value}}]}

    def membership(self, node: Binary, negate: bool) -> dict[str, Any]:
        assert isinstance(node.right, ListExpr)  # noqa: S101 - guaranteed by the caller
        values = []
        for item in node.right.items:
            ok, value = _scalar(item)
            if not ok:
                return self.truthy(node, negate != (node.op == "not in"))
            values.append(value)
        if not values:
            return NEVER if not negate else ALWAYS
        lconst, _ = _scalar(node.left)
        if lconst:
            return self.truthy(node, negate != (node.op == "not in"))
        key = self.feature(node.left, boolean=False)
        parts = [_equal(key, v, not negate) for v in values]
        if len(parts) == 1:
            return parts[0]
        return {"$and": parts} if negate else {"$or": parts}


def _connectives(pattern: Any) -> int:
    """How many `$and` and `$or` the pattern holds."""
    found = 0
    if isinstance(pattern, list):
        for part in pattern:
            found += _connectives(part)
    elif isinstance(pattern, dict):
        for key, value in pattern.items():
            if key == "$and" or key == "$or":
                found += 1
            found += _connectives(value)
    return found


def _conjuncts(node: Node) -> list[Node]:
    """The operands of `node`'s top-level chain of `and` (each one a whole expression, or a part of one)."""
    if isinstance(node, Binary) and node.op == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _all(fns: tuple[Fn, ...]) -> Fn:
    def holds(ctx: Context) -> bool:
        for fn in fns:
            if not fn(ctx):
                return False
        return True

    return holds


def to_pattern(node: Node, compiler: Compiler) -> Pattern:
    """Translate a checked boolean condition into a durable-rules pattern and its features."""
    builder = _Builder(compiler)
    pattern = builder.build(node)
    if _connectives(pattern) <= MAX_CONNECTIVES:
        return Pattern(pattern, tuple(builder.features))
    # Each conjunct compiles as the whole expression (or the part of one) it is: within the depth bound.
    decided = _all(tuple(compiler.compile(part).fn for part in _conjuncts(node)))
    return Pattern({"f0": True}, (Feature("f0", decided, True),))
