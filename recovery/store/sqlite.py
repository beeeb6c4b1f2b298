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
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from recovery.exceptions import StoreError
from recovery.store.checkpoint import Checkpointer
from recovery.store.dialect import Dialect, newer_schema
from recovery.store.facts import SQLITE_SCHEMA
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
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_until REAL;
    ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN not_before REAL NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN parked_at REAL;
    ALTER TABLE outbox ADD COLUMN error TEXT;
    CREATE INDEX outbox_waiting ON outbox (seq) WHERE parked_at IS NULL;
    """,
    """
    ALTER TABLE tasks ADD COLUMN case_id TEXT;
    ALTER TABLE tasks ADD COLUMN joined_claimed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN cancel_reason TEXT;
    CREATE INDEX tasks_by_case ON tasks (case_id);
    CREATE TABLE cases (
        case_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, opened_ts REAL NOT NULL, closed_ts REAL,
        closed_reason TEXT, open_tasks TEXT NOT NULL DEFAULT '{}'
    ) WITHOUT ROWID;
    CREATE INDEX cases_open_by_customer ON cases (customer_id) WHERE closed_ts IS NULL;
    CREATE TABLE snoozes (
        customer_id TEXT NOT NULL, playbook TEXT NOT NULL, until_ts REAL NOT NULL, reason TEXT NOT NULL,
        snoozed_by TEXT NOT NULL, PRIMARY KEY (customer_id, playbook)
    ) WITHOUT ROWID;
    CREATE TABLE muted (
        id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, playbook TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL,
        muted_by TEXT NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX muted_by_time ON muted (at);
    CREATE INDEX muted_by_customer ON muted (customer_id, at);
    """,
    SQLITE_SCHEMA,
    "CREATE TABLE owners (stream TEXT PRIMARY KEY, epoch INTEGER NOT NULL) WITHOUT ROWID",
    "ALTER TABLE watermarks ADD COLUMN ended_at REAL NOT NULL DEFAULT -9e999",  # -inf
)
"""Migration N (1-based) brings the schema from version N-1 to N. Append only; never edit a shipped one.
5: the ledger keeps each event's time, to be pruned (ids recorded before it count as of the migration's time).
6: the outbox's messages are claimed by a publisher, tried again after a backoff, or parked.
7: cases (a task's case, a case's open tasks), snoozes and muted effects.
8: the report's facts (lifecycle, profile history, weekly counts, outages; store/facts.py).
9: each partition's owner epoch, which fences the steps of an instance that lost it (ScopeLog.claim_streams).
10: a watermark says when its partition was read to its end (base.Watermark)."""


class GateTimeout(Exception):
    """A writer waited for its turn longer than the busy timeout."""


WAL_BACKSTOP_PAGES = 10_000
"""With a checkpoint thread, the loop's connection checkpoints by itself only past this many log pages (40 MB of
4 KB pages; SQLite's default, without the thread, is 1,000)."""

logger = logging.getLogger(__name__)


SLOTS: Final = {
    "in_ids": "IN (SELECT value FROM json_each(?))",
    "in_seqs": "IN (SELECT value FROM json_each(?))",
    "ids": "json_each(?)",
    "history_seq": "rowid",
    "skip_locked": "",
    "for_share": "",
    "profile_value": "(CASE WHEN json_type(pr.data, '$.annual_value') IN ('integer', 'real') "
    "THEN json_extract(pr.data, '$.annual_value') ELSE 0 END)",
    "profile_tier": "json_extract(pr.data, '$.tier')",
    "unindexed": "+",
}
"""How this dialect writes the statements' slots (see statements.SLOTS)."""


class WriteGate:
    """The writers of one SQLite file in this process, one at a time, first come first served. SQLite lets one
    writer in at a time, but its waiting is not fair: a writer that commits and begins again at once (the service
    loop in a backlog) would starve the others (the API's writes), which would give up after the busy timeout.
    Writers of other processes still wait through SQLite's own busy timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held_by: int | None = None
        self._waiting: deque[threading.Event] = deque()

    def acquire(self, timeout_s: float) -> bool:
        me = threading.get_ident()
        with self._lock:
            if self._held_by == me:
                raise RuntimeError("this thread writes to the SQLite store through two connections at once")
            if self._held_by is None and not self._waiting:
                self._held_by = me
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout_s):
            self._held_by = me
            return True
        with self._lock:
            if turn.is_set():  # handed over just now
                self._held_by = me
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._lock:
            self._held_by = None
            if self._waiting:
                self._held_by = -1  # handed over: nobody else comes in before the next in line
                self._waiting.popleft().set()


_GATES: dict[str, WriteGate] = {}
_GATES_LOCK = threading.Lock()


def write_gate(path: str) -> WriteGate:
    """The gate of the SQLite file at `path`, shared by every connection to it in this process."""
    key = path if path == ":memory:" else os.path.realpath(path)
    with _GATES_LOCK:
        return _GATES.setdefault(key, WriteGate())


class SqliteDialect(Dialect):
    """SQLite's side of a `SqlStore`: one connection in autocommit mode (`isolation_level=None`), in WAL mode, whose
    transactions the dialect opens itself, at the first statement and never before: `BEGIN IMMEDIATE` for a
    connection that writes (it waits for its turn at the file's `WriteGate`, then takes SQLite's write lock, so a
    read never has to become a write later, which fails when another writer committed meanwhile), `BEGIN` for one
    that only reads. A transaction ends at commit or rollback: nothing is held between them."""

    errors = (sqlite3.Error, GateTimeout)

    def __init__(
        self,
        path: str,
        checkpoint_every_s: float | None = None,
        *,
        writer: bool = True,
        busy_timeout_s: float = 30.0,
        cache_mb: int = 0,
    ) -> None:
        super().__init__("?", SLOTS)
        self.path = path
        self.name = f"SQLite store {path!r}"
        self.writer = writer
        self.busy_timeout_s = busy_timeout_s
        self.gate = write_gate(path)
        self.checkpointer: Checkpointer | None = None
        self._open = False
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
            wal = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"  # not for :memory:
            self.db.execute("PRAGMA synchronous=NORMAL")
            if cache_mb:
                self.db.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")  # negative: in KiB
            if wal and checkpoint_every_s is not None:
                self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store at {path!r}: {exc}") from exc
        if wal and checkpoint_every_s is not None:
            self.checkpointer = Checkpointer(path, checkpoint_every_s)

    def _migrate(self) -> None:
        db = self.db
        if self._version() == len(MIGRATIONS):  # most opens: read without taking the write lock
            return
        self._begin()
        try:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = self._version()
            if version > len(MIGRATIONS):
                raise newer_schema(self.path, version, len(MIGRATIONS))
            for number in range(version + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version VALUES (?)", (number,))
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def _version(self) -> int:
        try:
            row = self.db.execute(self.sql[SCHEMA_VERSION]).fetchone()
        except sqlite3.OperationalError:  # no schema_version table: a new file
            return 0
        return int(row[0]) if row else 0

    def _begin(self) -> None:
        if self._open:
            return
        if self.writer:
            if not self.gate.acquire(self.busy_timeout_s):
                raise GateTimeout(f"another writer held the store for more than {self.busy_timeout_s:g}s")
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.gate.release()
                raise
        else:
            self.db.execute("BEGIN")
        self._open = True

    def _end(self, statement: str) -> None:
        if not self._open:
            return
        try:
            self.db.execute(statement)
        finally:
            if not self.db.in_transaction:
                self._open = False
                if self.writer:
                    self.gate.release()

    def ids(self, values: Sequence[str] | Sequence[int]) -> Any:
        return json.dumps(values)

    def execute(self, sql: str, params: Params) -> sqlite3.Cursor:
        self._begin()
        return self.db.execute(sql, params)

    def send(self, groups: list[tuple[Write, list[Params]]]) -> None:
        self._begin()
        sql = self.sql
        for write, rows in groups:
            if len(rows) == 1:
                self.db.execute(sql[write], rows[0])
            else:
                self.db.executemany(sql[write], rows)

    def commit(self) -> None:
        self._end("COMMIT")
        if self.checkpointer is not None:
            self.checkpointer.note_commit()

    def rollback(self) -> None:
        self._end("ROLLBACK")

    def close(self) -> None:
        try:
            if self.checkpointer is not None:
                self.checkpointer.close()
            self.rollback()
        finally:
            if self._open and self.writer:  # a rollback that failed: the gate is not held by a closed connection
                self._open = False
                self.gate.release()
            self.db.close()


class SqliteStore(SqlStore):
    """A Store in one SQLite file (or `:memory:`). Not thread-safe: one per engine.

    `checkpoint_every_s`: checkpoint the write-ahead log from a thread of its own this often (for a long-lived
    store with many commits, such as the service loop's), instead of in the commits that fill it. `cache_mb`: the
    connection's page cache in MiB (0: SQLite's default, 2 MiB), for a store that writes batches of thousands of
    rows (the loop's: `sqlite_cache_mb`)."""

    dialect: SqliteDialect

    def __init__(
        self, path: str | Path, *, checkpoint_every_s: float | None = None, writer: bool = True, cache_mb: int = 0
    ) -> None:
        super().__init__(SqliteDialect(str(path), checkpoint_every_s, writer=writer, cache_mb=cache_mb))
        self.path = self.dialect.path
        self.checkpointer = self.dialect.checkpointer
