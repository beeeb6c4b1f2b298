"""`recovery explain`: why a customer did or did not get a task or gesture from each playbook.

From a file of events (replayed first into a memory store that keeps its effects, up to an instant) or from a store
(its state of the customer: kept history, profile, cooldowns, deadlines, effects, muted records, snoozes, open case).
Per playbook: the last trigger, the let values and each part of the condition there, every blocker, the pending
deadlines and the effects raised (`playbook.py`); as text (`text.py`) or JSON (`model.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from recovery.engine.state import split_by_type
from recovery.explain.model import VERDICTS, Explanation
from recovery.explain.playbook import explain_playbook
from recovery.explain.text import render_text
from recovery.explain.view import CustomerView, ExplainError, read_customer, replay_customer
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import Store
from recovery.times import format_time


def explain(playbooks: Sequence[CompiledPlaybook], view: CustomerView) -> Explanation:
    """Explain every enabled playbook of `playbooks` for the customer of `view`."""
    by_type = split_by_type(view.occurrences)
    running = [pb for pb in playbooks if pb.source is None or pb.source.enabled]
    found = sorted((explain_playbook(pb, view, by_type) for pb in running), key=lambda p: p.order())
    case = view.case
    open_case = None
    if case is not None:
        open_case = {
            "id": case.case_id,
            "opened_at": format_time(case.opened_ts),
            "open_tasks": [{"task_id": t, "playbook": p} for t, p in sorted(case.open_tasks.items())],
        }
    return Explanation(
        customer_id=view.customer_id,
        at=view.at,
        source=view.source,
        complete_history=view.complete,
        profile=view.profile,
        open_case=open_case,
        playbooks=found,
        truncated=view.truncated,
    )


def explain_store(store: Store, playbooks: Sequence[CompiledPlaybook], customer_id: str, at: float) -> Explanation:
    """The customer as `store` holds them, as of `at`, with `playbooks` (those the service runs)."""
    return explain(playbooks, read_customer(store, customer_id, at, "store"))


def explain_events(
    events: str | Path, playbooks: Sequence[CompiledPlaybook], customer_id: str, at: float | None, err: TextIO
) -> Explanation:
    """Replay the file `events` through `playbooks` up to `at` (None: to its end), then explain the customer. Bad
    lines are reported on `err` and skipped, as `recovery replay` does."""
    store, occurrences, reached = replay_customer(events, list(playbooks), customer_id, at, err)
    if reached == float("-inf"):
        raise ExplainError(f"--events {events}: no valid event in the file; give --at to explain as of an instant")
    return explain(playbooks, read_customer(store, customer_id, reached, "events", occurrences))


__all__ = ["VERDICTS", "ExplainError", "Explanation", "explain", "explain_events", "explain_store", "render_text"]
