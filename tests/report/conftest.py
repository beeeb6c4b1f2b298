"""Small streams for the report's figures: events by day from a Monday, through the engine into a memory store."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from recovery.engine import Engine
from recovery.events import Event
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.report import build_report
from recovery.store import MemoryStore
from recovery.times import format_time, parse_time

W = parse_time("2026-11-02T00:00:00Z")
"""A Monday: day 0 of the streams, the start of ISO week 2026-W45."""
DAY = 86400.0
_ids = itertools.count(1)


def ev(kind: str, customer: str | None, day: float, data: dict[str, Any] | None = None, id: str | None = None) -> Event:
    raw: dict[str, Any] = {"id": id or f"e{next(_ids)}", "type": kind, "occurred_at": format_time(W + day * DAY)}
    if customer is not None:
        raw["customer_id"] = customer
    raw["data"] = data or {}
    return Event.from_dict(raw)


def profile(customer: str, day: float, **data: Any) -> Event:
    return ev("customer.updated", customer, day, data)


def run(events: Iterable[Event], playbooks: Sequence[CompiledPlaybook] = ()) -> MemoryStore:
    store = MemoryStore()
    engine = Engine(playbooks, store)
    for event in events:
        engine.process(event)
    return store


def report(store: MemoryStore, since_day: float, until_day: float, by: str = "week") -> dict[str, Any]:
    return build_report(store, W + since_day * DAY, W + until_day * DAY, by)  # type: ignore[arg-type]
