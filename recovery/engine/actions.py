"""A matched playbook's actions as effects: a Task per task action and a Gesture per gesture action, with ids
derived from their cause (DESIGN.md, principle 2: the same cause never gives a second effect)."""

from __future__ import annotations

import logging
import operator
import sys
from typing import Any

from recovery.effects import Effect, Gesture, Task, effect_id, task_id
from recovery.engine.cases import case_id_of
from recovery.events import Occurrence
from recovery.expressions.context import Context
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.times import format_time

logger = logging.getLogger(__name__)

_new_task = Task.__pydantic_validator__.validate_python
_new_gesture = Gesture.__pydantic_validator__.validate_python
"""`Task(**values)` and `Gesture(**values)`, validated, without pydantic's per-call Python layer (cheaper than
`model_construct`, which checks nothing)."""
_TIME_AND_ID = operator.attrgetter("ts", "id")
"""The order of evidence: by time, then id."""
_FLOAT_MAX = sys.float_info.max
_INT_MAX = int(_FLOAT_MAX)
"""The largest whole number a float holds: ints are compared with it as ints (compiled, an int compared with a
float is converted to one, which raises past it)."""


def _amount(value: Any) -> float | None:
    """A gesture's amount as a float, or None unless it is a finite non-negative number (never a bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if 0 <= value <= _INT_MAX else None
    if isinstance(value, float):
        return value if 0.0 <= value <= _FLOAT_MAX else None  # NaN fails both
    return None


def _shown(value: Any) -> str:
    """`value` for a log line (repr refuses a whole number of more than 4300 digits)."""
    if isinstance(value, int) and not -_INT_MAX <= value <= _INT_MAX:
        return f"a whole number of {value.bit_length()} bits"
    return repr(value)[:60]


def build_effects(
    pb: CompiledPlaybook, ctx: Context, cause: str, anchor: float, evidence: list[Occurrence], case_id: str = ""
) -> list[Effect]:
    """The effects of `pb`'s actions in `ctx` (those whose `when` holds), for a playbook that matched.

    `cause` makes the effect ids and due times count from `anchor`. The evidence is the cause's events (`evidence`)
    and those in the windows of the playbook's `when`, by time, then id. The tasks belong to case `case_id`, or,
    when it is "" (the customer has no open case), to the one the first task opens.
    """
    proof = list(evidence)
    if pb.evidence_order:
        seen = {o.id for o in evidence}
        for event_type, window_s in pb.evidence_order:
            for o in ctx.window(event_type, window_s):
                if o.id not in seen:
                    seen.add(o.id)
                    proof.append(o)
    if len(proof) > 1:
        proof.sort(key=_TIME_AND_ID)
    evidence_ids = [o.id for o in proof]
    created_at = format_time(ctx.at)
    cid = ctx.customer_id
    effects: list[Effect] = []
    first_task: str | None = None
    for task in pb.tasks:
        if task.when is not None and not task.when.fn(ctx):
            continue
        tid = task_id(pb.id, cid, cause, task.index)
        first_task = first_task or tid
        case_id = case_id or case_id_of(tid)
        effects.append(
            _new_task(
                {
                    "id": tid,
                    "playbook": pb.id,
                    "playbook_version": pb.version,
                    "customer_id": cid,
                    "queue": task.queue,
                    "priority": task.priority(ctx),
                    "title": task.title.render(ctx),
                    "reason": task.reason.render(ctx),
                    "evidence": evidence_ids,
                    "due_at": format_time(anchor + task.due_in_s),
                    "created_at": created_at,
                    "talking_points": [t for p in task.talking_points if (t := p.render(ctx)).strip()],
                    "case_id": case_id,
                }
            )
        )
    for gesture in pb.gestures:
        if gesture.when is not None and not gesture.when.fn(ctx):
            continue
        value = gesture.amount.fn(ctx)
        amount = _amount(value)
        if amount is None:
            logger.warning(
                "gesture amount is not a finite non-negative number; gesture skipped",
                extra={"playbook": pb.id, "customer_id": cid, "amount": _shown(value)},
            )
            continue
        if gesture.cap is not None:
            amount = min(amount, gesture.cap)
        effects.append(
            _new_gesture(
                {
                    "id": effect_id("gst", pb.id, cid, cause, f"gesture{gesture.index}"),
                    "playbook": pb.id,
                    "playbook_version": pb.version,
                    "customer_id": cid,
                    "type": gesture.type,
                    "amount": round(amount, 2),
                    "currency": gesture.currency,
                    "status": "proposed" if gesture.requires_approval else "issued",
                    "requires_approval": gesture.requires_approval,
                    "reason": gesture.reason.render(ctx),
                    "evidence": evidence_ids,
                    "created_at": created_at,
                    "task_id": first_task,
                }
            )
        )
    return effects
