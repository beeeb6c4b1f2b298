"""An explanation as plain text, for an ops person: a header about the customer, then one block per playbook, those
that matter first (`model.VERDICTS`)."""

from __future__ import annotations

from typing import Any

from recovery.explain.model import EventRef, Explanation, PlaybookExplanation
from recovery.times import format_time


def render_text(explanation: Explanation) -> str:
    e = explanation
    source = "a replayed events file" if e.source == "events" else "the store (the events it keeps only)"
    lines = [f"Customer {e.customer_id} as of {format_time(e.at)}, from {source}", f"  profile: {_profile(e.profile)}"]
    if e.open_case is not None:
        tasks = ", ".join(f"{t['task_id']} ({t['playbook']})" for t in e.open_case["open_tasks"])
        lines.append(f"  open case: {e.open_case['id']} since {e.open_case['opened_at']}: {tasks}")
    if e.truncated:
        lines.append("  (the customer has more effects than were read: the latest are left out)")
    for pb in e.playbooks:
        lines.append("")
        lines += _block(pb)
    return "\n".join(lines) + "\n"


def _profile(profile: dict[str, Any] | None) -> str:
    if profile is None:
        return "none (read as a standard customer)"
    return ", ".join(f"{k} {v}" for k, v in profile.items()) or "empty"


def _event(ref: EventRef) -> str:
    return f"{ref.type} {ref.id} at {format_time(ref.at)}"


def _block(pb: PlaybookExplanation) -> list[str]:
    mode = "" if pb.mode == "live" else f", {pb.mode}"
    lines = [f"{pb.id} v{pb.version} ({pb.kind}{mode}): {pb.verdict.upper()}", f"  {pb.summary}"]
    t = pb.trigger
    if t is not None:
        if t.first is not None:
            lines.append(f"  trigger: {_event(t.first)}, then {_event(t.event)}")
        else:
            lines.append(f"  trigger: {_event(t.event)}")
        if t.deadline is not None:
            lines.append(f"  deadline: {format_time(t.deadline)} ({t.state})")
    if pb.lets:
        lines.append("  let: " + ", ".join(f"{v.name} = {v.text}" for v in pb.lets))
    if pb.condition is not None:
        c = pb.condition
        joined = {"and": "all must hold", "or": "one must hold", None: ""}[c.op]
        lines.append(f"  condition: {'held' if c.holds else 'failed'}" + (f" ({joined} in `when`)" if joined else ""))
        lines += [f"    {'held  ' if p.holds else 'FAILED'}  {p.section}: {p.text}" for p in c.parts]
        if not c.parts:
            lines.append("    (no condition: every trigger matches)")
    if pb.blockers:
        lines.append("  blockers:")
        lines += [f"    - {b.detail}" for b in pb.blockers]
    if pb.deadlines:
        lines.append("  pending deadlines:")
        lines += [f"    - {format_time(d.due)} for {_event(d.first)}" + (f" (key {d.key})" if d.key else "")
                  for d in pb.deadlines]  # fmt: skip
    if pb.effects:
        lines.append("  effects:")
        lines += [f"    - {e.kind} {e.id} {e.detail}, created {format_time(e.created_at)}, {e.status}"
                  + (" (the last trigger)" if e.at_trigger else "") for e in pb.effects]  # fmt: skip
    if pb.muted:
        lines.append("  muted:")
        lines += [f"    - {m.kind} {m.id} at {format_time(m.at)}, muted by {m.muted_by} ({m.reason})" for m in pb.muted]
    lines += [f"  note: {n}" for n in pb.notes]
    return lines
