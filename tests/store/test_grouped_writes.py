"""How the SQL stores group their queued writes: the same outcome as sending them one by one, in order."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from recovery.store.base import Statement, grouped_writes

ADD = "INSERT OR IGNORE INTO deadlines VALUES (?, ?)"
REMOVE = "DELETE FROM deadlines WHERE id = ?"
OTHER = "INSERT INTO history VALUES (?, ?)"
SCOPES = "DELETE FROM scopes WHERE scope_id = ?"


def apply(table: dict[str, Any], sql: str, params: tuple[Any, ...]) -> None:
    """What SQL does to a table keyed by its first column (inserts ignored when the key is there)."""
    if sql == ADD:
        table.setdefault(params[0], params[1])
    elif sql == REMOVE:
        table.pop(params[0], None)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add_deadline"), st.sampled_from("abcd"), st.integers(0, 9)),
        st.tuples(st.just("remove_deadline"), st.sampled_from("abcd"), st.just(0)),
        st.tuples(st.just("append_history"), st.sampled_from("abcd"), st.integers(0, 9)),
        st.tuples(st.just("set_scope_customers"), st.sampled_from("abcd"), st.just(0)),
    ),
    max_size=40,
)


@given(operations, st.dictionaries(st.sampled_from("abcd"), st.integers(100, 109)))
def test_grouped_deadline_writes_end_as_in_queued_order(
    ops: list[tuple[str, str, int]], before: dict[str, int]
) -> None:
    sql = {"add_deadline": ADD, "remove_deadline": REMOVE, "append_history": OTHER, "set_scope_customers": SCOPES}
    queued: list[Statement] = [
        (what, sql[what], (key, value) if what in ("add_deadline", "append_history") else (key,))
        for what, key, value in ops
    ]
    expected = dict(before)
    for _, statement, params in queued:
        apply(expected, statement, tuple(params))
    got = dict(before)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    for statement, rows in grouped_writes(queued):
        for row in rows:
            apply(got, statement, tuple(row))
            sent.append((statement, tuple(row)))
    assert got == expected
    # Every other write is sent once, in its queued order among those of its statement; the deadline groups hold
    # each key at most once.
    for kind in (OTHER, SCOPES):
        assert [row for s, row in sent if s == kind] == [tuple(p) for w, s, p in queued if s == kind]
    for kind in (ADD, REMOVE):
        keys = [row[0] for s, row in sent if s == kind]
        assert len(keys) == len(set(keys))


def test_keyed_writes_go_as_one_group_of_deletes_then_one_of_inserts() -> None:
    queued: list[Statement] = [
        ("add_deadline", ADD, ("a", 1)),
        ("remove_deadline", REMOVE, ("b",)),
        ("set_scope_customers", SCOPES, ("s",)),
        ("add_deadline", ADD, ("c", 2)),
        ("remove_deadline", REMOVE, ("a",)),
        ("add_deadline", ADD, ("a", 3)),
    ]
    assert grouped_writes(queued) == [
        (SCOPES, [("s",)]),
        (REMOVE, [("b",), ("a",)]),
        (ADD, [("c", 2), ("a", 3)]),
    ]
