"""What `recovery explain` knows about one customer: read from a store, or from a file of events replayed first into a
memory store that keeps its effects (as `recovery replay` evaluates them), up to an instant."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from recovery.effects import Effect
from recovery.engine import Engine
from recovery.events import PROFILE_TYPE, Event, Occurrence
from recovery.exceptions import EventError, RecoveryError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import MemoryStore, Store
from recovery.store.records import CaseRecord, Deadline, GestureRecord, MutedRecord, Snooze, TaskQuery, TaskRecord
from recovery.times import parse_time

MAX_EFFECTS = 1000
"""Tasks, gestures and muted effects read per customer: the latest beyond it are left out (and said so)."""


class ExplainError(RecoveryError):
    """An events file that cannot be read."""


@dataclass
class CustomerView:
    """One customer as of `at` (epoch seconds). `occurrences` are the customer's events in time order: every one
    from a file (`complete`), or those the store keeps (the types playbooks look back to, and profiles)."""

    customer_id: str
    at: float
    source: str
    complete: bool
    occurrences: list[Occurrence]
    profile_versions: list[tuple[float, dict[str, Any]]]
    cooldowns: dict[str, float] = field(default_factory=dict)
    snoozes: dict[str, Snooze] = field(default_factory=dict)
    case: CaseRecord | None = None
    deadlines: list[Deadline] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    gestures: list[GestureRecord] = field(default_factory=list)
    muted: list[MutedRecord] = field(default_factory=list)
    truncated: bool = False

    def profile_at(self, ts: float) -> dict[str, Any]:
        """The profile as it was at `ts` (the latest version at or before it), `{}` when none is known."""
        found: dict[str, Any] = {}
        for version_ts, profile in self.profile_versions:
            if version_ts > ts:
                break
            found = profile
        return found

    @property
    def profile(self) -> dict[str, Any] | None:
        """The profile at `at`, None when the customer has none."""
        return self.profile_at(self.at) if self.profile_versions and self.profile_versions[0][0] <= self.at else None

    def effect_ids(self) -> set[str]:
        return {t.id for t in self.tasks} | {g.id for g in self.gestures}


def read_customer(
    store: Store, customer_id: str, at: float, source: str, occurrences: list[Occurrence] | None = None
) -> CustomerView:
    """The customer's state in `store` as of `at`: events and effects after `at` are left out. `occurrences`: the
    customer's every event when the caller has them (a replayed file), else the store's kept history is read."""
    complete = occurrences is not None
    if occurrences is None:
        occurrences = [o for o in store.history(customer_id, 0.0) if o.ts <= at]
    versions = {o.ts: o.data for o in occurrences if o.type == PROFILE_TYPE}
    stored = store.get_profile(customer_id)
    if stored is not None and stored[0] <= at:
        versions.setdefault(stored[0], stored[1])
    tasks, _ = store.list_tasks(TaskQuery(customer_id=customer_id, limit=MAX_EFFECTS + 1))
    gestures = store.list_gestures(None, customer_id, MAX_EFFECTS + 1)
    muted = store.muted(customer_id, 0.0, math.inf, MAX_EFFECTS + 1)
    truncated = max(len(tasks), len(gestures), len(muted)) > MAX_EFFECTS
    return CustomerView(
        customer_id=customer_id,
        at=at,
        source=source,
        complete=complete,
        occurrences=occurrences,
        profile_versions=sorted(versions.items(), key=lambda item: item[0]),
        cooldowns={pb: ts for pb, ts in store.get_cooldowns(customer_id).items() if ts <= at},
        snoozes=store.snoozes(customer_id),
        case=store.open_case(customer_id),
        deadlines=sorted(
            (d for d in store.pending_deadlines() if d.customer_id == customer_id),
            key=lambda d: (d.due, d.id),
        ),
        tasks=[t for t in tasks[:MAX_EFFECTS] if t.created_ts <= at],
        gestures=[g for g in gestures[:MAX_EFFECTS] if _created(g.gesture) <= at],
        muted=[m for m in muted[:MAX_EFFECTS] if m.at <= at],
        truncated=truncated,
    )


def _created(effect: Effect) -> float:
    return parse_time(effect.created_at)


def replay_customer(
    events: str | Path, playbooks: list[CompiledPlaybook], customer_id: str, at: float | None, err: TextIO
) -> tuple[MemoryStore, list[Occurrence], float]:
    """Replay the file `events` (JSON lines) through `playbooks` into a memory store that keeps its effects: every
    event up to `at` (all of them when None), then the clock moved on to `at`. Returns the store, the customer's
    occurrences in time order, and the instant reached (`at`, or the last event's time). A line that is not a valid
    event is reported on `err` with its number and skipped, as `recovery replay` does."""
    store = MemoryStore()
    engine = Engine(playbooks, store)
    seen: list[Occurrence] = []

    def reached(cid: str, event: Event) -> None:  # an event about many customers, this one among them
        if cid == customer_id:
            seen.append(Occurrence(event.id, event.type, event.occurred_at.timestamp(), cid, event.data))

    engine.on_fan_out = reached
    try:
        source = open(events, "rb")
    except OSError as exc:
        raise ExplainError(f"--events {events}: {exc.strerror or exc}") from None
    with source:
        _feed(engine, source, at, err, customer_id, seen)
    if at is not None:
        engine.advance(at)
    reached_at = at if at is not None else engine.clock
    store.commit()
    seen.sort(key=lambda o: o.ts)  # stable: the file's order within one instant
    return store, seen, reached_at


def _feed(
    engine: Engine, lines: Iterable[bytes], at: float | None, err: TextIO, customer_id: str, seen: list[Occurrence]
) -> None:
    """Every valid event up to `at` through `engine`; the customer's own (not duplicates) added to `seen`."""
    for number, line in enumerate(lines, start=1):
        try:
            event = Event.from_json(line)
        except EventError as exc:
            if line.strip():
                print(f"line {number}: invalid event: {exc}", file=err)
            continue
        if at is None or event.occurred_at.timestamp() <= at:
            duplicates = engine.stats.duplicates
            engine.process(event)
            if event.customer_id == customer_id and engine.stats.duplicates == duplicates:
                seen.append(Occurrence(event.id, event.type, event.occurred_at.timestamp(), customer_id, event.data))
