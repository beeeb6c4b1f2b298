"""The SQL stores' statements, each written once, for every dialect.

A `Query` runs at once and its result is read: its text has `?` placeholders and `{slots}` for what a dialect
writes its own way (see `SLOTS`). A write whose result nobody reads is queued, and its declaration's class says how
queued rows of it are sent (`grouping.grouped_writes`):

- `Insert`: rows that commute with every other queued write but those of the same declaration (distinct rows, or
  insert-or-ignore): grouped, in their queued order, last.
- `Upsert`: insert or replace by a conflict key; grouped as an insert (only the last row of a key counts).
- `Accumulate`: insert, or add to the row of the same conflict key (counts); grouped as an insert (the rows of one
  key add up).
- `KeyedAdd` / `KeyedRemove`: an insert-or-ignore keyed by its first column and the delete of that key, touched
  by no other write: collapsed (`grouping.collapsed`) into one group of deletes, then one of inserts.
- `Ordered`: anything else (a delete by a condition, an insert from a select): sent one by one, first, in order.
- `Trailing`: an update of rows a grouped insert queued before it may have made (a task completed by an event of
  the batch that raised it): sent one by one, last, in order.

A dialect renders every declaration once, when its store is built (`DECLARED`): placeholders, slots and, for
PostgreSQL, the bulk form of each grouped write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol

TEXT: Final = "text"
REAL: Final = "real"
INTEGER: Final = "integer"
BLOB: Final = "blob"
Column = tuple[str, str]
"""A written column: its name and type (TEXT, REAL, INTEGER or BLOB; a dialect names its own)."""
Params = Sequence[Any]


class Cursor(Protocol):
    """What a SQL store reads of a driver's cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


SLOTS: Final = (
    "in_ids", "in_seqs", "ids", "history_seq", "skip_locked", "for_share", "profile_value", "profile_tier",
    "unindexed",
)  # fmt: skip
"""What a dialect fills in: `in_ids`, `IN` a list of ids (text) given as one parameter; `in_seqs`, the same for a
list of seqs (integers); `ids`, a list of ids as a table of one column, `value`; `history_seq`, the history's
insertion order; `skip_locked`, the outbox claim's lock clause; `for_share`, a read's lock of its rows until the
commit (none in SQLite, whose writer holds the file); `profile_value`, the `annual_value` of the profile
row `pr` when it is a number, else 0 (no profile: 0); `profile_tier`, its `tier` (text, or NULL); `unindexed`, put
before a column so that the planner does not look it up in an index (SQLite, without statistics, answered
`id IN (list) AND status = 'open'` by reading every open task through the status index, at every commit)."""

GROUPED: Final = "grouped"
KEYED: Final = "keyed"
ORDERED: Final = "ordered"
TRAILING: Final = "trailing"

DECLARED: list[Statement] = []
"""Every statement declared, in order of declaration: what a dialect renders when its store is built."""


@dataclass(frozen=True, eq=False, slots=True)
class Query:
    """A statement run at once: a read, or a write whose result (row count, returned rows) is read. `name` says
    what failed in a message."""

    name: str
    text: str

    def __post_init__(self) -> None:
        DECLARED.append(self)


@dataclass(frozen=True, eq=False, slots=True)
class Ordered:
    """A queued write sent alone, in its queued order, before the grouped ones."""

    grouping: ClassVar[str] = ORDERED
    name: str
    text: str

    def __post_init__(self) -> None:
        DECLARED.append(self)


@dataclass(frozen=True, eq=False, slots=True)
class Trailing(Ordered):
    """An ordered write sent after the grouped ones instead of before them."""

    grouping: ClassVar[str] = TRAILING


@dataclass(frozen=True, eq=False, slots=True)
class Insert:
    """A queued insert of `columns` into `table` (or-ignore when `ignore`), sent grouped."""

    grouping: ClassVar[str] = GROUPED
    name: str
    table: str
    columns: tuple[Column, ...]
    ignore: bool = False
    text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", insert_text(self.table, self.columns) + self.conflict())
        DECLARED.append(self)

    def conflict(self) -> str:
        return " ON CONFLICT DO NOTHING" if self.ignore else ""


@dataclass(frozen=True, eq=False, slots=True)
class Upsert:
    """A queued insert of `columns` into `table` that replaces the row of the same `key` (conflict columns)."""

    grouping: ClassVar[str] = GROUPED
    name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    text: str = field(init=False)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.columns]
        if not set(self.key) <= set(names):
            raise ValueError(f"{self.name}: conflict key {self.key} not among the columns {names}")
        object.__setattr__(self, "text", insert_text(self.table, self.columns) + self.conflict())
        DECLARED.append(self)

    def conflict(self) -> str:
        updates = ", ".join(f"{name} = excluded.{name}" for name, _ in self.columns if name not in self.key)
        return f" ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"

    def key_positions(self) -> tuple[int, ...]:
        names = [name for name, _ in self.columns]
        return tuple(names.index(name) for name in self.key)


@dataclass(frozen=True, eq=False, slots=True)
class Accumulate:
    """A queued insert of `columns` into `table` that, where a row of the same `key` (conflict columns) exists,
    adds the new row's `added` columns to it instead (`n = table.n + excluded.n`): additive counts. Rows of one key
    add up whatever their order, so they commute with one another."""

    grouping: ClassVar[str] = GROUPED
    name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    added: tuple[str, ...]
    text: str = field(init=False)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.columns]
        if not set(self.key) <= set(names) or not set(self.added) <= set(names) - set(self.key):
            raise ValueError(f"{self.name}: key {self.key} and added {self.added} must be distinct columns of {names}")
        object.__setattr__(self, "text", insert_text(self.table, self.columns) + self.conflict())
        DECLARED.append(self)

    def conflict(self) -> str:
        updates = ", ".join(f"{name} = {self.table}.{name} + excluded.{name}" for name in self.added)
        return f" ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"

    def key_positions(self) -> tuple[int, ...]:
        names = [name for name, _ in self.columns]
        return tuple(names.index(name) for name in self.key)

    def added_positions(self) -> tuple[int, ...]:
        names = [name for name, _ in self.columns]
        return tuple(names.index(name) for name in self.added)


@dataclass(frozen=True, eq=False, slots=True)
class KeyedAdd:
    """A queued insert-or-ignore of `columns` into `table`, keyed by the first column; its `KeyedRemove`s delete
    by that key."""

    grouping: ClassVar[str] = KEYED
    name: str
    table: str
    columns: tuple[Column, ...]
    text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", insert_text(self.table, self.columns) + self.conflict())
        DECLARED.append(self)

    def conflict(self) -> str:
        return " ON CONFLICT DO NOTHING"


@dataclass(frozen=True, eq=False, slots=True)
class KeyedRemove:
    """A queued delete of the row of a key, from the table of `add`."""

    grouping: ClassVar[str] = KEYED
    name: str
    add: KeyedAdd
    text: str = field(init=False)

    def __post_init__(self) -> None:
        delete = f"DELETE FROM {self.add.table} WHERE {self.add.columns[0][0]} = ?"  # noqa: S608 (declared names)
        object.__setattr__(self, "text", delete)
        DECLARED.append(self)


Write = Ordered | Insert | Upsert | Accumulate | KeyedAdd | KeyedRemove
Statement = Query | Write
Queued = tuple[Write, Params]
"""A queued write: its declaration and its parameters."""


def insert_text(table: str, columns: tuple[Column, ...]) -> str:
    """The single-row insert (`?` placeholders), without its conflict clause."""
    names = ", ".join(name for name, _ in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608 (declared names)


def render(text: str, placeholder: str, slots: Mapping[str, str]) -> str:
    """A statement's text in a dialect: its placeholder for `?`, its SQL for the slots."""
    return text.replace("?", placeholder).format_map(slots)


SCHEMA_VERSION = Query("schema_version", "SELECT version FROM schema_version")

ADD_EVENT = Insert("add_event", "ledger", (("event_id", TEXT), ("ts", REAL)), ignore=True)
PRELOAD_EVENTS = Query("preload_events", "SELECT event_id FROM ledger WHERE event_id {in_ids}")
PRUNE_LEDGER = Query("prune_ledger", "DELETE FROM ledger WHERE ts < ?")

PRELOAD_PROFILES = Query("preload_customers", "SELECT customer_id, ts, data FROM profiles WHERE customer_id {in_ids}")
PRELOAD_COOLDOWNS = Query(
    "preload_customers", "SELECT customer_id, playbook, ts FROM cooldowns WHERE customer_id {in_ids}"
)
PRELOAD_HISTORY = Query(
    "preload_customers",
    "SELECT customer_id, event_id, type, ts, data FROM history WHERE customer_id {in_ids} AND ts >= ? "
    "ORDER BY customer_id, ts, {history_seq}",
)
APPEND_HISTORY = Insert(
    "append_history",
    "history",
    (("customer_id", TEXT), ("ts", REAL), ("event_id", TEXT), ("type", TEXT), ("data", TEXT)),
)
HISTORY = Query(
    "history",
    "SELECT event_id, type, ts, data FROM history WHERE customer_id = ? AND ts >= ? ORDER BY ts, {history_seq}",
)
PRUNE_SCOPE_APPLIED = Ordered(
    "prune_history", "DELETE FROM scope_applied WHERE seq IN (SELECT seq FROM scope_log WHERE ts < ?)"
)
PRUNE_SCOPE_LOG = Ordered("prune_history", "DELETE FROM scope_log WHERE ts < ?")
PRUNE_HISTORY = Query("prune_history", "DELETE FROM history WHERE ts < ?")

PROFILE = Query("get_profile", "SELECT ts, data FROM profiles WHERE customer_id = ?")
PUT_PROFILE = Upsert(
    "put_profile",
    "profiles",
    (("customer_id", TEXT), ("ts", REAL), ("data", TEXT), ("region", TEXT)),
    key=("customer_id",),
)
REGION = Query("customers_in_region", "SELECT customer_id FROM profiles WHERE region = ? ORDER BY customer_id")
COOLDOWNS = Query("get_cooldowns", "SELECT playbook, ts FROM cooldowns WHERE customer_id = ?")
SET_COOLDOWN = Upsert(
    "set_cooldown",
    "cooldowns",
    (("customer_id", TEXT), ("playbook", TEXT), ("ts", REAL)),
    key=("customer_id", "playbook"),
)

ADD_DEADLINE = KeyedAdd(
    "add_deadline",
    "deadlines",
    (("id", TEXT), ("due", REAL), ("playbook", TEXT), ("customer_id", TEXT), ("key", TEXT), ("first", TEXT)),
)
REMOVE_DEADLINE = KeyedRemove("remove_deadline", ADD_DEADLINE)
PENDING_DEADLINES = Query(
    "pending_deadlines", "SELECT id, due, playbook, customer_id, key, first FROM deadlines ORDER BY due, id"
)

SCOPE_CUSTOMERS = Query("scope_customers", "SELECT customer_id FROM scopes WHERE scope_id = ?")
CLEAR_SCOPE = Ordered("set_scope_customers", "DELETE FROM scopes WHERE scope_id = ?")
# One statement for all of a scope's customers (an outage may reach thousands).
FILL_SCOPE = Ordered("set_scope_customers", "INSERT INTO scopes (scope_id, customer_id) SELECT ?, value FROM {ids}")
SCOPE_LOG_ADD = Query("scope_log_add", "INSERT INTO scope_log (ts, event) VALUES (?, ?) RETURNING seq")
SCOPE_LOG = Query("scope_log", "SELECT seq, ts, event FROM scope_log WHERE ts >= ? ORDER BY ts, seq")
SCOPE_APPLIED = Query("scope_applied", "SELECT seq FROM scope_applied WHERE stream = ?")
MARK_SCOPE_APPLIED = Insert("mark_scope_applied", "scope_applied", (("stream", TEXT), ("seq", INTEGER)), ignore=True)
SET_WATERMARK = Upsert(
    "set_watermark", "watermarks", (("stream", TEXT), ("ts", REAL), ("ended_at", REAL)), key=("stream",)
)
WATERMARKS = Query("watermarks", "SELECT stream, ts, ended_at FROM watermarks WHERE substr(stream, 1, ?) = ?")
CLAIM_STREAM = Query(
    "claim_streams",
    "INSERT INTO owners (stream, epoch) VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET epoch = owners.epoch + 1 "
    "RETURNING epoch",
)
# Locked until the step's commit (PostgreSQL): a claim of the same stream waits for it, so a step commits before
# the claim or sees the claim's epoch.
EPOCHS = Query("fenced", "SELECT stream, epoch FROM owners WHERE stream {in_ids}{for_share}")

PUT_EFFECT = Insert(
    "put_effect", "effects", (("id", TEXT), ("kind", TEXT), ("customer_id", TEXT), ("body", TEXT)), ignore=True
)
EFFECTS = Query("effects", "SELECT body FROM effects ORDER BY seq")

# ----------------------------------------------------------------------------------------------- outbox

OUTBOX_ADD = Insert("outbox_add", "outbox", (("topic", TEXT), ("key", TEXT), ("value", BLOB), ("headers", TEXT)))
# Claims are short transactions of their own (the publisher's): rows another instance is claiming in its open
# transaction are not ours to wait for (PostgreSQL: SKIP LOCKED).
OUTBOX_CLAIM = Query(
    "outbox_claim",
    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq IN (SELECT seq FROM outbox "
    "WHERE parked_at IS NULL AND not_before <= ? AND (claimed_by IS NULL OR claimed_by = ? OR claimed_until < ?) "
    "ORDER BY seq LIMIT ?{skip_locked}) RETURNING seq, topic, key, value, headers, attempts",
)
OUTBOX_DONE = Ordered("outbox_done", "DELETE FROM outbox WHERE seq {in_seqs}")
OUTBOX_RETRY = Ordered(
    "outbox_retry",
    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, attempts = attempts + 1, not_before = ?, error = ? "
    "WHERE seq {in_seqs}",
)
OUTBOX_PARK = Ordered(
    "outbox_park", "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, parked_at = ?, error = ? WHERE seq = ?"
)
OUTBOX_RELEASE = Query(
    "outbox_release", "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL"
)
OUTBOX_PARKED = Query(
    "outbox_parked",
    "SELECT seq, topic, key, length(value), parked_at, error FROM outbox WHERE parked_at IS NOT NULL "
    "ORDER BY seq LIMIT ?",
)
OUTBOX_PARKED_COUNT = Query("outbox_parked", "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL")
OUTBOX_UNPARK = Query(
    "outbox_unpark",
    "UPDATE outbox SET parked_at = NULL, error = NULL, attempts = 0, not_before = 0 "
    "WHERE parked_at IS NOT NULL AND seq {in_seqs}",
)
OUTBOX_UNPARK_ALL = Query(
    "outbox_unpark",
    "UPDATE outbox SET parked_at = NULL, error = NULL, attempts = 0, not_before = 0 WHERE parked_at IS NOT NULL",
)
OUTBOX_SIZE = Query("outbox_size", "SELECT count(*) FROM outbox WHERE parked_at IS NULL")
