"""A playbook's condition in parts, each compiled on its own, and the profile fields a playbook reads.

The engine evaluates the condition whole (a durable-rules pattern, `expressions/patterns.py`); `recovery explain`
evaluates its parts one by one with the reference evaluator (`expressions/compiler.py`), whose results the pattern
matches exactly: the customer filter's tests (tiers, segments, regions, where), and `when` split at its top-level
`and` or `or`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from recovery.exceptions import ExpressionError
from recovery.expressions.compiler import Compiler
from recovery.expressions.context import Context
from recovery.expressions.nodes import Binary, Call, ListExpr, Node, Path, Unary
from recovery.expressions.parser import parse, top_level_parts
from recovery.expressions.scope import Compiled
from recovery.expressions.templates import Template
from recovery.playbooks.compiler import CompiledPlaybook


@dataclass(frozen=True)
class Part:
    """One test of a condition: where it is (`customers` or `when`), its text, and its compiled form."""

    section: str
    text: str
    compiled: Compiled

    def holds(self, ctx: Context) -> bool:
        return bool(self.compiled.fn(ctx))


@dataclass(frozen=True)
class Condition:
    """The customer filter's tests (all must hold) and `when`'s parts, joined by `op` (`and`, `or`, or None for a
    single part; no parts: no `when`)."""

    customers: tuple[Part, ...]
    when: tuple[Part, ...]
    op: str | None

    def when_holds(self, results: list[bool]) -> bool:
        if not results:
            return True
        return any(results) if self.op == "or" else all(results)


def condition_of(pb: CompiledPlaybook) -> Condition:
    """`pb`'s condition in parts, compiled in the scope its own expressions were checked in."""
    if pb.scope is None or pb.source is None:  # built by hand (tests): no source to split
        return Condition((), (), None)
    # Compiling a look-back with a condition adds to the scope's `data_types`: keep the playbook's own untouched.
    compiler = Compiler(dataclasses.replace(pb.scope, data_types=set(), it_types=None))
    source = pb.source
    customers: list[Part] = []
    if source.customers is not None:
        c = source.customers
        for field, values in (("tier", c.tiers), ("segment", c.segments), ("region", c.regions)):
            if values:
                text = f"customer.{field} in {json.dumps(list(values), ensure_ascii=False)}"
                customers.append(_part(compiler, "customers", text))
        if c.where is not None:
            customers.append(_part(compiler, "customers", c.where.strip()))
    if source.when is None:
        return Condition(tuple(customers), (), None)
    op, texts = top_level_parts(source.when)
    try:
        when = tuple(_part(compiler, "when", text) for text in texts)
    except ExpressionError:  # a part that reads only in its context (it never does in this grammar): keep it whole
        op, when = None, (_part(compiler, "when", source.when.strip()),)
    return Condition(tuple(customers), when, op)


def _part(compiler: Compiler, section: str, text: str) -> Part:
    return Part(section, text, compiler.compile(parse(text)))


def customer_fields(pb: CompiledPlaybook) -> list[str]:
    """The profile fields `pb` reads (`customer.FIELD` anywhere: lets, condition, actions), `id` aside."""
    nodes: list[Node] = [c.node for c in pb.lets.values()]
    source = pb.source
    if source is not None:
        texts = [source.when] if source.when else []
        if source.customers is not None:
            c = source.customers
            texts += [c.where] if c.where else []
            nodes += [Path(0, ("customer", f)) for f, v in (("tier", c.tiers), ("segment", c.segments),
                                                            ("region", c.regions)) if v]  # fmt: skip
        for text in texts:
            try:
                nodes.append(parse(text))
            except ExpressionError:  # pragma: no cover - a compiled playbook's texts parse
                continue
    for task in pb.tasks:
        nodes += [r.when.node for r in task.priorities if r.when is not None]
        nodes += [task.when.node] if task.when is not None else []
        nodes += _template_nodes(task.title, task.reason, *task.talking_points)
    for gesture in pb.gestures:
        nodes += [gesture.amount.node] + ([gesture.when.node] if gesture.when is not None else [])
        nodes += _template_nodes(gesture.reason)
    fields = {name for node in nodes for name in _customer_paths(node)}
    return sorted(fields - {"id"})


def _template_nodes(*templates: Template) -> list[Node]:
    return [part.node for t in templates for part in t.parts if not isinstance(part, str)]


def _customer_paths(node: Node) -> Iterator[str]:
    if isinstance(node, Path):
        if len(node.parts) == 2 and node.parts[0] == "customer":
            yield node.parts[1]
    elif isinstance(node, Binary):
        yield from _customer_paths(node.left)
        yield from _customer_paths(node.right)
    elif isinstance(node, Unary):
        yield from _customer_paths(node.operand)
    elif isinstance(node, Call | ListExpr):
        for child in node.args if isinstance(node, Call) else node.items:
            yield from _customer_paths(child)


def missing_fields(fields: list[str], profile: dict[str, Any]) -> list[str]:
    """Those of `fields` the profile lacks (absent or null)."""
    return [f for f in fields if profile.get(f) is None]
