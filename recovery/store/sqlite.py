"""The embedded store: one SQLite file, for one instance (DESIGN.md principle 4). The SQL is `SqlStore`'s; this is
SQLite's dialect of it.

Queued writes are sent grouped by statement with `executemany` of the single-row form (one C loop instead of a
Python call per row); a list of ids goes as one JSON parameter (`json_each`). `put_effect`'s insert runs at once
(no queued write touches the effects table) and its row count says whether the effect is new.
Schema changes are versioned migrations, applied in order on open.
A long-lived store (`recovery serve`'s loop: `checkpoint_every_s`) copies its write-ahead log into the database
file from a thread of its own, with a connection of its own; SQLite releases the GIL meanwhile, so the loop's
commits do not pay for that copy and its fsyncs. The loop's own connection still checkpoints when the log reaches
`WAL_BACKSTOP_PAGES`, should the thread lag.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from recovery.exceptions import StoreError
from recovery.store.dialect import Dialect, newer_schema
from recovery.store.sql import SqlStore
from recovery.store.statements import SCHEMA_VERSION, Params, Write

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


SLOTS: Final = {
    "in_ids": "IN (SELECT value FROM json_each(?))",
    "in_seqs": "IN (SELECT value FROM json_each(?))",
    "ids": "json_each(?)",
    "history_seq": "rowid",
    "skip_locked": "",
}
"""How this dialect writes the statements' slots (see statements.SLOTS)."""


class SqliteDialect(Dialect):
    """SQLite's side of a `SqlStore`: one connection in autocommit mode (`isolation_level=None`) whose transaction
    the dialect opens (`BEGIN`) and ends itself, in WAL mode."""

    errors = sqlite3.Error

    def __init__(self, path: str, checkpoint_every_s: float | None = None) -> None:
        super().__init__("?", SLOTS)
        self.path = path
        self.name = f"SQLite store {path!r}"
        self.checkpointer: Checkpointer | None = None
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
            wal = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"  # not for :memory:
            self.db.execute("PRAGMA synchronous=NORMAL")
            if wal and checkpoint_every_s is not None:
                self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            self._migrate()
            self.db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store at {path!r}: {exc}") from exc
        if wal and checkpoint_every_s is not None:
            self.checkpointer = Checkpointer(path, checkpoint_every_s)

    def _migrate(self) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute(self.sql[SCHEMA_VERSION]).fetchone()
        version = row[0] if row else 0
        if version > len(MIGRATIONS):
            raise newer_schema(self.path, version, len(MIGRATIONS))
        for number in range(version + 1, len(MIGRATIONS) + 1):
            db.execute("BEGIN")
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (number,))
            db.execute("COMMIT")

    def ids(self, values: Sequence[str] | Sequence[int]) -> Any:
        return json.dumps(values)

    def execute(self, sql: str, params: Params) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def send(self, groups: list[tuple[Write, list[Params]]]) -> None:
        sql = self.sql
        for write, rows in groups:
            if len(rows) == 1:
                self.db.execute(sql[write], rows[0])
            else:
                self.db.executemany(sql[write], rows)

    def commit(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")
        if self.checkpointer is not None:
            self.checkpointer.note_commit()

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")
        self.db.execute("BEGIN")

    def close(self) -> None:
        try:
            if self.checkpointer is not None:
                self.checkpointer.close()
        finally:
            self.db.close()


class SqliteStore(SqlStore):
    """A Store in one SQLite file (or `:memory:`). Not thread-safe: one per engine.

    `checkpoint_every_s`: checkpoint the write-ahead log from a thread of its own this often (for a long-lived
    store with many commits, such as the service loop's), instead of in the commits that fill it."""

    dialect: SqliteDialect

    def __init__(self, path: str | Path, *, checkpoint_every_s: float | None = None) -> None:
        super().__init__(SqliteDialect(str(path), checkpoint_every_s))
        self.path = self.dialect.path
        self.checkpointer = self.dialect.checkpointer
