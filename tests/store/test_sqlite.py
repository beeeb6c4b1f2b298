"""The SQLite store: what is its own (a file, its transaction, the checkpoint thread) beyond the contract."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from recovery.config import Settings
from recovery.engine import Engine
from recovery.events import Event, Occurrence
from recovery.exceptions import StoreError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import MemoryStore, SqliteStore, open_service_store, open_store
from recovery.store import sql as sql_module
from recovery.store import sqlite as sqlite_module
from recovery.store.case_desk import WATCHED_TASKS
from recovery.store.cases import CANCEL_TASKS, JOIN_CLAIMED
from recovery.store.records import Snooze
from recovery.store.sqlite import MIGRATIONS
from recovery.store.statements import Query
from tests.conftest import process_all, random_stream
from tests.store.older import sqlite_at
from tests.store.test_stores import occ, task


def queries(statements: list[str]) -> list[str]:
    """The statements traced, without those that begin and end transactions."""
    return [s for s in statements if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))]


class TestSqlite:
    def test_preloaded_customers_are_answered_without_a_query(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "r.db")
        store.put_profile("C1", 5.0, {"tier": "gold"})
        store.set_cooldown("C1", "p", 7.0)
        store.append_history(occ("e1", 10.0))
        store.commit()
        store.preload_customers(["C1", "C2"], since=5.0)
        statements: list[str] = []
        store.dialect.db.set_trace_callback(statements.append)
        assert store.get_profile("C1") == (5.0, {"tier": "gold"})
        assert (store.get_profile("C2"), store.get_cooldowns("C2"), store.history("C2", 5.0)) == (None, {}, [])
        assert (store.get_cooldowns("C1"), [o.id for o in store.history("C1", 6.0)]) == ({"p": 7.0}, ["e1"])
        assert queries(statements) == []
        assert [o.id for o in store.history("C1", 0.0)] == ["e1"]  # before what was preloaded: read
        assert len(queries(statements)) == 1
        store.commit()  # the transaction ends: so does the preload
        statements.clear()
        assert store.get_profile("C1") == (5.0, {"tier": "gold"})
        assert len(queries(statements)) == 1

    def test_a_customers_case_and_snoozes_stay_preloaded_after_its_history_profile_and_cooldown_writes(
        self, tmp_path: Path
    ) -> None:
        store = SqliteStore(tmp_path / "r.db")
        store.put_snooze("C1", Snooze("p", 99.0, "asked", "ops"))
        store.commit()
        store.preload_customers(["C1"], since=5.0)
        statements: list[str] = []
        store.dialect.db.set_trace_callback(statements.append)
        store.append_history(occ("e1", 10.0))  # what the engine writes about a customer before it asks for these
        store.put_profile("C1", 10.0, {"tier": "gold"})
        store.set_cooldown("C1", "p", 10.0)
        assert (store.open_case("C1"), list(store.snoozes("C1"))) == (None, ["p"])
        assert queries(statements) == []  # was a query each, for every customer an event matched
        store.put_snooze("C1", Snooze("q", 99.0, "again", "ops"))  # a snooze written: read again
        assert sorted(store.snoozes("C1")) == ["p", "q"]
        assert len([s for s in queries(statements) if "snooze" in s.lower() and s.startswith("SELECT")]) == 1

    def test_survives_reopening(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        store = SqliteStore(path)
        store.add_event("e1", 0.0)
        store.put_effect(task("tsk-1"))
        store.commit()
        store.close()
        again = SqliteStore(path)
        assert again.add_event("e1", 0.0) is False
        assert [e.id for e in again.effects()] == ["tsk-1"]
        assert again.schema_version == len(MIGRATIONS)
        again.close()

    def test_a_watermark_of_an_older_version_holds_for_any_record_after_the_migration(self, tmp_path: Path) -> None:
        path = tmp_path / "old.db"
        sqlite_at(path, 9, ("INSERT INTO watermarks VALUES ('events/0', 9e999), ('events/1', 5.0)", ()))
        store = SqliteStore(path)
        inf = float("inf")
        assert store.watermarks("events/") == {"events/0": (inf, -inf), "events/1": (5.0, -inf)}
        store.close()

    def test_uncommitted_writes_are_lost_on_a_crash(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        store = SqliteStore(path)
        store.add_event("e1", 0.0)
        store.commit()
        store.add_event("e2", 0.0)
        store.close()  # as a crash: no commit
        again = SqliteStore(path)
        assert again.add_event("e1", 0.0) is False
        assert again.add_event("e2", 0.0) is True
        again.close()

    def test_an_outbox_claim_rolled_back_is_claimed_again(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "r.db")
        store.outbox_add("t", "k", b"v")
        store.commit()
        assert len(store.outbox_claim("a", 10, 1.0, 60.0)) == 1
        store.rollback()  # the claim did not stick
        assert [i.value for i in store.outbox_claim("b", 10, 1.0, 60.0)] == [b"v"]
        store.close()

    def test_a_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        SqliteStore(path).close()

        db = sqlite3.connect(path)
        db.execute("UPDATE schema_version SET version = 99")
        db.commit()
        db.close()
        with pytest.raises(StoreError, match="schema version 99, newer than this recovery"):
            SqliteStore(path)

    def test_an_unusable_path_says_where(self, tmp_path: Path) -> None:
        with pytest.raises(StoreError, match="cannot open the SQLite store at"):
            SqliteStore(tmp_path / "missing-dir" / "r.db")

    def test_a_queued_write_that_fails_is_named_at_commit(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "r.db")
        store.preload_events(["e1"])
        assert store.add_event("e1", 0.0) is True  # queued
        store.outbox_add(None, None, b"v")  # type: ignore[arg-type]  # topic is NOT NULL
        with pytest.raises(StoreError, match=r"queued add_event, outbox_add failed: NOT NULL constraint failed"):
            store.commit()
        store.rollback()
        assert store.add_event("e1", 0.0) is True  # the failed batch left nothing
        store.close()

    def test_a_writer_waits_for_its_turn_and_never_finds_the_database_locked(self, tmp_path: Path) -> None:
        # The service loop reads (its transaction begins), the API writes and commits meanwhile, then the loop
        # writes: with a deferred transaction the loop's write failed with "database is locked" (another writer
        # committed after its read began). Now the loop's transaction holds the write lock from its first statement
        # and the API's write waits for its turn.
        path = tmp_path / "r.db"
        SqliteStore(path).close()
        loop = SqliteStore(path)
        loop.history("C1", 0.0)  # the step's first statement
        api_done = threading.Event()
        failures: list[BaseException] = []

        def api_write() -> None:
            api = SqliteStore(path)
            try:
                api.add_audit(1.0, "ann", "claim")
                api.commit()
            except BaseException as exc:
                failures.append(exc)
            finally:
                api.close()
                api_done.set()

        thread = threading.Thread(target=api_write)
        thread.start()
        assert not api_done.wait(0.5)  # waiting for the loop's transaction to end, not failing
        loop.add_event("e1", 1.0)
        loop.commit()
        thread.join()
        assert failures == []
        assert [e.action for e in loop.audit()] == ["claim"] and loop.add_event("e1", 1.0) is False
        loop.close()

    def test_between_its_transactions_a_connection_holds_no_lock(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        loop = SqliteStore(path)
        loop.add_event("e1", 1.0)
        loop.commit()
        other = sqlite3.connect(path, timeout=0)  # another process, which would not wait
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO ledger VALUES ('e2', 2.0)")
        other.execute("COMMIT")
        other.close()
        assert loop.add_event("e2", 2.0) is False
        loop.close()

    def test_closing_never_commits(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        store = SqliteStore(path)
        store.add_event("e1", 1.0)
        store.close()
        again = SqliteStore(path)
        assert again.add_event("e1", 1.0) is True
        again.close()

    def test_queued_writes_keep_their_order_and_are_sent_before_a_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sql_module, "MAX_QUEUED_WRITES", 4)
        store = SqliteStore(tmp_path / "r.db")
        for n in range(6):
            store.put_profile("C1", float(n), {"tier": "gold", "n": n})
            store.set_scope_customers("s", {f"C{n}"})
        assert len(store._queued) == 18 % 4  # 18 queued, sent by fours: bounded
        assert store.get_profile("C1") == (5.0, {"tier": "gold", "n": 5})  # the last upsert wins
        assert store.scope_customers("s") == {"C5"}  # each replace after the one before
        assert store._queued == []
        store.close()


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.01)


def _fill(store: SqliteStore, rows: int) -> None:
    for n in range(rows):
        store.append_history(Occurrence(f"e{n}", "service.call", float(n), "C1", {"reason": "x" * 200}))
    store.commit()


class TestSqliteCheckpoints:
    """The service loop's store copies its write-ahead log into the database file from a thread of its own."""

    def test_the_thread_copies_the_log_into_the_database_file(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        store = SqliteStore(path, checkpoint_every_s=0.02)
        assert store.checkpointer is not None
        before = path.stat().st_size
        _fill(store, 2_000)  # about 150 pages: far below any automatic checkpoint
        checkpointer = store.checkpointer
        _wait_for(lambda: checkpointer.checkpoints >= 1, "a checkpoint")  # counted once SQLite has returned
        assert path.stat().st_size > before  # the log's pages are in the database file now
        assert checkpointer.failures == 0
        assert len(store.history("C1", 0.0)) == 2_000
        store.close()
        assert not store.checkpointer._thread.is_alive()
        reopened = SqliteStore(path)
        assert len(reopened.history("C1", 0.0)) == 2_000
        reopened.close()

    def test_without_the_thread_the_log_stays_in_the_wal_until_sqlite_checkpoints(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        store = SqliteStore(path)
        assert store.checkpointer is None
        before = path.stat().st_size
        _fill(store, 2_000)
        time.sleep(0.2)
        assert path.stat().st_size == before  # in the write-ahead log only: what the thread above copied
        store.close()

    def test_it_checkpoints_only_after_commits(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "r.db", checkpoint_every_s=0.01)
        assert store.checkpointer is not None
        time.sleep(0.2)
        assert store.checkpointer.checkpoints == 0  # nothing committed: nothing to copy
        _fill(store, 10)
        _wait_for(lambda: store.checkpointer is not None and store.checkpointer.checkpoints == 1, "one checkpoint")
        store.close()

    def test_a_failing_checkpoint_is_logged_and_tried_again(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        checkpointer = sqlite_module.Checkpointer(str(tmp_path), 0.01)  # a directory: SQLite cannot open it
        checkpointer.note_commit()
        _wait_for(lambda: checkpointer.failures >= 2, "two failed checkpoints")
        checkpointer.close()
        assert checkpointer.checkpoints == 0
        assert "background checkpoint failed; trying again" in caplog.text

    def test_a_run_of_failures_is_logged_once_then_its_end(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        # A full disk fails every turn for as long as it is full: one line when the run begins, one when it ends.
        caplog.set_level(logging.INFO, logger="recovery.store.sqlite")
        folder = tmp_path / "later"  # not there yet: SQLite cannot open the file
        checkpointer = sqlite_module.Checkpointer(str(folder / "r.db"), 0.005)
        checkpointer.note_commit()
        _wait_for(lambda: checkpointer.failures >= 20, "twenty failed checkpoints")
        folder.mkdir()
        _wait_for(lambda: checkpointer.checkpoints >= 1, "a checkpoint once the file can be opened")
        checkpointer.close()
        failed = [r for r in caplog.records if r.getMessage() == "background checkpoint failed; trying again"]
        assert len(failed) == 1 and failed[0].failures == 1
        back = [r for r in caplog.records if r.getMessage() == "background checkpoints work again"]
        assert len(back) == 1 and back[0].failures == checkpointer.failures >= 20

    def test_a_run_of_failures_is_logged_again_after_a_while(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        checkpointer = sqlite_module.Checkpointer(str(tmp_path), 0.005, log_every_s=0.05)  # a directory: fails
        checkpointer.note_commit()
        _wait_for(lambda: checkpointer.failures >= 60, "sixty failed checkpoints")  # at least 0.3 s
        checkpointer.close()
        failed = [r for r in caplog.records if r.getMessage() == "background checkpoint failed; trying again"]
        assert 2 <= len(failed) < checkpointer.failures / 2
        assert failed[-1].failures > failed[0].failures == 1

    def test_an_in_memory_store_has_no_thread(self) -> None:
        store = SqliteStore(":memory:", checkpoint_every_s=0.01)
        assert store.checkpointer is None
        store.close()

    def test_open_store_passes_the_interval_to_sqlite_only(self, tmp_path: Path) -> None:
        store = open_store(f"sqlite:///{tmp_path / 'r.db'}", checkpoint_every_s=0.5)
        assert isinstance(store, SqliteStore) and store.checkpointer is not None
        assert store.checkpointer.every_s == 0.5
        store.close()
        assert isinstance(open_store("memory://", checkpoint_every_s=0.5), MemoryStore)

    def test_the_service_store_follows_the_setting(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'r.db'}"
        for every_s, expected in (("0.25", 0.25), ("0", None)):
            settings = Settings.load(
                None, environ={"RECOVERY_STORE_URL": url, "RECOVERY_SQLITE_CHECKPOINT_EVERY_S": every_s}
            )
            store = open_service_store(settings)
            assert isinstance(store, SqliteStore)
            assert (store.checkpointer.every_s if store.checkpointer else None) == expected
            store.close()


@pytest.mark.parametrize("cut", [100, 400])
def test_engine_restarted_on_sqlite_gives_the_uninterrupted_result(
    shipped_playbooks: list[CompiledPlaybook], tmp_path: Path, cut: int
) -> None:
    raws = list(random_stream(21, customers=25, events=500))
    whole = [
        e.to_json() for e in process_all(Engine(shipped_playbooks, MemoryStore()), (Event.from_dict(r) for r in raws))
    ]
    path = tmp_path / "r.db"
    store = SqliteStore(path)
    first = process_all(Engine(shipped_playbooks, store), (Event.from_dict(r) for r in raws[:cut]))
    store.commit()
    store.close()
    reopened = SqliteStore(path)
    # The whole stream again, as after a crash before offsets were committed: duplicates are ignored.
    rest = process_all(Engine(shipped_playbooks, reopened), (Event.from_dict(r) for r in raws))
    assert [e.to_json() for e in first + rest] == whole
    assert [e.to_json() for e in reopened.effects()] == whole
    reopened.close()


@pytest.mark.parametrize("statement", [JOIN_CLAIMED, CANCEL_TASKS, WATCHED_TASKS], ids=lambda s: s.name)
def test_tasks_asked_for_by_a_list_are_read_by_that_list_not_by_status(tmp_path: Path, statement: Query) -> None:
    """Without statistics, SQLite answered `id IN (list) AND status = 'open'` by reading every open task through
    the status index: the join of a commit's tasks to their cases took longer with every open task (a sixth of the
    loop at 2,000 events/s, and growing)."""
    store = SqliteStore(tmp_path / "r.db")
    sql = store._sql[statement]
    plan = store.dialect.db.execute(f"EXPLAIN QUERY PLAN {sql}", ['["t1"]'] * sql.count("?")).fetchall()
    store.close()
    tasks = [row[3] for row in plan if " tasks" in row[3] or " t " in row[3]]
    assert tasks and not [step for step in tasks if "tasks_by_status" in step], plan
