"""The embedded store: one SQLite file, for one instance (DESIGN.md principle 4).

Writes go into an open transaction that `commit()` makes durable: the caller commits once per batch, after
the batch's effects are written, and only then acknowledges its input (Kafka offsets).
Writes whose result nobody reads are queued and sent grouped by statement with `executemany` (one C loop instead
of a Python call per row) before the next read and at `commit()`; a queued write that fails raises there, naming
it, and the batch is rolled back as any failed batch.
Schema changes are versioned migrations, applied in order on open.
A long-lived store (`recovery serve`'s loop: `checkpoint_every_s`) copies its write-ahead log into the database
file from a thread of its own, with a connection of its own; SQLite releases the GIL meanwhile, so the loop's
commits no longer pay for that copy and its fsyncs (measured: 60% of the commits' time in the end-to-end bench).
The loop's own connection still checkpoints when the log reaches `WAL_BACKSTOP_PAGES`, should the thread lag.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from recovery.effects import Effect, GestureStatus, Task, effect_from_dict
from recovery.events import Occurrence
from recovery.exceptions import StoreError
from recovery.store import lifecycle as sql
from recovery.store.base import (
    CustomerReads,
    Preloaded,
    Rows,
    Statement,
    grouped_writes,
    occurrence_from_json,
    occurrence_to_json,
    statement_names,
)
from recovery.store.records import AuditEntry, Deadline, GestureRecord, OutboxItem, TaskQuery, TaskRecord
from recovery.times import parse_time

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE ledger (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE history (
        customer_id TEXT NOT NULL, ts REAL NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL
    );
    CREATE INDEX history_by_customer ON history (customer_id, ts);
    CREATE INDEX history_by_time ON history (ts);
    CREATE TABLE profiles (customer_id TEXT PRIMARY KEY, ts REAL NOT NULL, data TEXT NOT NULL, region TEXT);
    CREATE INDEX profiles_by_region ON profiles (region);
    CREATE TABLE cooldowns (
        customer_id TEXT NOT NULL, playbook TEXT NOT NULL, ts REAL NOT NULL, PRIMARY KEY (customer_id, playbook)
    ) WITHOUT ROWID;
    CREATE TABLE deadlines (
        id TEXT PRIMARY KEY, due REAL NOT NULL, playbook TEXT NOT NULL, customer_id TEXT NOT NULL,
        key TEXT NOT NULL, first TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE scopes (scope_id TEXT NOT NULL, customer_id TEXT NOT NULL, PRIMARY KEY (scope_id, customer_id))
        WITHOUT ROWID;
    CREATE TABLE effects (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        customer_id TEXT NOT NULL, body TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key TEXT, value BLOB NOT NULL,
        headers TEXT NOT NULL DEFAULT '[]'
    );
    """,
    """
    CREATE TABLE scope_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, event TEXT NOT NULL);
    CREATE INDEX scope_log_by_time ON scope_log (ts);
    CREATE TABLE scope_applied (stream TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID;
    CREATE TABLE watermarks (stream TEXT PRIMARY KEY, ts REAL NOT NULL) WITHOUT ROWID;
    """,
    """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, playbook TEXT NOT NULL, queue TEXT NOT NULL,
        priority TEXT NOT NULL, due_ts REAL NOT NULL, created_ts REAL NOT NULL, status TEXT NOT NULL,
        claimed_by TEXT, claimed_at REAL, completed_at REAL, outcome TEXT, reason_code TEXT, note TEXT,
        escalated_at REAL
    ) WITHOUT ROWID;
    CREATE INDEX tasks_by_status ON tasks (status, priority, due_ts);
    CREATE INDEX tasks_by_customer ON tasks (customer_id);
    CREATE TABLE gestures (
        id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, task_id TEXT, status TEXT NOT NULL, decided_by TEXT,
        decided_at REAL
    ) WITHOUT ROWID;
    CREATE INDEX gestures_by_customer ON gestures (customer_id);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        customer_id TEXT, task_id TEXT, gesture_id TEXT, details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_by_customer ON audit (customer_id, seq);
    CREATE INDEX audit_by_task ON audit (task_id, seq);
    INSERT INTO tasks (id, customer_id, playbook, queue, priority, due_ts, created_ts, status)
        SELECT id, customer_id, json_extract(body, '$.playbook'), json_extract(body, '$.queue'),
            json_extract(body, '$.priority'), (julianday(json_extract(body, '$.due_at')) - 2440587.5) * 86400.0,
            (julianday(json_extract(body, '$.created_at')) - 2440587.5) * 86400.0, json_extract(body, '$.status')
        FROM effects WHERE kind = 'task';
    INSERT INTO gestures (id, customer_id, task_id, status)
        SELECT id, customer_id, json_extract(body, '$.task_id'), json_extract(body, '$.status')
        FROM effects WHERE kind = 'gesture';
    """,
    """
    ALTER TABLE ledger ADD COLUMN ts REAL;
    UPDATE ledger SET ts = (julianday('now') - 2440587.5) * 86400.0;
    """,
)
"""Migration N (1-based) brings the schema from version N-1 to N. Append only; never edit a shipped one.
5: the ledger keeps each event's time, to be pruned (ids recorded before it count as of the migration's time)."""

MAX_QUEUED_WRITES = 5000
"""Queued writes are sent once this many wait, even if nothing is read."""
WAL_BACKSTOP_PAGES = 10_000
"""With a checkpoint thread, the loop's connection checkpoints by itself only past this many log pages (40 MB of
4 KB pages; SQLite's default, without the thread, is 1,000)."""

logger = logging.getLogger(__name__)


class Checkpointer:
    """Checkpoints a SQLite database in WAL mode every `every_s` seconds, from a daemon thread with a connection of
    its own, when `note_commit()` was called since the last one. PASSIVE: it never waits for, nor blocks, the
    writer or readers; what it cannot copy yet is copied next time. A failure is logged and tried again."""

    def __init__(self, path: str, every_s: float) -> None:
        self.path = path
        self.every_s = every_s
        self.checkpoints = 0
        self.failures = 0
        self._commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recovery-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def note_commit(self) -> None:
        self._commits += 1

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        seen = 0
        try:
            while not self._stop.wait(self.every_s):
                commits = self._commits
                if commits == seen:
                    continue
                try:
                    if db is None:
                        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    self.failures += 1
                    logger.warning(
                        "background checkpoint failed; trying again",
                        extra={"store": self.path, "error": f"{type(exc).__name__}: {exc}"},
                    )
                    continue
                seen = commits
                self.checkpoints += 1
        finally:
            if db is not None:
                db.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class SqliteStore(CustomerReads):
    """A Store in one SQLite file (or `:memory:`). Not thread-safe: one per engine.

    `checkpoint_every_s`: checkpoint the write-ahead log from a thread of its own this often (for a long-lived
    store with many commits, such as the service loop's), instead of in the commits that fill it."""

    def __init__(self, path: str | Path, *, checkpoint_every_s: float | None = None) -> None:
        self.path = str(path)
        self._queued: list[Statement] = []
        self._preloaded: dict[str, bool] = {}
        self._customers: dict[str, Preloaded] = {}
        self._regions: dict[str, tuple[str, ...]] = {}
        self.checkpointer: Checkpointer | None = None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            wal = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"  # not for :memory:
            self._db.execute("PRAGMA synchronous=NORMAL")
            if wal and checkpoint_every_s is not None:
                self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            self._migrate()
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store at {self.path!r}: {exc}") from exc
        if wal and checkpoint_every_s is not None:
            self.checkpointer = Checkpointer(self.path, checkpoint_every_s)

    # ------------------------------------------------------------------------------------------- plumbing

    def _migrate(self) -> None:
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the store at {self.path!r} has schema version {version}, newer than this recovery "
                f"({len(MIGRATIONS)}): upgrade recovery"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            db.execute("BEGIN")
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (number,))
            db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _run(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run a statement whose result is read, after the queued writes."""
        if self._queued:
            self._send_queued()
        return self._now(sql, params)

    def _now(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run a statement at once, ahead of the queued writes: only for tables no queued write touches."""
        try:
            return self._db.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: {exc} (in: {sql.split()[0]} ...)") from exc

    def _write(self, what: str, sql: str, params: tuple[Any, ...]) -> None:
        """Queue a statement whose result nobody reads."""
        self._queued.append((what, sql, params))
        if len(self._queued) >= MAX_QUEUED_WRITES:
            self._send_queued()

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        try:
            for statement, rows in grouped_writes(queued):
                if len(rows) == 1:
                    self._db.execute(statement, rows[0])
                else:
                    self._db.executemany(statement, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: queued {statement_names(queued)} failed: {exc}") from exc

    def commit(self) -> None:
        """Make everything written since the last commit durable."""
        self._preloaded = {}
        self._customers = {}
        self._regions = {}
        if self._queued:
            self._send_queued()
        try:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: commit failed: {exc}") from exc
        if self.checkpointer is not None:
            self.checkpointer.note_commit()

    def rollback(self) -> None:
        """Forget everything written since the last commit."""
        self._queued.clear()
        self._preloaded = {}
        self._customers = {}
        self._regions = {}
        try:
            self._db.execute("ROLLBACK")
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path!r}: rollback failed: {exc}") from exc

    def close(self) -> None:
        try:
            self.commit()
        finally:
            if self.checkpointer is not None:
                self.checkpointer.close()
            self._db.close()

    # ------------------------------------------------------------------------------------------- ledger

    def add_event(self, event_id: str, ts: float) -> bool:
        sql = "INSERT OR IGNORE INTO ledger VALUES (?, ?)"
        seen = self._preloaded.get(event_id)
        if seen is None:
            return self._run(sql, (event_id, ts)).rowcount == 1
        if seen:
            return False
        self._preloaded[event_id] = True
        self._write("add_event", sql, (event_id, ts))
        return True

    def prune_ledger(self, before: float) -> int:
        return self._run("DELETE FROM ledger WHERE ts < ?", (before,)).rowcount

    def preload_events(self, event_ids: list[str]) -> None:
        """Check a batch's ids in one query; `add_event` then queues its insert instead of running it."""
        sql = "SELECT event_id FROM ledger WHERE event_id IN (SELECT value FROM json_each(?))"
        seen = {row[0] for row in self._run(sql, (json.dumps(event_ids),)).fetchall()}
        self._preloaded = {event_id: event_id in seen for event_id in event_ids}

    def _fetch_customers(self, wanted: list[str], since: float) -> tuple[Rows, Rows, Rows]:
        # One query per table instead of one per customer, and no flush of the queued writes per customer.
        ids = json.dumps(wanted)
        return (
            self._run(
                "SELECT customer_id, ts, data FROM profiles WHERE customer_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall(),
            self._run(
                "SELECT customer_id, playbook, ts FROM cooldowns WHERE customer_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall(),
            self._run(
                "SELECT customer_id, event_id, type, ts, data FROM history "
                "WHERE customer_id IN (SELECT value FROM json_each(?)) AND ts >= ? ORDER BY customer_id, ts, rowid",
                (ids, since),
            ).fetchall(),
        )

    def append_history(self, occurrence: Occurrence) -> None:
        self._customers.pop(occurrence.customer_id, None)
        self._write(
            "append_history",
            "INSERT INTO history VALUES (?, ?, ?, ?, ?)",
            (occurrence.customer_id, occurrence.ts, occurrence.id, occurrence.type, json.dumps(occurrence.data)),
        )

    def _read_history(self, customer_id: str, since: float) -> list[Occurrence]:
        rows = self._run(
            "SELECT event_id, type, ts, data FROM history WHERE customer_id = ? AND ts >= ? ORDER BY ts, rowid",
            (customer_id, since),
        ).fetchall()
        return [Occurrence(eid, etype, ts, customer_id, json.loads(data)) for eid, etype, ts, data in rows]

    def prune_history(self, before: float) -> int:
        self._run("DELETE FROM scope_applied WHERE seq IN (SELECT seq FROM scope_log WHERE ts < ?)", (before,))
        self._run("DELETE FROM scope_log WHERE ts < ?", (before,))
        return self._run("DELETE FROM history WHERE ts < ?", (before,)).rowcount

    # ------------------------------------------------------------------------------------------- customers

    def _read_profile(self, customer_id: str) -> tuple[float, dict[str, Any]] | None:
        row = self._run("SELECT ts, data FROM profiles WHERE customer_id = ?", (customer_id,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def put_profile(self, customer_id: str, ts: float, profile: dict[str, Any]) -> None:
        self._customers.pop(customer_id, None)
        self._regions.clear()
        region = profile.get("region")
        self._write(
            "put_profile",
            "INSERT INTO profiles VALUES (?, ?, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET "
            "ts = excluded.ts, data = excluded.data, region = excluded.region",
            (customer_id, ts, json.dumps(profile), None if region is None else str(region)),
        )

    def _read_region(self, region: str) -> list[str]:
        rows = self._run("SELECT customer_id FROM profiles WHERE region = ? ORDER BY customer_id", (region,))
        return [r[0] for r in rows.fetchall()]

    def _read_cooldowns(self, customer_id: str) -> dict[str, float]:
        rows = self._run("SELECT playbook, ts FROM cooldowns WHERE customer_id = ?", (customer_id,)).fetchall()
        return {playbook: ts for playbook, ts in rows}

    def set_cooldown(self, customer_id: str, playbook: str, ts: float) -> None:
        self._customers.pop(customer_id, None)
        self._write(
            "set_cooldown",
            "INSERT INTO cooldowns VALUES (?, ?, ?) ON CONFLICT (customer_id, playbook) DO UPDATE SET ts = excluded.ts",
            (customer_id, playbook, ts),
        )

    # ------------------------------------------------------------------------------------------- deadlines

    def add_deadline(self, deadline: Deadline) -> None:
        self._write(
            "add_deadline",
            "INSERT OR IGNORE INTO deadlines VALUES (?, ?, ?, ?, ?, ?)",
            (
                deadline.id,
                deadline.due,
                deadline.playbook,
                deadline.customer_id,
                deadline.key,
                occurrence_to_json(deadline.first),
            ),
        )

    def remove_deadline(self, deadline_id: str) -> None:
        self._write("remove_deadline", "DELETE FROM deadlines WHERE id = ?", (deadline_id,))

    def pending_deadlines(self) -> list[Deadline]:
        rows = self._run("SELECT id, due, playbook, customer_id, key, first FROM deadlines ORDER BY due, id")
        return [
            Deadline(i, due, pb, cid, key, occurrence_from_json(first))
            for i, due, pb, cid, key, first in rows.fetchall()
        ]

    def scope_customers(self, scope_id: str) -> set[str]:
        rows = self._run("SELECT customer_id FROM scopes WHERE scope_id = ?", (scope_id,))
        return {r[0] for r in rows.fetchall()}

    def set_scope_customers(self, scope_id: str, customers: set[str]) -> None:
        self._write("set_scope_customers", "DELETE FROM scopes WHERE scope_id = ?", (scope_id,))
        if customers:  # one statement for all (an outage may reach thousands)
            sql = "INSERT INTO scopes SELECT ?, value FROM json_each(?)"
            self._write("set_scope_customers", sql, (scope_id, json.dumps(sorted(customers))))

    # ------------------------------------------------------------------------------------------- scope log

    def scope_log_add(self, ts: float, event: str) -> int:
        cursor = self._run("INSERT INTO scope_log (ts, event) VALUES (?, ?)", (ts, event))
        return int(cursor.lastrowid or 0)

    def scope_log(self, since: float) -> list[tuple[int, float, str]]:
        rows = self._run("SELECT seq, ts, event FROM scope_log WHERE ts >= ? ORDER BY ts, seq", (since,))
        return [(int(seq), float(ts), str(event)) for seq, ts, event in rows.fetchall()]

    def scope_applied(self, stream: str) -> set[int]:
        rows = self._run("SELECT seq FROM scope_applied WHERE stream = ?", (stream,))
        return {int(r[0]) for r in rows.fetchall()}

    def mark_scope_applied(self, stream: str, seq: int) -> None:
        self._write("mark_scope_applied", "INSERT OR IGNORE INTO scope_applied VALUES (?, ?)", (stream, seq))

    def set_watermark(self, stream: str, ts: float) -> None:
        self._write(
            "set_watermark",
            "INSERT INTO watermarks VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET ts = excluded.ts",
            (stream, ts),
        )

    def watermarks(self, prefix: str) -> dict[str, float]:
        rows = self._run("SELECT stream, ts FROM watermarks WHERE substr(stream, 1, ?) = ?", (len(prefix), prefix))
        return {str(stream): float(ts) for stream, ts in rows.fetchall()}

    # ------------------------------------------------------------------------------------------- effects

    def put_effect(self, effect: Effect) -> bool:
        # No queued write touches effects: its insert need not wait for the queue, and says at once whether the
        # effect is new. The task or gesture row is queued like the other writes (every read sends the queue first).
        cursor = self._now(
            "INSERT OR IGNORE INTO effects (id, kind, customer_id, body) VALUES (?, ?, ?, ?)",
            (effect.id, effect.kind, effect.customer_id, effect.to_json()),
        )
        if cursor.rowcount != 1:
            return False
        if isinstance(effect, Task):
            due_ts, created_ts = parse_time(effect.due_at), parse_time(effect.created_at)
            self._write("put_effect", sql.INSERT_TASK, sql.task_params(effect, due_ts, created_ts))
        else:
            self._write("put_effect", sql.INSERT_GESTURE, sql.gesture_params(effect))
        return True

    def effects(self) -> list[Effect]:
        rows = self._run("SELECT body FROM effects ORDER BY seq").fetchall()
        return [effect_from_dict(json.loads(body)) for (body,) in rows]

    # ------------------------------------------------------------------------------------------- task lifecycle

    def list_tasks(self, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        select, count, params = sql.list_tasks_sql(query)
        rows = self._run(select, [*params, query.limit, query.offset]).fetchall()
        total = int(self._run(count, params).fetchone()[0])
        return [sql.task_record(row) for row in rows], total

    def get_task(self, task_id: str) -> TaskRecord | None:
        row = self._run(sql.GET_TASK, (task_id,)).fetchone()
        return sql.task_record(row) if row else None

    def claim_task(self, task_id: str, agent: str, at: float) -> bool:
        return self._run(sql.CLAIM, (agent, at, task_id)).rowcount == 1

    def release_task(self, task_id: str, agent: str | None, at: float) -> bool:
        if agent is None:
            return self._run(sql.RELEASE, (task_id,)).rowcount == 1
        return self._run(sql.RELEASE + " AND claimed_by = ?", (task_id, agent)).rowcount == 1

    def complete_task(self, task_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str) -> bool:
        return self._run(sql.COMPLETE, (at, outcome, reason_code, note, task_id, agent)).rowcount == 1

    def overdue_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        return [sql.task_record(row) for row in self._run(sql.OVERDUE, (now, limit)).fetchall()]

    def escalate_task(self, task_id: str, priority: str, queue: str, at: float) -> bool:
        return self._run(sql.ESCALATE, (priority, queue, at, task_id)).rowcount == 1

    def task_counts(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        return sql.count_rows(self._run(sql.COUNTS, (now,)).fetchall())

    def list_gestures(self, status: str | None, customer_id: str | None, limit: int) -> list[GestureRecord]:
        select, params = sql.list_gestures_sql(status, customer_id)
        return [sql.gesture_record(row) for row in self._run(select, [*params, limit]).fetchall()]

    def get_gesture(self, gesture_id: str) -> GestureRecord | None:
        row = self._run(sql.GET_GESTURE, (gesture_id,)).fetchone()
        return sql.gesture_record(row) if row else None

    def decide_gesture(self, gesture_id: str, status: GestureStatus, actor: str, at: float) -> bool:
        return self._run(sql.DECIDE, (status, actor, at, gesture_id)).rowcount == 1

    def add_audit(
        self,
        at: float,
        actor: str,
        action: str,
        *,
        customer_id: str | None = None,
        task_id: str | None = None,
        gesture_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        params = (at, actor, action, customer_id, task_id, gesture_id, json.dumps(details or {}))
        self._write("add_audit", sql.INSERT_AUDIT, params)

    def audit(
        self, *, customer_id: str | None = None, task_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        select, params = sql.audit_sql(customer_id, task_id)
        return [sql.audit_entry(row) for row in self._run(select, [*params, limit]).fetchall()]

    # ------------------------------------------------------------------------------------------- outbox

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        encoded = json.dumps([[name, raw.decode("latin-1")] for name, raw in headers])
        sql = "INSERT INTO outbox (topic, key, value, headers) VALUES (?, ?, ?, ?)"
        self._write("outbox_add", sql, (topic, key, value, encoded))

    def outbox_take(self, limit: int) -> list[OutboxItem]:
        rows = self._run("SELECT seq, topic, key, value, headers FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        if rows:
            self._run("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
        return [
            OutboxItem(seq, topic, key, bytes(value), tuple((n, v.encode("latin-1")) for n, v in json.loads(headers)))
            for seq, topic, key, value, headers in rows
        ]

    def outbox_size(self) -> int:
        return int(self._run("SELECT count(*) FROM outbox").fetchone()[0])
