"""The shared store: one PostgreSQL database that several recovery instances use at once (DESIGN.md principle 4).
The SQL is `SqlStore`'s; this is PostgreSQL's dialect of it.

Schema changes are versioned migrations, applied in order on open under an advisory lock, so that instances
starting together do not race. Writes other instances may make too are idempotent (`ON CONFLICT DO NOTHING`), and
`outbox_take` skips rows another instance has locked, so no two instances ever publish the same message.

Round trips are what costs: statements run often are prepared by psycopg on their fifth use (its
`prepare_threshold`), queued writes are sent in one pipeline with the next statement whose result is read, or at
commit, and each table's grouped rows go in one statement, as binary arrays (see `Bulk`). `put_effect` answers from
the effect ids this connection stored, and queues its insert."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import psycopg
from psycopg.rows import TupleRow

from recovery.exceptions import StoreError
from recovery.store.dialect import Dialect, newer_schema
from recovery.store.facts import POSTGRES_SCHEMA
from recovery.store.grouping import summed_rows
from recovery.store.sql import SqlStore
from recovery.store.statements import (
    BLOB,
    INTEGER,
    REAL,
    SCHEMA_VERSION,
    TEXT,
    Accumulate,
    KeyedRemove,
    Ordered,
    Params,
    Query,
    Upsert,
    Write,
)

logger = logging.getLogger(__name__)

# JSON is kept as text, not jsonb: jsonb reorders keys, and a customer's state rebuilt from the store must be the
# one the engine had (DESIGN.md principle 3). Text keys are COLLATE "C" so that ORDER BY sorts them as Python and
# SQLite do, whatever the database's locale.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE ledger (event_id text COLLATE "C" PRIMARY KEY);
    CREATE TABLE history (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id text COLLATE "C" NOT NULL,
        ts double precision NOT NULL, event_id text NOT NULL, type text NOT NULL, data text NOT NULL
    );
    CREATE INDEX history_by_customer ON history (customer_id, ts, seq);
    CREATE INDEX history_by_time ON history (ts);
    CREATE TABLE profiles (
        customer_id text COLLATE "C" PRIMARY KEY, ts double precision NOT NULL, data text NOT NULL,
        region text COLLATE "C"
    );
    CREATE INDEX profiles_by_region ON profiles (region, customer_id);
    CREATE TABLE cooldowns (
        customer_id text COLLATE "C" NOT NULL, playbook text COLLATE "C" NOT NULL, ts double precision NOT NULL,
        PRIMARY KEY (customer_id, playbook)
    );
    CREATE TABLE deadlines (
        id text COLLATE "C" PRIMARY KEY, due double precision NOT NULL, playbook text NOT NULL,
        customer_id text NOT NULL, key text NOT NULL, first text NOT NULL
    );
    CREATE INDEX deadlines_by_due ON deadlines (due, id);
    CREATE TABLE scopes (
        scope_id text COLLATE "C" NOT NULL, customer_id text COLLATE "C" NOT NULL,
        PRIMARY KEY (scope_id, customer_id)
    );
    CREATE TABLE effects (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE,
        kind text NOT NULL, customer_id text NOT NULL, body text NOT NULL
    );
    CREATE TABLE outbox (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic text NOT NULL, key text, value bytea NOT NULL,
        headers text NOT NULL DEFAULT '[]'
    );
    """,
    """
    CREATE TABLE scope_log (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts double precision NOT NULL, event text NOT NULL
    );
    CREATE INDEX scope_log_by_time ON scope_log (ts);
    CREATE TABLE scope_applied (stream text COLLATE "C" NOT NULL, seq bigint NOT NULL, PRIMARY KEY (stream, seq));
    CREATE TABLE watermarks (stream text COLLATE "C" PRIMARY KEY, ts double precision NOT NULL);
    """,
    """
    CREATE TABLE tasks (
        id text COLLATE "C" PRIMARY KEY, customer_id text COLLATE "C" NOT NULL, playbook text NOT NULL,
        queue text COLLATE "C" NOT NULL, priority text COLLATE "C" NOT NULL, due_ts double precision NOT NULL,
        created_ts double precision NOT NULL, status text NOT NULL, claimed_by text, claimed_at double precision,
        completed_at double precision, outcome text, reason_code text, note text, escalated_at double precision
    );
    CREATE INDEX tasks_by_status ON tasks (status, priority, due_ts);
    CREATE INDEX tasks_by_customer ON tasks (customer_id);
    CREATE TABLE gestures (
        id text COLLATE "C" PRIMARY KEY, customer_id text COLLATE "C" NOT NULL, task_id text,
        status text NOT NULL, decided_by text, decided_at double precision
    );
    CREATE INDEX gestures_by_customer ON gestures (customer_id);
    CREATE TABLE audit (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at double precision NOT NULL, actor text NOT NULL,
        action text NOT NULL, customer_id text COLLATE "C", task_id text COLLATE "C", gesture_id text,
        details text NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_by_customer ON audit (customer_id, seq);
    CREATE INDEX audit_by_task ON audit (task_id, seq);
    INSERT INTO tasks (id, customer_id, playbook, queue, priority, due_ts, created_ts, status)
        SELECT id, customer_id, body::json->>'playbook', body::json->>'queue', body::json->>'priority',
            extract(epoch FROM (body::json->>'due_at')::timestamptz),
            extract(epoch FROM (body::json->>'created_at')::timestamptz), body::json->>'status'
        FROM effects WHERE kind = 'task';
    INSERT INTO gestures (id, customer_id, task_id, status)
        SELECT id, customer_id, body::json->>'task_id', body::json->>'status' FROM effects WHERE kind = 'gesture';
    """,
    """
    ALTER TABLE ledger ADD COLUMN ts double precision;
    UPDATE ledger SET ts = extract(epoch FROM now());
    """,
    """
    ALTER TABLE outbox ADD COLUMN claimed_by text;
    ALTER TABLE outbox ADD COLUMN claimed_until double precision;
    ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN not_before double precision NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN parked_at double precision;
    ALTER TABLE outbox ADD COLUMN error text;
    CREATE INDEX outbox_waiting ON outbox (seq) WHERE parked_at IS NULL;
    """,
    """
    ALTER TABLE tasks ADD COLUMN case_id text COLLATE "C";
    ALTER TABLE tasks ADD COLUMN joined_claimed integer NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN cancel_reason text;
    CREATE INDEX tasks_by_case ON tasks (case_id);
    CREATE TABLE cases (
        case_id text COLLATE "C" PRIMARY KEY, customer_id text COLLATE "C" NOT NULL,
        opened_ts double precision NOT NULL, closed_ts double precision, closed_reason text,
        open_tasks text NOT NULL DEFAULT '{}'
    );
    CREATE INDEX cases_open_by_customer ON cases (customer_id) WHERE closed_ts IS NULL;
    CREATE TABLE snoozes (
        customer_id text COLLATE "C" NOT NULL, playbook text COLLATE "C" NOT NULL, until_ts double precision NOT NULL,
        reason text NOT NULL, snoozed_by text NOT NULL, PRIMARY KEY (customer_id, playbook)
    );
    CREATE TABLE muted (
        id text COLLATE "C" PRIMARY KEY, customer_id text COLLATE "C" NOT NULL, playbook text NOT NULL,
        kind text NOT NULL, at double precision NOT NULL, muted_by text NOT NULL, reason text NOT NULL,
        body text NOT NULL
    );
    CREATE INDEX muted_by_time ON muted (at);
    CREATE INDEX muted_by_customer ON muted (customer_id, at);
    """,
    POSTGRES_SCHEMA,
    'CREATE TABLE owners (stream text COLLATE "C" PRIMARY KEY, epoch bigint NOT NULL)',
    "ALTER TABLE watermarks ADD COLUMN ended_at double precision NOT NULL DEFAULT '-Infinity'",
)
"""Migration N (1-based) brings the schema from version N-1 to N. Append only; never edit a shipped one.
5: the outbox's messages are claimed by a publisher, tried again after a backoff, or parked.
6: cases (a task's case, a case's open tasks), snoozes and muted effects.
7: the report's facts (lifecycle, profile history, weekly counts, outages; store/facts.py).
8: each partition's owner epoch, which fences the steps of an instance that lost it (ScopeLog.claim_streams).
9: a watermark says when its partition was read to its end (base.Watermark)."""

MIGRATION_LOCK = int.from_bytes(b"recovery", "big")
"""The advisory lock (per database) held while the schema is checked and migrated."""

ARRAY_TYPES = {TEXT: "text", REAL: "double precision", INTEGER: "bigint", BLOB: "bytea"}
"""The element type of a binary array of a declared column type."""


def redact_url(url: str) -> str:
    """`url` without its password (after the user name, or a `password=` parameter), for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed PostgreSQL URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}@{hostport}" if at else parts.netloc
    query = "&".join(p for p in parts.query.split("&") if p.partition("=")[0].lower() != "password")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _passwords(url: str) -> list[str]:
    """Every spelling of the passwords in `url`, to scrub from a driver's message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.netloc.rpartition("@")[0].partition(":")[2]]
    found += [value for name, value in parse_qsl(parts.query) if name.lower() == "password"]
    return [spelling for raw in found if raw for spelling in {raw, unquote(raw)}]


@dataclass(frozen=True)
class Bulk:
    """One statement for many rows of a grouped write: the rows go as one array per column, unnested in order
    (`WITH ORDINALITY ... ORDER BY`, so identity columns follow the queued order), or as `column = ANY(array)` for a
    keyed delete (the rows' order does not matter to it).

    The statement's text is the same whatever the number of rows: psycopg parses it once and prepares it, where a
    multi-row `VALUES` list would be parsed again for every batch. For an upsert only the last row of each conflict
    key is sent, as the one-by-one upserts would have left it (DO UPDATE may not touch one row twice in one
    statement).
    """

    sql: str
    width: int
    key: tuple[int, ...] | None = None
    """Upserts: the positions of the conflict columns in a row."""
    floats: tuple[int, ...] = ()
    """The positions of the double precision columns: an int there is sent as a float (a binary array has one
    type)."""
    added: tuple[int, ...] = ()
    """Accumulates: the positions of the added columns; the rows of one key are summed into one."""

    def params(self, rows: list[Params]) -> list[list[Any]]:
        for row in rows:
            if len(row) != self.width:
                raise psycopg.ProgrammingError(
                    f"{len(row)} parameters for {self.width} placeholders in: {self.sql[:60]}"
                )
        if self.key is not None and self.added:
            rows = summed_rows(rows, self.key, self.added)
        elif self.key is not None:
            key = self.key
            rows = list({tuple(row[i] for i in key): row for row in rows}.values())
        columns = [list(column) for column in zip(*rows, strict=True)]
        for i in self.floats:
            try:
                columns[i] = list(map(float, columns[i]))
            except TypeError:  # a NULL
                columns[i] = [None if v is None else float(v) for v in columns[i]]
        return columns


def bulk_form(write: Write) -> Bulk | None:
    """The `Bulk` form of a grouped or keyed write; None for an ordered one (sent one by one)."""
    if isinstance(write, Ordered):  # and Trailing
        return None
    if isinstance(write, KeyedRemove):
        column, kind = write.add.columns[0]
        return Bulk(f'DELETE FROM {write.add.table} WHERE "{column}" = ANY(%b::{ARRAY_TYPES[kind]}[])', 1)  # noqa: S608
    quoted = ", ".join(f'"{name}"' for name, _ in write.columns)
    # Binary arrays (%b): psycopg's text arrays would escape every element in Python, for far more CPU.
    arrays = ", ".join(f"%b::{ARRAY_TYPES[kind]}[]" for _, kind in write.columns)
    # Names and types from the declarations, never from data.
    sql = (
        f"INSERT INTO {write.table} ({quoted}) SELECT {quoted} FROM unnest({arrays}) WITH ORDINALITY "  # noqa: S608
        f"AS bulk({quoted}, bulk_row) ORDER BY bulk_row{write.conflict()}"
    )
    key = write.key_positions() if isinstance(write, Upsert | Accumulate) else None
    floats = tuple(i for i, (_, kind) in enumerate(write.columns) if kind == REAL)
    added = write.added_positions() if isinstance(write, Accumulate) else ()
    return Bulk(sql, len(write.columns), key, floats, added)


SLOTS: Final = {
    "in_ids": "= ANY(%b::text[])",
    "in_seqs": "= ANY(%b::bigint[])",
    "ids": "unnest(%b::text[]) AS ids(value)",
    "history_seq": "seq",
    "skip_locked": " FOR UPDATE SKIP LOCKED",
    "for_share": " FOR SHARE",
    "profile_value": "(CASE WHEN json_typeof(pr.data::json -> 'annual_value') = 'number' "
    "THEN (pr.data::json ->> 'annual_value')::double precision ELSE 0 END)",
    "profile_tier": "(pr.data::json ->> 'tier')",
    "unindexed": "",
}
"""How this dialect writes the statements' slots (see statements.SLOTS)."""


class PostgresDialect(Dialect):
    """PostgreSQL's side of a `SqlStore`, by URL: one psycopg connection (not in autocommit mode), connected again
    by a rollback after it was lost. Messages name the URL without its password, and scrub it from the driver's."""

    errors = psycopg.Error

    def __init__(self, url: str, connect_timeout_s: int = 10) -> None:
        super().__init__("%s", SLOTS)
        self.bulk = {write: bulk_form(write) for write in self.sql if not isinstance(write, Query)}
        self.url = redact_url(url)
        self.name = f"PostgreSQL store {self.url!r}"
        self._dsn = url
        self._passwords = _passwords(url)
        self._options: dict[str, Any] = {"autocommit": False}
        try:
            given = {name for name, _ in parse_qsl(urlsplit(url).query)}
        except ValueError:
            given = set()
        if "connect_timeout" not in given:
            self._options["connect_timeout"] = connect_timeout_s
        if "application_name" not in given:
            self._options["application_name"] = "recovery"
        self.conn = self._connect()
        try:
            self._migrate()
        except psycopg.Error as exc:
            self.conn.close()
            raise StoreError(f"cannot migrate the PostgreSQL store at {self.url!r}: {self.describe(exc)}") from exc
        except BaseException:
            self.conn.close()
            raise

    def describe(self, exc: BaseException) -> str:
        """The driver's message on one line, without the password (libpq's never shows it; be sure)."""
        text = " ".join(str(exc).split())
        for password in self._passwords:
            text = text.replace(password, "***")
        return text

    def _connect(self) -> psycopg.Connection[TupleRow]:
        try:
            return psycopg.connect(self._dsn, **self._options)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store at {self.url!r}: {self.describe(exc)}") from exc

    def _migrate(self) -> None:
        # Every pending migration in one transaction (PostgreSQL's DDL is transactional): all or none. The lock
        # is released at commit; an instance waiting for it then finds the schema up to date.
        conn = self.conn
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = conn.execute(self.sql[SCHEMA_VERSION]).fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise newer_schema(self.url, version, len(MIGRATIONS))
        for number in range(version + 1, len(MIGRATIONS) + 1):
            conn.execute(MIGRATIONS[number - 1])
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (%s)", (number,))
            logger.info("migrated store", extra={"store": self.url, "schema_version": number})
        conn.commit()

    def ids(self, values: Sequence[str] | Sequence[int]) -> Any:
        return values

    def execute(self, sql: str, params: Params) -> psycopg.Cursor[TupleRow]:
        return self.conn.execute(sql, params)

    def send(self, groups: list[tuple[Write, list[Params]]]) -> None:
        with self.conn.pipeline():
            self._send(groups)

    def send_then(self, groups: list[tuple[Write, list[Params]]], sql: str, params: Params) -> psycopg.Cursor[TupleRow]:
        """In one round trip: the queued writes, then the statement."""
        with self.conn.pipeline():
            self._send(groups)
            cursor = self.conn.execute(sql, params)
        return cursor

    def _send(self, groups: list[tuple[Write, list[Params]]]) -> None:
        for write, rows in groups:
            bulk = self.bulk[write]
            if len(rows) == 1 or bulk is None:
                for row in rows:
                    self.conn.execute(self.sql[write], row)
            else:
                self.conn.execute(bulk.sql, bulk.params(rows))

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        """After a lost connection, connect again (raising `StoreError` while the server stays away): a new session
        has nothing uncommitted, which is what a rollback promises."""
        try:
            self.conn.rollback()
        except psycopg.Error:
            if not self.conn.broken:
                raise
        if self.conn.broken:
            logger.warning("reconnecting to the store after a lost connection", extra={"store": self.url})
            self.conn.close()
            self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()


class PostgresStore(SqlStore):
    """A Store in a PostgreSQL database, by URL (`postgresql://user:password@host:port/db`). One connection:
    not thread-safe, one per engine; other instances open their own.

    A statement that fails raises `StoreError` naming the store (its URL without the password) and the operation;
    a queued write fails in the next call that reads, or in `commit()`, and is named there. Whatever the failure,
    the batch is lost: call `rollback()` and process it again. After a lost connection, `rollback()` connects
    again (raising `StoreError` while the server stays away), so the same store can retry.
    `connect_timeout_s` (10) applies unless the URL sets `connect_timeout`.
    """

    dialect: PostgresDialect

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        super().__init__(PostgresDialect(url, connect_timeout_s))
        self.url = self.dialect.url
