"""The SQL stores' statements: declared once, rendered for each dialect, and grouped when queued with the same
outcome as sending them one by one, in order."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.store import postgres, sqlite
from recovery.store import statements as q
from recovery.store.cases import COMPLETE_FROM_EVENT
from recovery.store.dialect import Dialect
from recovery.store.grouping import grouped_writes, summed_rows
from recovery.store.postgres import PostgresStore
from recovery.store.statements import (
    BLOB,
    DECLARED,
    INTEGER,
    REAL,
    TEXT,
    Accumulate,
    Insert,
    KeyedAdd,
    KeyedRemove,
    Ordered,
    Query,
    Queued,
    Trailing,
    Upsert,
    render,
)

ADD = q.ADD_DEADLINE
REMOVE = q.REMOVE_DEADLINE
OTHER = q.APPEND_HISTORY
SCOPES = q.CLEAR_SCOPE
WRITES = [s for s in DECLARED if not isinstance(s, Query)]
COLUMNS = {write: write.columns for write in WRITES if not isinstance(write, Ordered | Trailing | KeyedRemove)}


def apply(table: dict[str, Any], write: object, params: tuple[Any, ...]) -> None:
    """What SQL does to the deadlines, keyed by their first column (inserts ignored when the key is there)."""
    if write is ADD:
        table.setdefault(params[0], params[1])
    elif write is REMOVE:
        table.pop(params[0], None)


operations = st.lists(
    st.one_of(
        st.tuples(st.just(ADD), st.sampled_from("abcd"), st.integers(0, 9)),
        st.tuples(st.just(REMOVE), st.sampled_from("abcd"), st.just(0)),
        st.tuples(st.just(OTHER), st.sampled_from("abcd"), st.integers(0, 9)),
        st.tuples(st.just(SCOPES), st.sampled_from("abcd"), st.just(0)),
    ),
    max_size=40,
)


class TestGroupedWrites:
    @given(operations, st.dictionaries(st.sampled_from("abcd"), st.integers(100, 109)))
    def test_grouped_deadline_writes_end_as_in_queued_order(
        self, ops: list[tuple[Any, str, int]], before: dict[str, int]
    ) -> None:
        queued: list[Queued] = [(write, (key, value) if write in (ADD, OTHER) else (key,)) for write, key, value in ops]
        expected = dict(before)
        for write, params in queued:
            apply(expected, write, tuple(params))
        got = dict(before)
        sent: list[tuple[object, tuple[Any, ...]]] = []
        for write, rows in grouped_writes(queued):
            for row in rows:
                apply(got, write, tuple(row))
                sent.append((write, tuple(row)))
        assert got == expected
        # Every other write is sent once, in its queued order among those of its declaration; the deadline groups
        # hold each key at most once.
        for kind in (OTHER, SCOPES):
            assert [row for w, row in sent if w is kind] == [tuple(p) for w, p in queued if w is kind]
        for kind in (ADD, REMOVE):
            keys = [row[0] for w, row in sent if w is kind]
            assert len(keys) == len(set(keys))

    def test_keyed_writes_go_as_one_group_of_removes_then_one_of_adds(self) -> None:
        queued: list[Queued] = [
            (ADD, ("a", 1)),
            (REMOVE, ("b",)),
            (SCOPES, ("s",)),
            (ADD, ("c", 2)),
            (REMOVE, ("a",)),
            (ADD, ("a", 3)),
        ]
        assert grouped_writes(queued) == [
            (SCOPES, [("s",)]),
            (REMOVE, [("b",), ("a",)]),
            (ADD, [("c", 2), ("a", 3)]),
        ]

    def test_ordered_writes_go_first_then_keyed_then_grouped_by_declaration_then_trailing(self) -> None:
        queued: list[Queued] = [
            (COMPLETE_FROM_EVENT, (1.0, "saved", "", "ann", "tsk-1")),
            (q.OUTBOX_ADD, ("t", None, b"1", "[]")),
            (q.APPEND_HISTORY, ("C1", 1.0, "e1", "x", "{}")),
            (q.PRUNE_SCOPE_LOG, (5.0,)),
            (q.OUTBOX_ADD, ("t", None, b"2", "[]")),
            (REMOVE, ("d",)),
        ]
        assert [(write.name, len(rows)) for write, rows in grouped_writes(queued)] == [
            ("prune_history", 1),
            ("remove_deadline", 1),
            ("outbox_add", 2),
            ("append_history", 1),
            ("complete_from_event", 1),
        ]


class TestDeclarations:
    def test_single_row_forms(self) -> None:
        assert q.ADD_EVENT.text == "INSERT INTO ledger (event_id, ts) VALUES (?, ?) ON CONFLICT DO NOTHING"
        assert q.SET_COOLDOWN.text == (
            "INSERT INTO cooldowns (customer_id, playbook, ts) VALUES (?, ?, ?) "
            "ON CONFLICT (customer_id, playbook) DO UPDATE SET ts = excluded.ts"
        )
        assert q.REMOVE_DEADLINE.text == "DELETE FROM deadlines WHERE id = ?"
        assert q.OUTBOX_ADD.text == "INSERT INTO outbox (topic, key, value, headers) VALUES (?, ?, ?, ?)"

    def test_an_upsert_key_must_be_among_its_columns(self) -> None:
        with pytest.raises(ValueError, match="conflict key"):
            Upsert("x", "t", (("a", TEXT),), key=("b",))  # raises before it is declared

    def test_an_accumulate_adds_to_the_row_of_its_key(self) -> None:
        counts = Accumulate("x", "t", (("k", TEXT), ("w", REAL), ("n", INTEGER)), key=("k", "w"), added=("n",))
        assert counts.text == (
            "INSERT INTO t (k, w, n) VALUES (?, ?, ?) ON CONFLICT (k, w) DO UPDATE SET n = t.n + excluded.n"
        )
        DECLARED.remove(counts)
        with pytest.raises(ValueError, match="distinct columns"):
            Accumulate("x", "t", (("k", TEXT), ("n", INTEGER)), key=("k",), added=("k",))

    def test_rows_of_one_key_are_summed_in_first_seen_order(self) -> None:
        rows = [("a", 1.0, 2), ("b", 1.0, 1), ("a", 1.0, 3), ("a", 2.0, 1)]
        assert summed_rows(rows, (0, 1), (2,)) == [["a", 1.0, 5], ["b", 1.0, 1], ["a", 2.0, 1]]

    def test_every_write_has_a_grouping(self) -> None:
        kinds = {type(write): write.grouping for write in WRITES}
        assert kinds == {
            Accumulate: q.GROUPED,
            Insert: q.GROUPED,
            Upsert: q.GROUPED,
            KeyedAdd: q.KEYED,
            KeyedRemove: q.KEYED,
            Ordered: q.ORDERED,
            Trailing: q.TRAILING,
        }


def placeholders(sql: str) -> dict[str, int]:
    return {mark: sql.count(mark) for mark in ("?", "%s", "%b")}


def width(write: object) -> int:
    """How many parameters a row of `write` has."""
    if isinstance(write, KeyedRemove):
        return 1
    if isinstance(write, Ordered | Trailing):
        return write.text.count("?") + sum(write.text.count(f"{{{slot}}}") for slot in ("ids", "in_ids", "in_seqs"))
    return len(COLUMNS[write])  # type: ignore[index]


class TestRendering:
    @pytest.mark.parametrize("write", WRITES, ids=lambda w: f"{w.name}:{w.text[:30]}")
    def test_each_write_renders_its_forms_with_the_dialects_placeholders(self, write: Any) -> None:
        n = width(write)
        sqlite_sql = render(write.text, "?", sqlite.SLOTS)
        postgres_sql = render(write.text, "%s", postgres.SLOTS)
        assert placeholders(sqlite_sql) == {"?": n, "%s": 0, "%b": 0}
        bulk = postgres.bulk_form(write)
        if isinstance(write, Ordered | Trailing):
            assert bulk is None
            assert postgres_sql.count("%s") + postgres_sql.count("%b") == n and "?" not in postgres_sql
        else:
            assert placeholders(postgres_sql) == {"?": 0, "%s": n, "%b": 0}
            assert bulk is not None and bulk.width == n
            assert placeholders(bulk.sql) == {"?": 0, "%s": 0, "%b": n}

    @pytest.mark.parametrize("query", [s for s in DECLARED if isinstance(s, Query)], ids=lambda s: s.name)
    def test_each_query_renders_in_both_dialects(self, query: Query) -> None:
        for placeholder, slots, other in (("?", sqlite.SLOTS, "%"), ("%s", postgres.SLOTS, "?")):
            sql = render(query.text, placeholder, slots)
            assert "{" not in sql and "}" not in sql
            assert other not in sql

    def test_slots(self) -> None:
        assert render(q.PRELOAD_EVENTS.text, "?", sqlite.SLOTS) == (
            "SELECT event_id FROM ledger WHERE event_id IN (SELECT value FROM json_each(?))"
        )
        assert render(q.PRELOAD_EVENTS.text, "%s", postgres.SLOTS) == (
            "SELECT event_id FROM ledger WHERE event_id = ANY(%b::text[])"
        )
        assert render(q.HISTORY.text, "?", sqlite.SLOTS).endswith("ORDER BY ts, rowid")
        assert render(q.HISTORY.text, "%s", postgres.SLOTS).endswith("ORDER BY ts, seq")
        assert "FOR UPDATE SKIP LOCKED" in render(q.OUTBOX_CLAIM.text, "%s", postgres.SLOTS)
        assert "FOR UPDATE" not in render(q.OUTBOX_CLAIM.text, "?", sqlite.SLOTS)

    def test_a_dialect_fills_in_every_slot(self) -> None:
        unbuilt = object.__new__(sqlite.SqliteDialect)
        with pytest.raises(ValueError, match="fills in the slots in_ids, in_seqs, ids, history_seq, skip_locked"):
            Dialect.__init__(unbuilt, "?", {"in_ids": "", "ids": "", "history_seq": ""})


SQLITE_TYPES = {TEXT: "TEXT", REAL: "REAL", INTEGER: "INTEGER", BLOB: "BLOB"}


def test_declared_columns_have_the_sqlite_schemas_types(tmp_path: Path) -> None:
    sqlite.SqliteStore(tmp_path / "r.db").close()
    db = sqlite3.connect(tmp_path / "r.db")
    for write, columns in COLUMNS.items():
        schema = {row[1]: row[2] for row in db.execute(f"PRAGMA table_info({write.table})")}  # type: ignore[union-attr]
        assert {name: SQLITE_TYPES[kind] for name, kind in columns} == {name: schema[name] for name, _ in columns}
    db.close()


def test_declared_columns_have_the_postgres_schemas_types(postgres_database: str) -> None:
    PostgresStore(postgres_database).close()
    with psycopg.connect(postgres_database) as db:
        for write, columns in COLUMNS.items():
            rows = db.execute(
                "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a JOIN pg_class c "
                "ON c.oid = a.attrelid WHERE c.relname = %s AND a.attnum > 0",
                (write.table,),  # type: ignore[union-attr]
            ).fetchall()
            schema = dict(rows)
            declared = {name: postgres.ARRAY_TYPES[kind] for name, kind in columns}
            assert declared == {name: schema[name] for name, _ in columns}
