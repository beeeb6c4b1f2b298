"""The SQL store over each dialect: what the two share beyond the contract (queued writes, messages, transactions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recovery.exceptions import StoreError
from recovery.store.postgres import PostgresStore
from recovery.store.sql import KnownIds, SqlStore
from recovery.store.sqlite import SqliteStore
from tests.store.test_stores import task

SqlStoreFactory = Callable[[], SqlStore]


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStoreFactory]:
    """SQL stores of one dialect; those one test makes share their data."""
    made: list[SqlStore] = []
    url: str = request.getfixturevalue("postgres_database") if request.param == "postgres" else ""

    def make() -> SqlStore:
        store: SqlStore = SqliteStore(tmp_path / "r.db") if request.param == "sqlite" else PostgresStore(url)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


class TestMessages:
    def test_a_read_after_a_failing_queued_write_names_both(self, sql_store_factory: SqlStoreFactory) -> None:
        store = sql_store_factory()
        store.outbox_add(None, None, b"v")  # type: ignore[arg-type]  # topic is NOT NULL
        with pytest.raises(StoreError, match=r"store '.*': outbox_size \(sent after queued outbox_add\) failed: "):
            store.outbox_size()
        store.rollback()
        assert store.outbox_size() == 0

    def test_a_failing_statement_names_its_operation(self, sql_store_factory: SqlStoreFactory) -> None:
        store = sql_store_factory()
        with pytest.raises(StoreError, match=r"store '.*': scope_log_add failed: "):
            store.scope_log_add(1.0, None)  # type: ignore[arg-type]  # event is NOT NULL
        store.rollback()


class TestTransactions:
    def test_close_never_commits_and_twice_is_fine(self, sql_store_factory: SqlStoreFactory) -> None:
        store = sql_store_factory()
        store.add_event("e1", 0.0)
        store.commit()
        store.add_event("e2", 0.0)
        store.close()
        store.close()
        with pytest.raises(StoreError, match="rollback failed: the store is closed"):
            store.rollback()
        again = sql_store_factory()
        assert (again.add_event("e1", 0.0), again.add_event("e2", 0.0)) == (False, True)

    def test_an_effect_stored_and_rolled_back_is_new_again(self, sql_store_factory: SqlStoreFactory) -> None:
        store = sql_store_factory()
        assert store.put_effect(task("t1")) is True
        assert store.put_effect(task("t1")) is False
        store.rollback()
        assert store.put_effect(task("t1")) is True
        store.commit()
        store.rollback()
        assert store.put_effect(task("t1")) is False


class TestKnownIds:
    def test_bounded_oldest_first(self) -> None:
        known = KnownIds(2)
        assert [known.add(i) for i in ("a", "b", "a", "c", "a")] == [True, True, False, True, True]

    def test_a_rollback_forgets_the_uncommitted_ones(self) -> None:
        known = KnownIds(10)
        known.add("a")
        known.committed()
        known.add("b")
        known.rolled_back()
        assert (known.add("a"), known.add("b")) == (False, True)
