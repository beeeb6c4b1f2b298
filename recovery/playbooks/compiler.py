"""A validated playbook model, checked and compiled: expressions become closures, the condition a
durable-rules pattern. Problems are collected with their path in the document, never raised one by one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from recovery.catalog import STANDARD, EventCatalog
from recovery.exceptions import ExpressionError
from recovery.expressions.compiler import Compiler
from recovery.expressions.context import Context
from recovery.expressions.nodes import Binary, ListExpr, Literal, Node, Path
from recovery.expressions.parser import parse
from recovery.expressions.patterns import Pattern, to_pattern
from recovery.expressions.scope import Compiled, Scope
from recovery.expressions.templates import Template, compile_template
from recovery.playbooks.model import GestureAction, Playbook, TaskAction
from recovery.playbooks.source import Loc


@dataclass(frozen=True)
class PriorityRule:
    when: Compiled | None
    priority: str


@dataclass(frozen=True)
class CompiledTask:
    index: int
    queue: str
    priorities: tuple[PriorityRule, ...]
    due_in_s: float
    title: Template
    reason: Template
    talking_points: tuple[Template, ...]
    when: Compiled | None
    escalate_to: str | None = None

    def priority(self, ctx: Context) -> str:
        for rule in self.priorities:
            if rule.when is None or rule.when.fn(ctx):
                return rule.priority
        return self.priorities[-1].priority


@dataclass(frozen=True)
class CompiledGesture:
    index: int
    type: str
    amount: Compiled
    cap: float | None
    currency: str
    requires_approval: bool
    reason: Template
    when: Compiled | None


def holdout_point(salt: str, customer_id: str) -> float:
    """Where a customer falls in [0, 1) for a holdout: uniform, and the same for the same salt and customer."""
    digest = hashlib.blake2b(f"{salt}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class CompiledPlaybook:
    """Everything the engine needs to run one playbook."""

    id: str
    version: int
    file: str
    kind: str  # "event", "sequence" or "absence"
    event_types: tuple[str, ...]  # the types that fire it: the events, the sequence's `then`, the absence's `first`
    first_type: str | None
    end_type: str | None  # the absence's `missing`
    key: str | None  # data field pairing sequence/absence events (None: the customer alone pairs them)
    within_s: float
    cooldown_s: float | None
    inhibited_by: tuple[tuple[str, float | None], ...]
    """Playbooks that mute this one for a customer, each with its look-back (None: only while its task is open)."""
    condition: Pattern
    evidence_windows: frozenset[tuple[str, float]]
    tasks: tuple[CompiledTask, ...]
    gestures: tuple[CompiledGesture, ...]
    lets: dict[str, Compiled]
    windows: frozenset[tuple[str, float]] = field(default_factory=frozenset)
    data_types: frozenset[str] = frozenset()
    """Types whose past events' data a look-back reads (`it.data...`): kept with their data."""
    source: Playbook | None = None
    mode: str = "live"
    """`shadow`: evaluated and kept as shadow effects, never published, queued nor counted as raised."""
    holdout: float = 0.0
    """The share of customers held out (0 to 0.5): they get nothing from this playbook, their effects are kept."""
    holdout_salt: str = ""
    scope: Scope | None = field(default=None, repr=False, compare=False)
    """The names its expressions were checked against (its lets included): `recovery explain` compiles the parts of
    its condition in it, one by one. The engine never reads it."""

    def held_out(self, customer_id: str) -> bool:
        """Whether `customer_id` is in this playbook's holdout: a hash of the salt (the playbook's id unless set)
        and the customer's id, so a new version keeps it, and raising the share only adds customers."""
        return self.holdout > 0 and holdout_point(self.holdout_salt or self.id, customer_id) < self.holdout

    @cached_property
    def evidence_order(self) -> tuple[tuple[str, float], ...]:
        """`evidence_windows` in a fixed order."""
        return tuple(sorted(self.evidence_windows))

    @property
    def horizon_s(self) -> float:
        """How far back this playbook looks from an evaluation instant."""
        longest = max((w for _, w in self.windows), default=0.0)
        return max(longest, self.within_s)

    @property
    def history_types(self) -> frozenset[str]:
        """Event types whose occurrences the engine must keep for this playbook."""
        types = {t for t, _ in self.windows}
        if self.kind == "sequence" and self.first_type:
            types.add(self.first_type)
        return frozenset(types)

    @property
    def event_type(self) -> str:
        """The first of `event_types` (the only one, but for an event trigger naming several)."""
        return self.event_types[0]

    @property
    def kept_with_data(self) -> frozenset[str]:
        """Types whose occurrences the engine keeps with their data: a sequence's `first` (paired by a key and
        read as `first`), and those a look-back reads the data of."""
        if self.kind == "sequence" and self.first_type:
            return self.data_types | {self.first_type}
        return self.data_types


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[Loc, int | None, str]] = []

    def add(self, loc: Loc, message: str, offset: int | None = None) -> None:
        self.items.append((loc, offset, message))


def _key_field(key: str | None) -> str | None:
    """The data field pairing a sequence's or an absence's events; None when the customer alone pairs them."""
    if key is None or key == "customer_id":
        return None
    return key.removeprefix("data.")


def _trigger_types(pb: Playbook, catalog: EventCatalog, problems: _Problems) -> None:
    """Every event type the trigger names must be in the catalog."""
    trig = pb.trigger
    named: list[tuple[Loc, str]] = [(("trigger", "event", i), t) for i, t in enumerate(trig.event or ())]
    if trig.sequence is not None:
        named += [(("trigger", "sequence", "first"), trig.sequence.first)]
        named += [(("trigger", "sequence", "then"), trig.sequence.then)]
    if trig.absence is not None:
        named += [(("trigger", "absence", "first"), trig.absence.first)]
        named += [(("trigger", "absence", "missing"), trig.absence.missing)]
    for loc, event_type in named:
        if not catalog.known(event_type):
            problems.add(loc, catalog.unknown_type(event_type))


def compile_playbook(
    pb: Playbook, file: str, catalog: EventCatalog = STANDARD
) -> tuple[CompiledPlaybook | None, list[tuple[Loc, int | None, str]]]:
    """Compile a structurally valid playbook; returns (playbook, []) or (None, problems with their locations).
    Event types and data fields are checked against `catalog`."""
    problems = _Problems()
    _trigger_types(pb, catalog, problems)
    trig = pb.trigger
    first_types: frozenset[str] | None = None
    has_duration = False
    first_type = end_type = key = None
    within_s = 0.0
    if trig.event is not None:
        kind, event_types = "event", tuple(dict.fromkeys(trig.event))
        if len(event_types) < len(trig.event):
            problems.add(("trigger", "event"), "an event type is named twice")
    elif trig.sequence is not None:
        seq = trig.sequence
        kind, event_types, first_type, key, within_s = "sequence", (seq.then,), seq.first, seq.key, seq.within
        first_types = frozenset({seq.first})
        has_duration = True
    else:
        absence = trig.absence
        if absence is None:  # pragma: no cover - the model guarantees one trigger
            raise ValueError("trigger")
        kind, event_types, first_type, end_type = "absence", (absence.first,), absence.first, absence.missing
        key, within_s = absence.key, absence.within
        first_types = frozenset({absence.first})
        if absence.first == absence.missing:
            problems.add(("trigger", "absence", "missing"), "'missing' must differ from 'first'")
    if kind == "sequence" and first_type == event_types[0]:
        problems.add(("trigger", "sequence", "then"), "'then' must differ from 'first'")

    scope = Scope(
        event_types=frozenset(event_types), first_types=first_types, has_duration=has_duration, catalog=catalog
    )
    compiler = Compiler(scope)

    windows: set[tuple[str, float]] = set()

    def expr(text: str, loc: Loc, want: tuple[str, ...] | None = None) -> Compiled | None:
        try:
            compiled = compiler.compile(parse(text))
        except ExpressionError as exc:
            problems.add(loc, exc.message, exc.offset)
            return None
        windows.update(compiled.windows)
        if want is not None and compiled.type not in (*want, "any", "null"):
            problems.add(loc, f"expected {' or '.join(want)} here, but the expression gives {compiled.type}", 0)
            return None
        return compiled

    def template(text: str, loc: Loc) -> Template:
        try:
            compiled = compile_template(text, scope)
        except ExpressionError as exc:
            problems.add(loc, exc.message, exc.offset)
            return Template(())
        windows.update(compiled.windows)
        return compiled

    for name, text in pb.let.items():
        if name in ("event", "customer", "first", "duration"):
            problems.add(("let", name), f"'{name}' is a built-in name; choose another name")
            continue
        compiled = expr(text, ("let", name))
        # A let that failed stays in scope as an unknown value, so only its own error is reported.
        scope.lets[name] = compiled or Compiled(lambda ctx: None, "any", Literal(0, None, "null"))

    # The condition: the customer filter and `when`, as one durable-rules pattern.
    condition_nodes: list[Node] = []
    if pb.customers is not None:
        c = pb.customers
        for fname, values in (("tier", c.tiers), ("segment", c.segments), ("region", c.regions)):
            if values:
                items = tuple(Literal(0, v, "string") for v in values)
                condition_nodes.append(Binary(0, "in", Path(0, ("customer", fname)), ListExpr(0, items)))
        if c.where is not None:
            checked = _checked_node(compiler, c.where, ("customers", "where"), problems)
            if checked is not None:
                condition_nodes.append(checked[0])
                windows.update(checked[1].windows)
    evidence_windows: frozenset[tuple[str, float]] = frozenset()
    if pb.when is not None:
        checked = _checked_node(compiler, pb.when, ("when",), problems)
        if checked is not None:
            condition_nodes.append(checked[0])
            evidence_windows = checked[1].windows
    condition_node: Node = condition_nodes[0] if condition_nodes else Literal(0, True, "bool")
    for node in condition_nodes[1:]:
        condition_node = Binary(0, "and", condition_node, node)
    condition = to_pattern(condition_node, compiler)

    tasks: list[CompiledTask] = []
    gestures: list[CompiledGesture] = []
    windows |= evidence_windows
    inhibitors: dict[str, float | None] = {}
    for i, inhibitor in enumerate(pb.inhibited_by):
        if inhibitor.playbook == pb.id:
            problems.add(("inhibited_by", i), f"a playbook cannot mute itself ('{pb.id}'): use cooldown")
        elif inhibitor.playbook in inhibitors:
            problems.add(("inhibited_by", i), f"'{inhibitor.playbook}' is named twice")
        inhibitors[inhibitor.playbook] = inhibitor.within
    for i, action in enumerate(pb.actions):
        if action.task is not None:
            tasks.append(_compile_task(action.task, i, ("actions", i, "task"), expr, template))
        elif action.gesture is not None:
            gestures.append(_compile_gesture(action.gesture, i, ("actions", i, "gesture"), expr, template))
    if problems.items:
        return None, problems.items
    compiled_pb = CompiledPlaybook(
        id=pb.id,
        version=pb.version,
        file=file,
        kind=kind,
        event_types=event_types,
        first_type=first_type,
        end_type=end_type,
        key=_key_field(key),
        within_s=within_s,
        cooldown_s=pb.cooldown,
        inhibited_by=tuple(inhibitors.items()),
        mode=pb.mode,
        holdout=(pb.holdout or 0.0) / 100,
        holdout_salt=pb.holdout_salt or pb.id,
        condition=condition,
        evidence_windows=evidence_windows,
        tasks=tuple(tasks),
        gestures=tuple(gestures),
        lets=dict(scope.lets),
        windows=frozenset(windows),
        data_types=frozenset(scope.data_types),
        source=pb,
        scope=scope,
    )
    return compiled_pb, []


def _checked_node(compiler: Compiler, text: str, loc: Loc, problems: _Problems) -> tuple[Node, Compiled] | None:
    """Parse and check a condition; None (and a problem recorded) when it is not a valid true/false expression."""
    try:
        node = parse(text)
        compiled = compiler.compile(node)
    except ExpressionError as exc:
        problems.add(loc, exc.message, exc.offset)
        return None
    if compiled.type not in ("bool", "any", "null"):
        problems.add(loc, f"a condition must be true or false, but this expression gives {compiled.type}", 0)
        return None
    return node, compiled


def _compile_task(t: TaskAction, index: int, loc: Loc, expr: Any, template: Any) -> CompiledTask:
    rules = []
    for j, case in enumerate(t.priority):
        when = expr(case.when, (*loc, "priority", j, "when"), ("bool",)) if case.when else None
        rules.append(PriorityRule(when, case.then))
    return CompiledTask(
        index=index,
        queue=t.queue,
        priorities=tuple(rules),
        due_in_s=t.due_in,
        title=template(t.title, (*loc, "title")),
        reason=template(t.reason, (*loc, "reason")),
        talking_points=tuple(template(p, (*loc, "talking_points", j)) for j, p in enumerate(t.talking_points)),
        when=expr(t.when, (*loc, "when"), ("bool",)) if t.when else None,
        escalate_to=t.escalate_to,
    )


def _compile_gesture(g: GestureAction, index: int, loc: Loc, expr: Any, template: Any) -> CompiledGesture:
    amount = expr(g.amount, (*loc, "amount"), ("number",))
    return CompiledGesture(
        index=index,
        type=g.type,
        amount=amount if amount is not None else Compiled(lambda ctx: 0, "number", Literal(0, 0, "number")),
        cap=g.cap,
        currency=g.currency,
        requires_approval=g.requires_approval,
        reason=template(g.reason, (*loc, "reason")),
        when=expr(g.when, (*loc, "when"), ("bool",)) if g.when else None,
    )
