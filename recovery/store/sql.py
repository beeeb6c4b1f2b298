"""The SQL store: every role of `Store` in SQL, written once, over a `Dialect` (SQLite, PostgreSQL).

Writes go into an open transaction that `commit()` makes durable: the caller commits once per batch, after the
batch's effects are written, and only then acknowledges its input (Kafka offsets). Writes whose result nobody reads
are queued and sent grouped as their declarations say (see statements.py), before the next read (with it, in one
round trip, where the dialect can) and at `commit()`. A statement that fails raises `StoreError` naming the store
and what failed (queued writes by what they were); whatever the failure, the batch is lost: call `rollback()` and
process it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from recovery.effects import Effect, Task, effect_from_dict
from recovery.events import Occurrence
from recovery.exceptions import StoreError
from recovery.store import desk
from recovery.store import statements as q
from recovery.store.base import Watermark
from recovery.store.case_desk import SqlCaseDesk
from recovery.store.cases import PRELOAD_CASES, PRELOAD_SNOOZES, SqlCases, case_record
from recovery.store.codec import dumps
from recovery.store.desk import SqlTaskDesk
from recovery.store.dialect import Dialect
from recovery.store.facts import SqlFacts
from recovery.store.grouping import grouped_writes, write_names
from recovery.store.outbox import SqlOutbox
from recovery.store.records import CaseRecord, Deadline, Snooze
from recovery.store.statements import Cursor, Params, Queued, Statement, Write, render
from recovery.times import parse_time

MAX_QUEUED_WRITES = 5000
"""Queued writes are sent once this many wait, even if nothing is read."""


@dataclass
class Preloaded:
    """A preloaded customer, valid in the open transaction until a write about it: its history since `since`."""

    since: float
    profile: tuple[float, dict[str, Any]] | None
    cooldowns: dict[str, float]
    history: list[Occurrence]


KNOWN_EFFECT_IDS = 200_000
"""Effect ids a connection stored, remembered to answer `put_effect` without a query."""


class KnownIds:
    """Effect ids a connection stored, the last `bound` of them; those of the open transaction are forgotten again
    on a rollback."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest goes first
        self._uncommitted: list[str] = []

    def add(self, effect_id: str) -> bool:
        """False when the id is known; else remember it."""
        if effect_id in self._ids:
            return False
        self._ids[effect_id] = None
        self._uncommitted.append(effect_id)
        if len(self._ids) > self.bound:
            del self._ids[next(iter(self._ids))]
        return True

    def committed(self) -> None:
        self._uncommitted = []

    def rolled_back(self) -> None:
        for effect_id in self._uncommitted:
            self._ids.pop(effect_id, None)
        self._uncommitted = []


class SqlStore(SqlCases, SqlCaseDesk, SqlFacts, SqlOutbox, SqlTaskDesk):
    """A Store in a SQL database, through `dialect`. Not thread-safe: one per engine (or per API request).

    A batch's customers are read in three queries (`preload_customers`) and answered from memory until a write
    touches the customer or the transaction ends; a region's customers are read once per transaction until a
    profile is written (an outage is applied to each owned partition in turn)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._sql = dialect.sql
        self._p = dialect.placeholder
        self._queued: list[Queued] = []
        self._closed = False
        self._preloaded: dict[str, bool] = {}
        self._customers: dict[str, Preloaded] = {}
        # A preloaded customer's open case and snoozes, kept apart: only a write of a case or a snooze makes them
        # stale, not the history, profile or cooldown writes that come first in the customer's evaluation.
        self._open_cases: dict[str, tuple[CaseRecord | None, dict[str, Snooze]]] = {}
        self._regions: dict[str, tuple[str, ...]] = {}
        self._known = KnownIds(KNOWN_EFFECT_IDS)
        self._joining: list[str] = []
        """Tasks of a case stored in this transaction: at commit, those joining a case an agent holds are theirs."""
        self._counts: dict[tuple[str, str, float], int] = {}  # the report's counts of this transaction (facts.py)

    # ------------------------------------------------------------------------------------------- plumbing

    def _error(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(f"{self.dialect.name}: {what} failed: {self.dialect.describe(exc)}")

    def _run(self, statement: Statement, params: Params = ()) -> Cursor:
        """Run a statement whose result is read, after the queued writes."""
        return self._select(statement.name, self._sql[statement], params)

    def _select(self, what: str, sql: str, params: Params) -> Cursor:
        dialect = self.dialect
        if not self._queued:
            try:
                return dialect.execute(sql, params)
            except dialect.errors as exc:
                raise self._error(what, exc) from exc
        queued, self._queued = self._queued, []
        try:
            return dialect.send_then(grouped_writes(queued), sql, params)
        except dialect.errors as exc:
            raise self._error(f"{what} (sent after queued {write_names(queued)})", exc) from exc

    def _render(self, sql: str) -> str:
        """A statement made for the call (`?` placeholders, slots) in the dialect's SQL."""
        return render(sql, self._p, self.dialect.slots)

    def _write(self, write: Write, params: Params) -> None:
        """Queue a write whose result nobody reads."""
        self._queued.append((write, params))
        if len(self._queued) >= MAX_QUEUED_WRITES:
            self._send_queued()

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        try:
            self.dialect.send(grouped_writes(queued))
        except self.dialect.errors as exc:
            raise self._error(f"queued {write_names(queued)}", exc) from exc

    def _forget_reads(self) -> None:
        self._preloaded = {}
        self._customers = {}
        self._open_cases = {}
        self._regions = {}

    @property
    def schema_version(self) -> int:
        row = self._run(q.SCHEMA_VERSION).fetchone()
        return int(row[0]) if row else 0

    def commit(self) -> None:
        """Make everything written since the last commit durable."""
        self._forget_reads()
        joining, self._joining = self._joining, []
        if joining:
            self._join_claimed_cases(joining, time.time())
        self._queue_counts()
        if self._queued:
            self._send_queued()
        try:
            self.dialect.commit()
        except self.dialect.errors as exc:
            raise self._error("commit", exc) from exc
        self._known.committed()  # only now: a failed commit is rolled back, and these with it

    def rollback(self) -> None:
        """Forget everything written since the last commit (a dialect may connect again to do so)."""
        if self._closed:
            raise StoreError(f"{self.dialect.name}: rollback failed: the store is closed")
        self._queued.clear()
        self._joining = []
        self._counts = {}
        self._forget_reads()
        self._known.rolled_back()
        try:
            self.dialect.rollback()
        except self.dialect.errors as exc:
            raise self._error("rollback", exc) from exc

    def close(self) -> None:
        """Close the connection; what was not committed is forgotten (never committed half-done). Closing twice is
        fine."""
        if self._closed:
            return
        self._closed = True
        self._queued.clear()
        self.dialect.close()

    # ------------------------------------------------------------------------------------------- ledger

    def add_event(self, event_id: str, ts: float) -> bool:
        seen = self._preloaded.get(event_id)
        if seen is None:
            return self._run(q.ADD_EVENT, (event_id, ts)).rowcount == 1
        if seen:
            return False
        self._preloaded[event_id] = True
        self._write(q.ADD_EVENT, (event_id, ts))
        return True

    def prune_ledger(self, before: float) -> int:
        return self._run(q.PRUNE_LEDGER, (before,)).rowcount

    def preload_events(self, event_ids: list[str]) -> None:
        """Check a batch's ids in one query; `add_event` then queues its insert instead of running it. (Only the
        owner of a partition adds its events, so no one else inserts them meanwhile.)"""
        seen = {row[0] for row in self._run(q.PRELOAD_EVENTS, (self.dialect.ids(event_ids),)).fetchall()}
        self._preloaded = {event_id: event_id in seen for event_id in event_ids}

    # ------------------------------------------------------------------------------------------- customers

    def preload_customers(self, customer_ids: list[str], since: float) -> None:
        wanted = sorted({cid for cid in customer_ids if cid not in self._customers})
        if not wanted:
            return
        ids = self.dialect.ids(wanted)  # one query per table, not one per customer
        profiles = {cid: (ts, json.loads(data)) for cid, ts, data in self._run(q.PRELOAD_PROFILES, (ids,)).fetchall()}
        cooldowns: dict[str, dict[str, float]] = {cid: {} for cid in wanted}
        for cid, playbook, ts in self._run(q.PRELOAD_COOLDOWNS, (ids,)).fetchall():
            cooldowns[cid][playbook] = ts
        history: dict[str, list[Occurrence]] = {cid: [] for cid in wanted}
        for cid, eid, etype, ts, data in self._run(q.PRELOAD_HISTORY, (ids, since)).fetchall():
            history[cid].append(Occurrence(eid, etype, ts, cid, json.loads(data)))
        cases = {case.customer_id: case for case in map(case_record, self._run(PRELOAD_CASES, (ids,)).fetchall())}
        snoozes: dict[str, dict[str, Snooze]] = {cid: {} for cid in wanted}
        for cid, playbook, until, reason, by in self._run(PRELOAD_SNOOZES, (ids,)).fetchall():
            snoozes[cid][playbook] = Snooze(playbook, float(until), reason, by)
        for cid in wanted:
            self._customers[cid] = Preloaded(since, profiles.get(cid), cooldowns[cid], history[cid])
            self._open_cases[cid] = (cases.get(cid), snoozes[cid])

    def _ids(self, values: list[str] | list[int]) -> Any:
        return self.dialect.ids(values)

    def _cached_case(self, customer_id: str) -> tuple[bool, CaseRecord | None, dict[str, Snooze]]:
        cached = self._open_cases.get(customer_id)
        return (False, None, {}) if cached is None else (True, *cached)

    def _touched(self, customer_id: str) -> None:
        self._customers.pop(customer_id, None)
        self._open_cases.pop(customer_id, None)

    def append_history(self, occurrence: Occurrence) -> None:
        self._customers.pop(occurrence.customer_id, None)
        data = dumps(occurrence.data)
        self._write(q.APPEND_HISTORY, (occurrence.customer_id, occurrence.ts, occurrence.id, occurrence.type, data))

    def history(self, customer_id: str, since: float) -> list[Occurrence]:
        cached = self._customers.get(customer_id)
        if cached is not None and since >= cached.since:
            return [o for o in cached.history if o.ts >= since]
        rows = self._run(q.HISTORY, (customer_id, since)).fetchall()
        return [Occurrence(eid, etype, ts, customer_id, json.loads(data)) for eid, etype, ts, data in rows]

    def prune_history(self, before: float) -> int:
        self._write(q.PRUNE_SCOPE_APPLIED, (before,))
        self._write(q.PRUNE_SCOPE_LOG, (before,))
        return self._run(q.PRUNE_HISTORY, (before,)).rowcount

    def get_profile(self, customer_id: str) -> tuple[float, dict[str, Any]] | None:
        cached = self._customers.get(customer_id)
        if cached is not None:
            return cached.profile
        row = self._run(q.PROFILE, (customer_id,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def put_profile(self, customer_id: str, ts: float, profile: dict[str, Any]) -> None:
        self._customers.pop(customer_id, None)
        self._regions.clear()
        region = profile.get("region")
        self._write(q.PUT_PROFILE, (customer_id, ts, dumps(profile), None if region is None else str(region)))

    def customers_in_region(self, region: str) -> Iterable[str]:
        found = self._regions.get(region)
        if found is None:
            found = self._regions[region] = tuple(self._read_region(region))
        return found

    def _read_region(self, region: str) -> list[str]:
        return [row[0] for row in self._run(q.REGION, (region,)).fetchall()]

    def get_cooldowns(self, customer_id: str) -> dict[str, float]:
        cached = self._customers.get(customer_id)
        if cached is not None:
            return dict(cached.cooldowns)
        return {playbook: ts for playbook, ts in self._run(q.COOLDOWNS, (customer_id,)).fetchall()}

    def set_cooldown(self, customer_id: str, playbook: str, ts: float) -> None:
        self._customers.pop(customer_id, None)
        self._write(q.SET_COOLDOWN, (customer_id, playbook, ts))

    # ------------------------------------------------------------------------------------------- deadlines

    def add_deadline(self, deadline: Deadline) -> None:
        d = deadline
        self._write(q.ADD_DEADLINE, (d.id, d.due, d.playbook, d.customer_id, d.key, occurrence_to_json(d.first)))

    def remove_deadline(self, deadline_id: str) -> None:
        self._write(q.REMOVE_DEADLINE, (deadline_id,))

    def pending_deadlines(self) -> list[Deadline]:
        rows = self._run(q.PENDING_DEADLINES).fetchall()
        return [Deadline(i, due, pb, cid, key, occurrence_from_json(first)) for i, due, pb, cid, key, first in rows]

    # ------------------------------------------------------------------------------------------- scope log

    def scope_customers(self, scope_id: str) -> set[str]:
        return {row[0] for row in self._run(q.SCOPE_CUSTOMERS, (scope_id,)).fetchall()}

    def set_scope_customers(self, scope_id: str, customers: set[str]) -> None:
        self._write(q.CLEAR_SCOPE, (scope_id,))
        if customers:
            self._write(q.FILL_SCOPE, (scope_id, self.dialect.ids(sorted(customers))))

    def scope_log_add(self, ts: float, event: str) -> int:
        row = self._run(q.SCOPE_LOG_ADD, (ts, event)).fetchone()
        return int(row[0]) if row else 0

    def scope_log(self, since: float) -> list[tuple[int, float, str]]:
        rows = self._run(q.SCOPE_LOG, (since,)).fetchall()
        return [(int(seq), float(ts), str(event)) for seq, ts, event in rows]

    def scope_applied(self, stream: str) -> set[int]:
        return {int(row[0]) for row in self._run(q.SCOPE_APPLIED, (stream,)).fetchall()}

    def mark_scope_applied(self, stream: str, seq: int) -> None:
        self._write(q.MARK_SCOPE_APPLIED, (stream, seq))

    def set_watermark(self, stream: str, ts: float, ended_at: float = float("-inf")) -> None:
        self._write(q.SET_WATERMARK, (stream, ts, ended_at))

    def watermarks(self, prefix: str) -> dict[str, Watermark]:
        rows = self._run(q.WATERMARKS, (len(prefix), prefix)).fetchall()
        return {str(stream): Watermark(float(ts), float(ended_at)) for stream, ts, ended_at in rows}

    def claim_streams(self, streams: list[str]) -> dict[str, int]:
        return {stream: int(self._run(q.CLAIM_STREAM, (stream,)).fetchone()[0]) for stream in streams}

    def fenced(self, epochs: dict[str, int]) -> list[str]:
        rows = self._run(q.EPOCHS, (self.dialect.ids(sorted(epochs)),)).fetchall()
        now = {str(stream): int(epoch) for stream, epoch in rows}
        return sorted(stream for stream, epoch in epochs.items() if now.get(stream) != epoch)

    # ------------------------------------------------------------------------------------------- effects

    def put_effect(self, effect: Effect) -> bool:
        """New unless this connection stored its id (the last `KNOWN_EFFECT_IDS`): the insert is queued with the
        other writes, not a statement of its own (an insert run at once to read its row count was a fifth of a
        fan-out's evaluation on SQLite). An id stored before this connection started (only a replay of
        already-recorded causes could make it again, which the ledger prevents) is inserted as nothing
        (or-ignore), and at worst published once more with the same id and content."""
        if not self._known.add(effect.id):
            return False
        self._write(q.PUT_EFFECT, (effect.id, effect.kind, effect.customer_id, effect.to_json()))
        if isinstance(effect, Task):
            self._write(
                desk.INSERT_TASK, desk.task_params(effect, parse_time(effect.due_at), parse_time(effect.created_at))
            )
            if effect.case_id:
                self._joining.append(effect.id)
        else:
            self._write(desk.INSERT_GESTURE, desk.gesture_params(effect))
        return True

    def effects(self) -> list[Effect]:
        return [effect_from_dict(json.loads(body)) for (body,) in self._run(q.EFFECTS).fetchall()]


def occurrence_to_json(occ: Occurrence) -> str:
    """An occurrence as compact JSON, as a deadline's first event is kept."""
    return dumps({"id": occ.id, "type": occ.type, "ts": occ.ts, "customer_id": occ.customer_id, "data": occ.data})


def occurrence_from_json(text: str) -> Occurrence:
    raw = json.loads(text)
    return Occurrence(raw["id"], raw["type"], raw["ts"], raw["customer_id"], raw["data"])
