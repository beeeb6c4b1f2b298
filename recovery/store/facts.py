"""What the customer-loss review and its metrics read (`recovery report`), kept by the engine as events go by: the
store's history keeps only what playbooks look back to and is pruned, and profiles keep only the latest.

- Lifecycle facts: each `customer.joined`, `renewed`, `referred` and `lost`, as the event says it (its value, reason,
  channel, segment, referred customer). The report resolves what the event leaves out (the value, tier, segment and
  region at that time) from the profile history: the same answer as resolving it when the event is recorded, without a
  read, and right for an event that arrives after a later profile.
- Profile history: each `customer.updated` (time, tier, segment, region, annual value).
- Weekly counts (additive): complaints per category, service calls per reason, by ISO week (from Monday 00:00 UTC).
  A SQL store adds them up in memory per transaction and writes one grouped statement at commit (`Accumulate`).
- Outage facts: each outage's start and resolution (by `outage_id`), paired by the report.

Every fact but the counts is keyed by its event (or outage) id and written insert-or-ignore; the counts rely on the
ledger, which drops a redelivered event before the engine records anything (for `ledger_retention_s` of event time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from recovery.store.desk import GESTURE_COLUMNS, GESTURE_FROM, TASK_COLUMNS, TASK_FROM, gesture_record, task_record
from recovery.store.fact_records import Fact, FactSet, LifecycleFact, Outage, ProfileFact, WeeklyCount
from recovery.store.records import GestureRecord, TaskRecord
from recovery.store.statements import INTEGER, REAL, TEXT, Accumulate, Cursor, Insert, Params, Query, Statement, Write
from recovery.times import parse_time

SQLITE_SCHEMA = """
    CREATE TABLE report_lifecycle (
        event_id TEXT PRIMARY KEY, kind TEXT NOT NULL, customer_id TEXT NOT NULL, ts REAL NOT NULL, value REAL,
        segment TEXT, reason TEXT, channel TEXT, referred_id TEXT
    ) WITHOUT ROWID;
    CREATE INDEX report_lifecycle_by_time ON report_lifecycle (ts);
    CREATE TABLE report_profiles (
        event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, ts REAL NOT NULL, tier TEXT NOT NULL, segment TEXT,
        region TEXT, value REAL
    ) WITHOUT ROWID;
    CREATE INDEX report_profiles_by_time ON report_profiles (ts);
    CREATE TABLE report_counts (
        metric TEXT NOT NULL, key TEXT NOT NULL, week REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (metric, key, week)
    ) WITHOUT ROWID;
    CREATE TABLE report_outages (
        outage_id TEXT NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL, region TEXT, event_id TEXT NOT NULL,
        PRIMARY KEY (outage_id, kind)
    ) WITHOUT ROWID;
    CREATE INDEX report_outages_by_time ON report_outages (ts);
"""
"""SQLite's migration 8: the report's facts."""

POSTGRES_SCHEMA = """
    CREATE TABLE report_lifecycle (
        event_id text COLLATE "C" PRIMARY KEY, kind text NOT NULL, customer_id text COLLATE "C" NOT NULL,
        ts double precision NOT NULL, value double precision, segment text, reason text, channel text,
        referred_id text
    );
    CREATE INDEX report_lifecycle_by_time ON report_lifecycle (ts);
    CREATE TABLE report_profiles (
        event_id text COLLATE "C" PRIMARY KEY, customer_id text COLLATE "C" NOT NULL, ts double precision NOT NULL,
        tier text NOT NULL, segment text, region text, value double precision
    );
    CREATE INDEX report_profiles_by_time ON report_profiles (ts);
    CREATE TABLE report_counts (
        metric text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, week double precision NOT NULL,
        n bigint NOT NULL, PRIMARY KEY (metric, key, week)
    );
    CREATE TABLE report_outages (
        outage_id text COLLATE "C" NOT NULL, kind text NOT NULL, ts double precision NOT NULL, region text,
        event_id text NOT NULL, PRIMARY KEY (outage_id, kind)
    );
    CREATE INDEX report_outages_by_time ON report_outages (ts);
"""
"""PostgreSQL's migration 7: the report's facts."""

PUT_LIFECYCLE = Insert(
    "put_fact",
    "report_lifecycle",
    (
        ("event_id", TEXT),
        ("kind", TEXT),
        ("customer_id", TEXT),
        ("ts", REAL),
        ("value", REAL),
        ("segment", TEXT),
        ("reason", TEXT),
        ("channel", TEXT),
        ("referred_id", TEXT),
    ),
    ignore=True,
)
PUT_PROFILE_FACT = Insert(
    "put_fact",
    "report_profiles",
    (
        ("event_id", TEXT),
        ("customer_id", TEXT),
        ("ts", REAL),
        ("tier", TEXT),
        ("segment", TEXT),
        ("region", TEXT),
        ("value", REAL),
    ),
    ignore=True,
)
PUT_OUTAGE = Insert(
    "put_fact",
    "report_outages",
    (("outage_id", TEXT), ("kind", TEXT), ("ts", REAL), ("region", TEXT), ("event_id", TEXT)),
    ignore=True,
)
ADD_COUNTS = Accumulate(
    "add_count",
    "report_counts",
    (("metric", TEXT), ("key", TEXT), ("week", REAL), ("n", INTEGER)),
    key=("metric", "key", "week"),
    added=("n",),
)
LIFECYCLE = Query(
    "report_facts",
    "SELECT event_id, kind, customer_id, ts, value, segment, reason, channel, referred_id FROM report_lifecycle "
    "WHERE ts < ? ORDER BY ts, event_id",
)
PROFILES = Query(
    "report_facts",
    "SELECT event_id, customer_id, ts, tier, segment, region, value FROM report_profiles WHERE ts < ? "
    "ORDER BY customer_id, ts, event_id",
)
COUNTS = Query(
    "report_facts",
    "SELECT metric, key, week, n FROM report_counts WHERE week >= ? AND week < ? ORDER BY metric, key, week",
)
OUTAGES = Query(
    "report_facts",
    "SELECT s.outage_id, coalesce(s.region, r.region), s.ts, r.ts FROM report_outages s LEFT JOIN report_outages r "
    "ON r.outage_id = s.outage_id AND r.kind = 'resolved' WHERE s.kind = 'started' AND s.ts >= ? AND s.ts < ? "
    "ORDER BY s.ts, s.outage_id",
)
TASKS_CREATED = Query(
    "tasks_created",
    f"SELECT {TASK_COLUMNS} {TASK_FROM} WHERE t.created_ts >= ? AND t.created_ts < ? ORDER BY t.created_ts, t.id",
)
GESTURES = Query("gestures_created", f"SELECT {GESTURE_COLUMNS} {GESTURE_FROM} ORDER BY e.seq")


def fact_params(fact: Fact) -> tuple[Write, tuple[Any, ...]]:
    """The insert of a fact and its parameters."""
    if isinstance(fact, LifecycleFact):
        f = fact
        params = (f.event_id, f.kind, f.customer_id, f.ts, f.value, f.segment, f.reason, f.channel, f.referred_id)
        return PUT_LIFECYCLE, params
    if isinstance(fact, ProfileFact):
        p = fact
        return PUT_PROFILE_FACT, (p.event_id, p.customer_id, p.ts, p.tier, p.segment, p.region, p.value)
    o = fact
    return PUT_OUTAGE, (o.outage_id, o.kind, o.ts, o.region, o.event_id)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def lifecycle_fact(row: Sequence[Any]) -> LifecycleFact:
    event_id, kind, customer_id, ts, value, segment, reason, channel, referred_id = row
    return LifecycleFact(event_id, kind, customer_id, float(ts), _float(value), segment, reason, channel, referred_id)


def profile_fact(row: Sequence[Any]) -> ProfileFact:
    event_id, customer_id, ts, tier, segment, region, value = row
    return ProfileFact(event_id, customer_id, float(ts), tier, segment, region, _float(value))


def created_within(records: Sequence[GestureRecord], since: float, until: float) -> list[GestureRecord]:
    """The gestures raised (`created_at`) in `[since, until)`."""
    return [g for g in records if since <= parse_time(g.gesture.created_at) < until]


class SqlFacts(ABC):
    """The report facts' methods of a SQL store, run by the store (`_run`, `_write`). Counts wait in `_counts` until
    `_queue_counts` (at commit, and before the counts are read); a rollback clears them."""

    _counts: dict[tuple[str, str, float], int]

    @abstractmethod
    def _run(self, statement: Statement, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def _write(self, write: Write, params: Params) -> None: ...

    def put_fact(self, fact: Fact) -> None:
        self._write(*fact_params(fact))

    def add_count(self, metric: str, key: str, week: float, n: int = 1) -> None:
        counts = self._counts
        k = (metric, key, week)
        counts[k] = counts.get(k, 0) + n

    def _queue_counts(self) -> None:
        """The counts of this transaction, one row per key, queued as one grouped statement. Every instance adds to
        the same rows: in key order, so that two commits lock them in one order and wait for each other, where each
        in its own order could deadlock (PostgreSQL then aborts one)."""
        counts, self._counts = self._counts, {}
        for (metric, key, week), n in sorted(counts.items()):
            self._write(ADD_COUNTS, (metric, key, week, n))

    def report_facts(self, until: float, weeks_since: float) -> FactSet:
        self._queue_counts()
        lifecycle = [lifecycle_fact(row) for row in self._run(LIFECYCLE, (until,)).fetchall()]
        profiles = [profile_fact(row) for row in self._run(PROFILES, (until,)).fetchall()]
        counts = [
            WeeklyCount(metric, key, float(week), int(n))
            for metric, key, week, n in self._run(COUNTS, (weeks_since, until)).fetchall()
        ]
        outages = [
            Outage(outage_id, region, float(started), _float(resolved))
            for outage_id, region, started, resolved in self._run(OUTAGES, (weeks_since, until)).fetchall()
        ]
        return FactSet(lifecycle, profiles, counts, outages)

    def tasks_created(self, since: float, until: float) -> list[TaskRecord]:
        return [task_record(row) for row in self._run(TASKS_CREATED, (since, until)).fetchall()]

    def gestures_created(self, since: float, until: float) -> list[GestureRecord]:
        # Gestures keep their time in the effect's body only: every one is read (they are few beside events).
        return created_within([gesture_record(row) for row in self._run(GESTURES).fetchall()], since, until)
