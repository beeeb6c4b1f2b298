"""The label values of recovery's metrics: small fixed sets, so that series stay bounded (event types outside the
standard ones are `other`, DLQ reasons one of a few)."""

from __future__ import annotations

from typing import Final

from recovery.events import STANDARD_TYPES

EVENT_RESULTS: Final = ("processed", "duplicate", "invalid", "forwarded")
"""`processed` and `duplicate` (already in the ledger) are evaluated events, `invalid` went to the DLQ,
`forwarded` was keyed to a partition this instance does not own and was sent on to its owner (who counts it)."""
OTHER: Final = "other"
DLQ_REASONS: Final = ("invalid_json", "invalid_event", "empty", "evaluation_failed", "future_event", "too_old")
TASK_OUTCOMES: Final = ("saved", "lost", "unreachable", "not-needed")
"""Outcomes a frontline agent closes a task with (issue 4); anything else is counted as `other`."""
GESTURE_STATUSES: Final = ("proposed", "approved", "issued", "rejected")
GRANTED_STATUSES: Final = frozenset({"approved", "issued"})
"""A gesture's amount counts as spent once it is in one of these statuses."""
RELOAD_RESULTS: Final = ("success", "failure")


def event_type_label(event_type: str | None) -> str:
    """The `type` label: a standard type as is, anything else (or unknown, for an invalid message) `other`."""
    return event_type if event_type is not None and event_type in STANDARD_TYPES else OTHER


def dlq_reason(reason: str) -> str:
    """The `reason` label of a DLQ message from the reason text the service writes in its `recovery-error` header.

    `empty message ...` -> empty, `invalid event: event: Invalid JSON ...` -> invalid_json, `invalid event: ...`
    -> invalid_event, `evaluation failed: ...` -> evaluation_failed, `future_event: ...` and `too_old: ...` as such.
    A label of the fixed set is returned as is.
    """
    if reason in DLQ_REASONS:
        return reason
    text = reason.lower()
    if text.startswith("empty"):
        return "empty"
    if text.startswith("evaluation failed"):
        return "evaluation_failed"
    if text.startswith(("future_event", "too_old")):
        return text.split(":", 1)[0]
    if "invalid json" in text:
        return "invalid_json"
    return "invalid_event"
