"""The shared store: one PostgreSQL database that several recovery instances use at once (DESIGN.md principle 4).

Same contract as the SQLite store: writes go into an open transaction that `commit()` makes durable, once per
batch, before the input is acknowledged. Schema changes are versioned migrations, applied in order on open under
an advisory lock, so that instances starting together do not race. Writes other instances may make too are
idempotent (`ON CONFLICT DO NOTHING`), and `outbox_take` skips rows another instance has locked, so no two
instances ever publish the same message.

Round trips are what costs: statements run often are prepared by psycopg on their fifth use (its
`prepare_threshold`), and writes whose result nobody reads (history, profiles, cooldowns, deadlines, scopes, the
outbox) are queued and sent in one pipeline with the next statement whose result is read, or at commit; each
table's grouped rows go in one statement, as binary arrays (see `Bulk`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import psycopg
from psycopg.rows import TupleRow

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
)
"""Migration N (1-based) brings the schema from version N-1 to N. Append only; never edit a shipped one."""

MIGRATION_LOCK = int.from_bytes(b"recovery", "big")
"""The advisory lock (per database) held while the schema is checked and migrated."""

MAX_QUEUED_WRITES = 5000
"""Queued writes are sent once this many wait, even if nothing is read."""
KNOWN_EFFECT_IDS = 200_000
"""Effect ids this connection stored, remembered to answer `put_effect` without a round trip."""


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
    """One statement for many rows of a single-row `INSERT ... VALUES (%s, ...)` or `DELETE ... WHERE c = %s`: the
    rows go as one array per column, unnested in order (`WITH ORDINALITY ... ORDER BY`, so identity columns follow
    the queued order), or as `c = ANY(array)`.

    The statement's text is the same whatever the number of rows: psycopg parses it once and prepares it, where a
    multi-row `VALUES` list was parsed again for every batch (measured: a sixth of the loop's time with
    PostgreSQL). For an upsert (`DO UPDATE SET c = excluded.c, ...`) only the last row of each conflict key is
    sent, as the one-by-one upserts would have left it (DO UPDATE may not touch one row twice in one statement).
    """

    sql: str
    width: int
    key: tuple[int, ...] | None = None
    """Upserts: the positions of the conflict columns in a row."""
    floats: tuple[int, ...] = ()
    """The positions of the double precision columns: an int there is sent as a float (a binary array has one
    type)."""

    def params(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        for row in rows:
            if len(row) != self.width:
                raise psycopg.ProgrammingError(
                    f"{len(row)} parameters for {self.width} placeholders in: {self.sql[:60]}"
                )
        if self.key is not None:
            key = self.key
            rows = list({tuple(row[i] for i in key): row for row in rows}.values())
        columns = [list(column) for column in zip(*rows, strict=True)]
        for i in self.floats:
            try:
                columns[i] = list(map(float, columns[i]))
            except TypeError:  # a NULL
                columns[i] = [None if v is None else float(v) for v in columns[i]]
        return columns


_DELETE = re.compile(r"^DELETE FROM (\w+) WHERE (\w+) = %s$")
_INSERT = re.compile(r"^INSERT INTO (\w+) (?:\(([^)]*)\) )?VALUES \(((?:%s, )*%s)\)(.*)$", re.DOTALL)
_UPSERT = re.compile(r"^ ON CONFLICT \(([^)]*)\) DO UPDATE SET (.*)$", re.DOTALL)


def bulk_statement(statement: str, tables: dict[str, list[tuple[str, str]]]) -> Bulk | None:
    """The `Bulk` form of `statement` given the tables' (column, type) lists; None for another statement (an
    upsert that does more than take the new values, a delete by more than one column).
    A delete by one column becomes `= ANY(array)`: the rows' order does not matter to it."""
    delete = _DELETE.match(statement)
    if delete is not None:
        table, column = delete.groups()
        found = dict(tables.get(table, ()))
        if column not in found:
            return None
        return Bulk(f'DELETE FROM {table} WHERE "{column}" = ANY(%b::{found[column]}[])', 1)  # noqa: S608
    match = _INSERT.match(statement)
    if match is None or match.group(1) not in tables:
        return None
    table, listed, placeholders, tail = match.groups()
    types = dict(tables[table])
    columns = [c.strip() for c in listed.split(",")] if listed else [name for name, _ in tables[table]]
    if len(columns) != placeholders.count("%s") or any(c not in types for c in columns):
        return None
    key: tuple[int, ...] | None = None
    if "DO UPDATE" in tail.upper():
        upsert = _UPSERT.match(tail)
        if upsert is None:
            return None
        assignments = [a.split("=") for a in upsert.group(2).split(",")]
        if any(len(a) != 2 or a[1].strip() != f"excluded.{a[0].strip()}" for a in assignments):
            return None
        conflict = [c.strip() for c in upsert.group(1).split(",")]
        if any(c not in columns for c in conflict):
            return None
        key = tuple(columns.index(c) for c in conflict)
    quoted = ", ".join(f'"{c}"' for c in columns)
    # Binary arrays (%b): psycopg's text arrays escape every element in Python, ten times the CPU (measured).
    arrays = ", ".join(f"%b::{types[c]}[]" for c in columns)
    # Names and types from our own statements and the catalog, never from data.
    sql = (
        f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM unnest({arrays}) WITH ORDINALITY "  # noqa: S608
        f"AS bulk({quoted}, bulk_row) ORDER BY bulk_row{tail}"
    )
    floats = tuple(i for i, c in enumerate(columns) if types[c] == "double precision")
    return Bulk(sql, len(columns), key, floats)


def _pg(statement: str) -> str:
    """A statement of `recovery.store.lifecycle` (`?` placeholders) with psycopg's `%s`."""
    return statement.replace("?", "%s")


class PostgresStore(CustomerReads):
    """A Store in a PostgreSQL database, by URL (`postgresql://user:password@host:port/db`). One connection:
    not thread-safe, one per engine; other instances open their own.

    A statement that fails raises `StoreError` naming the store (its URL without the password) and the operation;
    a queued write fails in the next call that reads, or in `commit()`, and is named there. Whatever the failure,
    the batch is lost: call `rollback()` and process it again. After a lost connection,
    `rollback()` connects again (raising `StoreError` while the server stays away), so the same store can retry.
    `connect_timeout_s` (10) applies unless the URL sets `connect_timeout`.
    """

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        self.url = redact_url(url)
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
        self._closed = False
        self._queued: list[Statement] = []
        self._preloaded: dict[str, bool] = {}
        self._customers: dict[str, Preloaded] = {}
        self._regions: dict[str, tuple[str, ...]] = {}
        self._effect_ids: dict[str, None] = {}  # insertion-ordered, bounded: the effects this connection stored
        self._uncommitted_effects: list[str] = []  # forgotten again on a rollback
        self._bulk: dict[str, Bulk | None] = {}
        self._tables: dict[str, list[tuple[str, str]]] = {}
        self._conn = self._connect()
        try:
            self._migrate()
            self._tables = self._read_tables()
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot migrate the PostgreSQL store at {self.url!r}: {self._describe(exc)}") from exc
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------------------------------- plumbing

    def _describe(self, exc: BaseException) -> str:
        """The driver's message on one line, without the password (libpq's never shows it; be sure)."""
        text = " ".join(str(exc).split())
        for password in self._passwords:
            text = text.replace(password, "***")
        return text

    def _connect(self) -> psycopg.Connection[TupleRow]:
        try:
            return psycopg.connect(self._dsn, **self._options)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store at {self.url!r}: {self._describe(exc)}") from exc

    def _migrate(self) -> None:
        # Every pending migration in one transaction (PostgreSQL's DDL is transactional): all or none. The lock
        # is released at commit; an instance waiting for it then finds the schema up to date.
        conn = self._conn
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the store at {self.url!r} has schema version {version}, newer than this recovery "
                f"({len(MIGRATIONS)}): upgrade recovery"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            conn.execute(MIGRATIONS[number - 1])
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (%s)", (number,))
            logger.info("migrated store", extra={"store": self.url, "schema_version": number})
        conn.commit()

    def _read_tables(self) -> dict[str, list[tuple[str, str]]]:
        """Each table's (column, type) in order, for `bulk_statement`."""
        rows = self._conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
        ).fetchall()
        self._conn.commit()
        tables: dict[str, list[tuple[str, str]]] = {}
        for table, column, type_name in rows:
            tables.setdefault(table, []).append((column, type_name))
        return tables

    @property
    def schema_version(self) -> int:
        row = self._run("schema_version", "SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _error(self, what: str, exc: psycopg.Error) -> StoreError:
        return StoreError(f"PostgreSQL store {self.url!r}: {what} failed: {self._describe(exc)}")

    def _run(self, what: str, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[TupleRow]:
        """Run a statement whose result is read, after the queued writes and in the same round trip."""
        queued, self._queued = self._queued, []
        try:
            if not queued:
                return self._conn.execute(sql, params)
            with self._conn.pipeline():
                self._execute_grouped(queued)
                cursor = self._conn.execute(sql, params)
            return cursor
        except psycopg.Error as exc:
            raise self._error(f"{what} (sent after queued {statement_names(queued)})" if queued else what, exc) from exc

    def _write(self, what: str, sql: str, params: Sequence[Any]) -> None:
        """Queue a statement whose result nobody reads."""
        self._queued.append((what, sql, params))
        if len(self._queued) >= MAX_QUEUED_WRITES:
            self._send_queued()

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        try:
            with self._conn.pipeline():
                self._execute_grouped(queued)
        except psycopg.Error as exc:
            raise self._error(f"queued {statement_names(queued)}", exc) from exc

    def _execute_grouped(self, queued: list[Statement]) -> None:
        for statement, rows in grouped_writes(queued):
            if len(rows) == 1:
                self._conn.execute(statement, rows[0])
                continue
            if statement not in self._bulk:
                self._bulk[statement] = bulk_statement(statement, self._tables)
            bulk = self._bulk[statement]
            if bulk is not None:
                self._conn.execute(bulk.sql, bulk.params(rows))
            else:
                with self._conn.cursor() as cursor:
                    cursor.executemany(statement, rows)

    def commit(self) -> None:
        """Make everything written since the last commit durable."""
        self._preloaded = {}
        self._customers = {}
        self._regions = {}
        if self._queued:
            self._send_queued()
        try:
            self._conn.commit()
        except psycopg.Error as exc:
            raise self._error("commit", exc) from exc
        self._uncommitted_effects = []  # only now: a failed commit is rolled back, and these with it

    def rollback(self) -> None:
        """Forget everything written since the last commit; after a lost connection, connect again."""
        if self._closed:
            raise StoreError(f"PostgreSQL store {self.url!r}: rollback failed: the store is closed")
        self._queued.clear()
        self._preloaded = {}
        self._customers = {}
        self._regions = {}
        for effect_id in self._uncommitted_effects:
            self._effect_ids.pop(effect_id, None)
        self._uncommitted_effects = []
        try:
            self._conn.rollback()
        except psycopg.Error as exc:
            if not self._conn.broken:
                raise self._error("rollback", exc) from exc
        if self._conn.broken:
            # A new session has nothing uncommitted: that is what a rollback promises.
            logger.warning("reconnecting to the store after a lost connection", extra={"store": self.url})
            self._conn.close()
            self._conn = self._connect()

    def close(self) -> None:
        """Commit what is pending and close the connection. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        try:
            self.commit()
        finally:
            self._conn.close()

    # ------------------------------------------------------------------------------------------- ledger

    def preload_events(self, event_ids: list[str]) -> None:
        """Check a batch's ids in one round trip; `add_event` then queues its insert instead of waiting for it.
        (Only the owner of a partition adds its events, so no one else inserts them meanwhile.)"""
        sql = "SELECT event_id FROM ledger WHERE event_id = ANY(%b::text[])"
        seen = {row[0] for row in self._run("preload_events", sql, (event_ids,)).fetchall()}
        self._preloaded = {event_id: event_id in seen for event_id in event_ids}

    def add_event(self, event_id: str, ts: float) -> bool:
        sql = "INSERT INTO ledger VALUES (%s, %s) ON CONFLICT DO NOTHING"
        seen = self._preloaded.get(event_id)
        if seen is None:
            return self._run("add_event", sql, (event_id, ts)).rowcount == 1
        if seen:
            return False
        self._preloaded[event_id] = True
        self._write("add_event", sql, (event_id, ts))
        return True

    def prune_ledger(self, before: float) -> int:
        return self._run("prune_ledger", "DELETE FROM ledger WHERE ts < %s", (before,)).rowcount

    def _fetch_customers(self, wanted: list[str], since: float) -> tuple[Rows, Rows, Rows]:
        sql_profiles = "SELECT customer_id, ts, data FROM profiles WHERE customer_id = ANY(%b::text[])"
        sql_cooldowns = "SELECT customer_id, playbook, ts FROM cooldowns WHERE customer_id = ANY(%b::text[])"
        sql_history = (
            "SELECT customer_id, event_id, type, ts, data FROM history "
            "WHERE customer_id = ANY(%b::text[]) AND ts >= %s ORDER BY customer_id, ts, seq"
        )
        return (
            self._run("preload_customers", sql_profiles, (wanted,)).fetchall(),
            self._run("preload_customers", sql_cooldowns, (wanted,)).fetchall(),
            self._run("preload_customers", sql_history, (wanted, since)).fetchall(),
        )

    def append_history(self, occurrence: Occurrence) -> None:
        self._customers.pop(occurrence.customer_id, None)
        self._write(
            "append_history",
            "INSERT INTO history (customer_id, ts, event_id, type, data) VALUES (%s, %s, %s, %s, %s)",
            (occurrence.customer_id, occurrence.ts, occurrence.id, occurrence.type, json.dumps(occurrence.data)),
        )

    def _read_history(self, customer_id: str, since: float) -> list[Occurrence]:
        rows = self._run(
            "history",
            "SELECT event_id, type, ts, data FROM history WHERE customer_id = %s AND ts >= %s ORDER BY ts, seq",
            (customer_id, since),
        ).fetchall()
        return [Occurrence(eid, etype, ts, customer_id, json.loads(data)) for eid, etype, ts, data in rows]

    def prune_history(self, before: float) -> int:
        self._write(
            "prune_history",
            "DELETE FROM scope_applied WHERE seq IN (SELECT seq FROM scope_log WHERE ts < %s)",
            (before,),
        )
        self._write("prune_history", "DELETE FROM scope_log WHERE ts < %s", (before,))
        return self._run("prune_history", "DELETE FROM history WHERE ts < %s", (before,)).rowcount

    # ------------------------------------------------------------------------------------------- customers

    def _read_profile(self, customer_id: str) -> tuple[float, dict[str, Any]] | None:
        sql = "SELECT ts, data FROM profiles WHERE customer_id = %s"
        row = self._run("get_profile", sql, (customer_id,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def put_profile(self, customer_id: str, ts: float, profile: dict[str, Any]) -> None:
        self._customers.pop(customer_id, None)
        self._regions.clear()
        region = profile.get("region")
        self._write(
            "put_profile",
            "INSERT INTO profiles VALUES (%s, %s, %s, %s) ON CONFLICT (customer_id) DO UPDATE SET "
            "ts = excluded.ts, data = excluded.data, region = excluded.region",
            (customer_id, ts, json.dumps(profile), None if region is None else str(region)),
        )

    def _read_region(self, region: str) -> list[str]:
        sql = "SELECT customer_id FROM profiles WHERE region = %s ORDER BY customer_id"
        return [r[0] for r in self._run("customers_in_region", sql, (region,)).fetchall()]

    def _read_cooldowns(self, customer_id: str) -> dict[str, float]:
        sql = "SELECT playbook, ts FROM cooldowns WHERE customer_id = %s"
        return {playbook: ts for playbook, ts in self._run("get_cooldowns", sql, (customer_id,)).fetchall()}

    def set_cooldown(self, customer_id: str, playbook: str, ts: float) -> None:
        self._customers.pop(customer_id, None)
        self._write(
            "set_cooldown",
            "INSERT INTO cooldowns VALUES (%s, %s, %s) ON CONFLICT (customer_id, playbook) DO UPDATE SET "
            "ts = excluded.ts",
            (customer_id, playbook, ts),
        )

    # ------------------------------------------------------------------------------------------- deadlines

    def add_deadline(self, deadline: Deadline) -> None:
        self._write(
            "add_deadline",
            "INSERT INTO deadlines VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
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
        self._write("remove_deadline", "DELETE FROM deadlines WHERE id = %s", (deadline_id,))

    def pending_deadlines(self) -> list[Deadline]:
        sql = "SELECT id, due, playbook, customer_id, key, first FROM deadlines ORDER BY due, id"
        rows = self._run("pending_deadlines", sql).fetchall()
        return [Deadline(i, due, pb, cid, key, occurrence_from_json(first)) for i, due, pb, cid, key, first in rows]

    def scope_customers(self, scope_id: str) -> set[str]:
        sql = "SELECT customer_id FROM scopes WHERE scope_id = %s"
        return {r[0] for r in self._run("scope_customers", sql, (scope_id,)).fetchall()}

    def set_scope_customers(self, scope_id: str, customers: set[str]) -> None:
        self._write("set_scope_customers", "DELETE FROM scopes WHERE scope_id = %s", (scope_id,))
        if customers:  # one statement for all (an outage may reach thousands)
            sql = "INSERT INTO scopes SELECT %s, unnest(%s::text[])"
            self._write("set_scope_customers", sql, (scope_id, sorted(customers)))

    # ------------------------------------------------------------------------------------------- scope log

    def scope_log_add(self, ts: float, event: str) -> int:
        sql = "INSERT INTO scope_log (ts, event) VALUES (%s, %s) RETURNING seq"
        row = self._run("scope_log_add", sql, (ts, event)).fetchone()
        return int(row[0]) if row else 0

    def scope_log(self, since: float) -> list[tuple[int, float, str]]:
        sql = "SELECT seq, ts, event FROM scope_log WHERE ts >= %s ORDER BY ts, seq"
        return [(int(seq), float(ts), str(event)) for seq, ts, event in self._run("scope_log", sql, (since,))]

    def scope_applied(self, stream: str) -> set[int]:
        sql = "SELECT seq FROM scope_applied WHERE stream = %s"
        return {int(r[0]) for r in self._run("scope_applied", sql, (stream,)).fetchall()}

    def mark_scope_applied(self, stream: str, seq: int) -> None:
        sql = "INSERT INTO scope_applied VALUES (%s, %s) ON CONFLICT DO NOTHING"
        self._write("mark_scope_applied", sql, (stream, seq))

    def set_watermark(self, stream: str, ts: float) -> None:
        sql = "INSERT INTO watermarks VALUES (%s, %s) ON CONFLICT (stream) DO UPDATE SET ts = excluded.ts"
        self._write("set_watermark", sql, (stream, ts))

    def watermarks(self, prefix: str) -> dict[str, float]:
        sql = "SELECT stream, ts FROM watermarks WHERE left(stream, %s) = %s"
        rows = self._run("watermarks", sql, (len(prefix), prefix)).fetchall()
        return {str(stream): float(ts) for stream, ts in rows}

    # ------------------------------------------------------------------------------------------- effects

    def put_effect(self, effect: Effect) -> bool:
        """Queued like the other writes: an id stored by this connection is known here; one stored before it
        started (only a replay of already-recorded causes could make it again, which the ledger prevents) is
        inserted as nothing (ON CONFLICT), and at worst published once more with the same id and content."""
        if effect.id in self._effect_ids:
            return False
        self._effect_ids[effect.id] = None
        self._uncommitted_effects.append(effect.id)
        if len(self._effect_ids) > KNOWN_EFFECT_IDS:
            del self._effect_ids[next(iter(self._effect_ids))]
        self._write(
            "put_effect",
            "INSERT INTO effects (id, kind, customer_id, body) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (effect.id, effect.kind, effect.customer_id, effect.to_json()),
        )
        if isinstance(effect, Task):
            due_ts, created_ts = parse_time(effect.due_at), parse_time(effect.created_at)
            self._write("put_effect", _pg(sql.INSERT_TASK), sql.task_params(effect, due_ts, created_ts))
        else:
            self._write("put_effect", _pg(sql.INSERT_GESTURE), sql.gesture_params(effect))
        return True

    def effects(self) -> list[Effect]:
        rows = self._run("effects", "SELECT body FROM effects ORDER BY seq").fetchall()
        return [effect_from_dict(json.loads(body)) for (body,) in rows]

    # ------------------------------------------------------------------------------------------- task lifecycle

    def list_tasks(self, query: TaskQuery) -> tuple[list[TaskRecord], int]:
        select, count, params = sql.list_tasks_sql(query)
        rows = self._run("list_tasks", _pg(select), [*params, query.limit, query.offset]).fetchall()
        row = self._run("list_tasks", _pg(count), params).fetchone()
        return [sql.task_record(r) for r in rows], int(row[0]) if row else 0

    def get_task(self, task_id: str) -> TaskRecord | None:
        row = self._run("get_task", _pg(sql.GET_TASK), (task_id,)).fetchone()
        return sql.task_record(row) if row else None

    def claim_task(self, task_id: str, agent: str, at: float) -> bool:
        return self._run("claim_task", _pg(sql.CLAIM), (agent, at, task_id)).rowcount == 1

    def release_task(self, task_id: str, agent: str | None, at: float) -> bool:
        if agent is None:
            return self._run("release_task", _pg(sql.RELEASE), (task_id,)).rowcount == 1
        statement = _pg(sql.RELEASE + " AND claimed_by = ?")
        return self._run("release_task", statement, (task_id, agent)).rowcount == 1

    def complete_task(self, task_id: str, agent: str, at: float, outcome: str, reason_code: str, note: str) -> bool:
        params = (at, outcome, reason_code, note, task_id, agent)
        return self._run("complete_task", _pg(sql.COMPLETE), params).rowcount == 1

    def overdue_tasks(self, now: float, limit: int) -> list[TaskRecord]:
        return [sql.task_record(r) for r in self._run("overdue_tasks", _pg(sql.OVERDUE), (now, limit)).fetchall()]

    def escalate_task(self, task_id: str, priority: str, queue: str, at: float) -> bool:
        return self._run("escalate_task", _pg(sql.ESCALATE), (priority, queue, at, task_id)).rowcount == 1

    def task_counts(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        return sql.count_rows(self._run("task_counts", _pg(sql.COUNTS), (now,)).fetchall())

    def list_gestures(self, status: str | None, customer_id: str | None, limit: int) -> list[GestureRecord]:
        select, params = sql.list_gestures_sql(status, customer_id)
        return [sql.gesture_record(r) for r in self._run("list_gestures", _pg(select), [*params, limit]).fetchall()]

    def get_gesture(self, gesture_id: str) -> GestureRecord | None:
        row = self._run("get_gesture", _pg(sql.GET_GESTURE), (gesture_id,)).fetchone()
        return sql.gesture_record(row) if row else None

    def decide_gesture(self, gesture_id: str, status: GestureStatus, actor: str, at: float) -> bool:
        return self._run("decide_gesture", _pg(sql.DECIDE), (status, actor, at, gesture_id)).rowcount == 1

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
        self._write("add_audit", _pg(sql.INSERT_AUDIT), params)

    def audit(
        self, *, customer_id: str | None = None, task_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        select, params = sql.audit_sql(customer_id, task_id)
        return [sql.audit_entry(r) for r in self._run("audit", _pg(select), [*params, limit]).fetchall()]

    # ------------------------------------------------------------------------------------------- outbox

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        encoded = json.dumps([[name, raw.decode("latin-1")] for name, raw in headers])
        self._write(
            "outbox_add",
            "INSERT INTO outbox (topic, key, value, headers) VALUES (%s, %s, %s, %s)",
            (topic, key, value, encoded),
        )

    def outbox_take(self, limit: int) -> list[OutboxItem]:
        # SKIP LOCKED: rows another instance took in its open transaction are not ours to take; if it rolls
        # back, they come back for whoever asks next.
        rows = self._run(
            "outbox_take",
            "DELETE FROM outbox WHERE seq IN "
            "(SELECT seq FROM outbox ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING seq, topic, key, value, headers",
            (limit,),
        ).fetchall()
        rows.sort(key=lambda row: int(row[0]))
        return [
            OutboxItem(seq, topic, key, bytes(value), tuple((n, v.encode("latin-1")) for n, v in json.loads(headers)))
            for seq, topic, key, value, headers in rows
        ]

    def outbox_size(self) -> int:
        row = self._run("outbox_size", "SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0
