"""A condition as a durable-rules pattern (the JSON ruleset form) plus the features it tests.

durable-rules matches flat messages against patterns. A condition such as
`count("service.call", 7d) >= 3 and customer.tier in ["gold", "platinum"]` becomes

    {"$and": [{"$gte": {"f0": 3}}, {"$or": [{"f1": "gold"}, {"f1": "platinum"}]}]}

where `f0` and `f1` are features: sub-expressions that recovery computes per evaluation and puts in the
message. Comparisons against constants, `in` a constant list, `and`, `or` and `not` are left to durable-rules;
any other sub-expression (two non-constant sides, arithmetic inside a comparison is fine as it is a feature)
becomes a true/false feature.

The null rules match the reference evaluator in `compiler.py` exactly: a missing value is absent from the
message; `==` and `!=` treat it as a value (null != "x" is true), ordered comparisons with it are false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recovery.expressions.compiler import Compiled, Compiler, Context, Fn
from recovery.expressions.nodes import COMPARISONS, FLIPPED, NEGATED, Binary, ListExpr, Literal, Node, Unary

ALWAYS_KEY = "k"
ALWAYS: dict[str, Any] = {ALWAYS_KEY: 1}
NEVER: dict[str, Any] = {ALWAYS_KEY: 0}
_DURABLE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


@dataclass(frozen=True)
class Feature:
    key: str
    fn: Fn
    boolean: bool


@dataclass(frozen=True)
class Pattern:
    """`pattern` for durable-rules, and `message(ctx)` that builds the message to post for one evaluation."""

    pattern: dict[str, Any]
    features: tuple[Feature, ...]

    def message(self, ctx: Context) -> dict[str, Any]:
        msg: dict[str, Any] = {"sid": "0", ALWAYS_KEY: 1}
        for f in self.features:
            value = f.fn(ctx)
            if f.boolean:
                msg[f.key] = bool(value)
            elif value is not None:
                msg[f.key] = value
        return msg


def _scalar(node: Node) -> tuple[bool, Any]:
    """(True, value) when `node` is a constant that durable-rules can compare against."""
    if isinstance(node, Literal) and node.kind in ("number", "string", "bool", "duration", "null"):
        return True, node.value
    return False, None


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
        key = self.feature(other, boolean=False)
        if op in ("==", "!="):
            equal = (op == "==") != negate
            if value is None:
                return {"$nex": {key: 1}} if equal else {"$ex": {key: 1}}
            if equal:
                return {key: value}
            return {"$or": [{"$neq": {key: value}}, {"$nex": {key: 1}}]}
        if value is None:  # ordered comparison with null is false; its negation true
            return ALWAYS if negate else NEVER
        if not negate:
            return {_DURABLE_OPS[op]: {key: value}}
        return {"$or": [{_DURABLE_OPS[NEGATED[op]]: {key: value}}, {"$nex": {key: 1}}]}

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
        if not negate:
            return _either([{"$nex": {key: 1}} if v is None else {key: v} for v in values])
        parts: list[dict[str, Any]] = []
        for v in values:
            parts.append({"$ex": {key: 1}} if v is None else {"$or": [{"$neq": {key: v}}, {"$nex": {key: 1}}]})
        return parts[0] if len(parts) == 1 else {"$and": parts}


def _either(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else {"$or": parts}


def to_pattern(node: Node, compiler: Compiler) -> Pattern:
    """Translate a checked boolean condition into a durable-rules pattern and its features."""
    builder = _Builder(compiler)
    pattern = builder.build(node)
    return Pattern(pattern, tuple(builder.features))
