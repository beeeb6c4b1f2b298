"""One suite, every store: what the engine relies on to rebuild state and never repeat an effect."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from recovery.config import Settings
from recovery.effects import Gesture, Task
from recovery.engine import Engine
from recovery.events import Event, Occurrence
from recovery.exceptions import StoreError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import Deadline, MemoryStore, SqliteStore, Store, open_service_store, open_store
from recovery.store import postgres as postgres_module
from recovery.store import sqlite as sqlite_module
from recovery.store.postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from recovery.store.postgres import PostgresStore
from recovery.store.sqlite import MIGRATIONS
from tests.conftest import free_ports, process_all, random_stream

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Stores of one kind; those one test makes share their data (the same file, the same database)."""
    made: list[Store] = []
    # Only the postgres runs start the session's server (or wait for it).
    url: str = request.getfixturevalue("postgres_database") if request.param == "postgres" else ""

    def make() -> Store:
        store: Store
        if request.param == "memory":
            store = MemoryStore()
        elif request.param == "sqlite":
            store = SqliteStore(tmp_path / "recovery.db")
        else:
            store = PostgresStore(url)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def occ(event_id: str, ts: float, customer: str = "C1", type: str = "service.call") -> Occurrence:
    return Occurrence(event_id, type, ts, customer, {"reason": "billing"})


def task(effect_id: str) -> Task:
    return Task(
        id=effect_id,
        playbook="p",
        playbook_version=1,
        customer_id="C1",
        queue="q",
        priority="P2",
        title="t",
        reason="r",
        evidence=["e1"],
        due_at="2026-11-02T10:00:00Z",
        created_at="2026-11-02T09:00:00Z",
        talking_points=[],
    )


class TestContract:
    def test_an_effect_rolled_back_can_be_stored_again(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        if isinstance(store, MemoryStore):
            pytest.skip("the memory store has no transactions")
        assert store.put_effect(task("t1")) is True
        store.rollback()
        assert store.put_effect(task("t1")) is True
        store.commit()
        assert store.put_effect(task("t1")) is False
        assert [e.id for e in store.effects()] == ["t1"]

    def test_preloaded_customers_answer_like_the_plain_reads(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.put_profile("C1", 5.0, {"tier": "gold"})
        store.set_cooldown("C1", "p", 7.0)
        for n, ts in enumerate((1.0, 10.0, 20.0)):
            store.append_history(occ(f"e{n}", ts))
        store.commit()
        store.preload_customers(["C1", "C2"], since=5.0)
        assert store.get_profile("C1") == (5.0, {"tier": "gold"})
        assert store.get_profile("C2") is None
        assert store.get_cooldowns("C1") == {"p": 7.0}
        assert [o.id for o in store.history("C1", 10.0)] == ["e1", "e2"]
        assert [o.id for o in store.history("C1", 0.0)] == ["e0", "e1", "e2"]  # earlier than preloaded: read
        # Writes in the same transaction are seen, not the preloaded copy.
        store.put_profile("C1", 30.0, {"tier": "platinum"})
        store.set_cooldown("C1", "p", 31.0)
        store.append_history(occ("e3", 32.0))
        assert store.get_profile("C1") == (30.0, {"tier": "platinum"})
        assert store.get_cooldowns("C1") == {"p": 31.0}
        assert [o.id for o in store.history("C1", 10.0)] == ["e1", "e2", "e3"]

    def test_preloaded_ledger_answers_like_the_plain_one(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        assert store.add_event("old", 0.0) is True
        store.commit()
        store.preload_events(["old", "new", "twice"])
        assert [store.add_event(i, 0.0) for i in ("old", "new", "twice", "twice", "unlisted", "unlisted")] == [
            False,
            True,
            True,
            False,
            True,
            False,
        ]
        store.commit()
        store.preload_events(["new"])
        assert store.add_event("new", 0.0) is False

    def test_scope_log_applied_sets_and_watermarks(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        late = store.scope_log_add(200.0, '{"id":"o2"}')
        early = store.scope_log_add(100.0, '{"id":"o1"}')
        assert store.scope_log(float("-inf")) == [(early, 100.0, '{"id":"o1"}'), (late, 200.0, '{"id":"o2"}')]
        assert store.scope_log(150.0) == [(late, 200.0, '{"id":"o2"}')]
        store.mark_scope_applied("events/0", early)
        store.mark_scope_applied("events/0", early)
        assert store.scope_applied("events/0") == {early}
        assert store.scope_applied("events/1") == set()
        store.set_watermark("events/0", 10.0)
        store.set_watermark("events/0", 20.0)
        store.set_watermark("events/1", float("inf"))
        store.set_watermark("other/0", 5.0)
        assert store.watermarks("events/") == {"events/0": 20.0, "events/1": float("inf")}
        store.commit()
        store.prune_history(150.0)  # what no playbook can look back to goes, applied marks with it
        assert [seq for seq, _, _ in store.scope_log(float("-inf"))] == [late]
        assert store.scope_applied("events/0") == set()

    def test_outbox_is_first_in_first_out_and_taken_once(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.outbox_add("recovery.tasks", "C1", b'{"id":"t1"}', (("h", b"\x00\xff"),))
        store.outbox_add("recovery.dlq", None, b"\xff not json")
        store.outbox_add("recovery.tasks", "C2", b'{"id":"t2"}')
        store.commit()
        assert store.outbox_size() == 3
        first = store.outbox_take(2)
        assert [(i.topic, i.key, i.value, i.headers) for i in first] == [
            ("recovery.tasks", "C1", b'{"id":"t1"}', (("h", b"\x00\xff"),)),
            ("recovery.dlq", None, b"\xff not json", ()),
        ]
        store.commit()
        rest = store.outbox_take(10)
        assert [i.value for i in rest] == [b'{"id":"t2"}']
        assert rest[0].seq > first[-1].seq
        store.commit()
        assert store.outbox_take(10) == []

    def test_ledger_sees_each_event_once(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        assert store.add_event("e1", 0.0) is True
        assert store.add_event("e1", 0.0) is False
        assert store.add_event("e2", 0.0) is True

    def test_ledger_forgets_ids_of_events_before_the_prune(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        day = 86400.0
        assert store.add_event("old", 1.5 * day) is True
        assert store.add_event("new", 3.5 * day) is True
        store.commit()
        assert store.prune_ledger(3 * day) >= 1
        store.commit()
        assert store.add_event("old", 1.5 * day) is True  # forgotten: recorded again
        assert store.add_event("new", 3.5 * day) is False  # kept
        store.preload_events(["old", "new"])
        assert store.add_event("old", 1.5 * day) is False
        assert store.add_event("new", 3.5 * day) is False

    def test_ledger_prunes_days_that_come_back_late(self, store_factory: StoreFactory) -> None:
        """Events of a day already pruned (late events) are recorded again, and pruned again, as often as it comes."""
        store = store_factory()
        day = 86400.0
        assert store.add_event("old", 1.5 * day) is True
        assert store.add_event("new", 5.5 * day) is True
        store.commit()
        for round_ in range(3):
            assert store.prune_ledger(3 * day) >= 1
            store.commit()
            assert store.add_event("old", 1.5 * day) is True  # forgotten each time
            assert store.add_event(f"late{round_}", 1.2 * day) is True
            assert store.add_event(f"late{round_}", 1.2 * day) is False
            store.commit()
        assert store.add_event("new", 5.5 * day) is False

    def test_history_is_by_customer_ordered_and_pruned(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        for o in (occ("a", 10), occ("b", 30), occ("c", 20), occ("x", 15, customer="C2")):
            store.append_history(o)
        assert [o.id for o in store.history("C1", since=0)] == ["a", "c", "b"]
        assert [o.id for o in store.history("C1", since=20)] == ["c", "b"]
        assert store.history("C1", since=20)[0].data == {"reason": "billing"}
        assert store.prune_history(before=20) == 2
        assert [o.id for o in store.history("C1", since=0)] == ["c", "b"]
        assert store.history("C2", since=0) == []

    def test_pruning_reaches_late_history(self, store_factory: StoreFactory) -> None:
        """An occurrence appended after newer ones (a late event) is pruned all the same, at once or later."""
        store = store_factory()
        for o in (occ("a", 100), occ("b", 200, customer="C2"), occ("late", 50, customer="C3"), occ("d", 300)):
            store.append_history(o)
        store.prune_history(before=150)
        assert [o.id for o in store.history("C1", since=0)] == ["d"]
        assert [o.id for o in store.history("C2", since=0)] == ["b"]
        store.prune_history(before=250)
        assert store.history("C3", since=0) == []
        assert store.history("C2", since=0) == []
        assert [o.id for o in store.history("C1", since=0)] == ["d"]

    def test_profiles_and_regions(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        assert store.get_profile("C1") is None
        store.put_profile("C1", 5.0, {"tier": "gold", "region": "north"})
        store.put_profile("C2", 6.0, {"tier": "silver", "region": "north"})
        assert list(store.customers_in_region("north")) == ["C1", "C2"]
        store.put_profile("C1", 7.0, {"tier": "gold", "region": "south"})
        assert store.get_profile("C1") == (7.0, {"tier": "gold", "region": "south"})
        assert list(store.customers_in_region("north")) == ["C2"]
        assert list(store.customers_in_region("south")) == ["C1"]

    def test_a_region_is_read_once_per_transaction_until_a_profile_is_written(
        self, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store, other = store_factory(), store_factory()
        if isinstance(store, MemoryStore):
            pytest.skip("the memory store keeps its regions indexed")
        assert isinstance(store, SqliteStore | PostgresStore)
        store.put_profile("C1", 5.0, {"tier": "gold", "region": "north"})
        store.commit()
        reads: list[str] = []
        read = store._read_region
        monkeypatch.setattr(store, "_read_region", lambda region: reads.append(region) or read(region))
        for _ in range(6):  # an outage applied to six partitions
            assert list(store.customers_in_region("north")) == ["C1"]
        assert reads == ["north"]
        store.commit()  # another instance's profiles count from the next transaction on
        other.put_profile("C2", 5.0, {"tier": "gold", "region": "north"})
        other.commit()
        assert list(store.customers_in_region("north")) == ["C1", "C2"]
        store.put_profile("C3", 6.0, {"tier": "gold", "region": "north"})
        assert list(store.customers_in_region("north")) == ["C1", "C2", "C3"]
        assert reads == ["north"] * 3

    def test_cooldowns(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.set_cooldown("C1", "p", 1.0)
        store.set_cooldown("C1", "p", 2.0)
        store.set_cooldown("C1", "q", 3.0)
        assert store.get_cooldowns("C1") == {"p": 2.0, "q": 3.0}
        assert store.get_cooldowns("C2") == {}

    def test_deadlines_keep_their_first_event(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        late = Deadline("d2", 20.0, "p", "C1", "K2", occ("k2", 2.0, type="complaint.opened"))
        early = Deadline("d1", 10.0, "p", "C1", "K1", occ("k1", 1.0, type="complaint.opened"))
        store.add_deadline(late)
        store.add_deadline(early)
        pending = store.pending_deadlines()
        assert [d.id for d in pending] == ["d1", "d2"]
        assert (pending[0].first.id, pending[0].first.type, pending[0].first.data) == (
            "k1",
            "complaint.opened",
            {"reason": "billing"},
        )
        store.remove_deadline("d1")
        store.remove_deadline("nope")
        assert [d.id for d in store.pending_deadlines()] == ["d2"]

    def test_deadlines_added_and_removed_in_one_batch_end_as_in_that_order(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        first = [Deadline(f"d{n}", 10.0 + n, "p", "C1", f"K{n}", occ(f"a{n}", 1.0)) for n in range(5)]
        second = [Deadline(f"d{n}", 50.0 + n, "p", "C1", f"K{n}", occ(f"b{n}", 2.0)) for n in range(5)]
        store.add_deadline(first[0])
        store.commit()
        # One batch: what the SQL stores queue and send grouped (deletes, then inserts) must end the same.
        store.add_deadline(second[0])  # d0 is there: ignored
        store.remove_deadline("d0")
        store.add_deadline(second[0])  # back, with the second content
        store.add_deadline(first[1])
        store.remove_deadline("d1")  # added then removed: gone
        store.add_deadline(first[2])
        store.add_deadline(second[2])  # the first add wins
        store.remove_deadline("d3")  # never added
        store.add_deadline(first[4])
        store.remove_deadline("d4")
        store.add_deadline(second[4])
        store.add_deadline(first[4])  # ignored: the second content stays
        store.commit()
        pending = {d.id: (d.due, d.first.id) for d in store.pending_deadlines()}
        assert pending == {"d0": (50.0, "b0"), "d2": (12.0, "a2"), "d4": (54.0, "b4")}

    def test_scopes(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.set_scope_customers("outage:O1", {"C2", "C1"})
        assert store.scope_customers("outage:O1") == {"C1", "C2"}
        store.set_scope_customers("outage:O1", set())
        assert store.scope_customers("outage:O1") == set()
        many = {f"C{n:05d}" for n in range(2500)} | {'O\'Brien "quoted"', "ü"}
        store.set_scope_customers("outage:O2", many)
        assert store.scope_customers("outage:O2") == many

    def test_an_effect_is_stored_once(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        assert store.put_effect(task("tsk-1")) is True
        assert store.put_effect(task("tsk-1")) is False
        gesture = Gesture(
            id="gst-1",
            playbook="p",
            playbook_version=1,
            customer_id="C1",
            type="apology",
            amount=0.0,
            currency="USD",
            status="issued",
            requires_approval=False,
            reason="r",
            evidence=[],
            created_at="x",
        )
        assert store.put_effect(gesture) is True
        assert [e.id for e in store.effects()] == ["tsk-1", "gst-1"]
        assert store.effects()[0] == task("tsk-1")


class TestSqlite:
    def test_preloaded_customers_are_answered_without_a_query(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "r.db")
        store.put_profile("C1", 5.0, {"tier": "gold"})
        store.set_cooldown("C1", "p", 7.0)
        store.append_history(occ("e1", 10.0))
        store.commit()
        store.preload_customers(["C1", "C2"], since=5.0)
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        assert store.get_profile("C1") == (5.0, {"tier": "gold"})
        assert (store.get_profile("C2"), store.get_cooldowns("C2"), store.history("C2", 5.0)) == (None, {}, [])
        assert (store.get_cooldowns("C1"), [o.id for o in store.history("C1", 6.0)]) == ({"p": 7.0}, ["e1"])
        assert statements == []
        assert [o.id for o in store.history("C1", 0.0)] == ["e1"]  # before what was preloaded: read
        assert len(statements) == 1
        store.commit()  # the transaction ends: so does the preload
        statements.clear()
        assert store.get_profile("C1") == (5.0, {"tier": "gold"})
        assert len(statements) == 1

    def test_survives_reopening(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        store = SqliteStore(path)
        store.add_event("e1", 0.0)
        store.put_effect(task("tsk-1"))
        store.close()
        again = SqliteStore(path)
        assert again.add_event("e1", 0.0) is False
        assert [e.id for e in again.effects()] == ["tsk-1"]
        assert again.schema_version == len(MIGRATIONS)
        again.close()

    def test_uncommitted_writes_are_lost_on_a_crash(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        store = SqliteStore(path)
        store.add_event("e1", 0.0)
        store.commit()
        store.add_event("e2", 0.0)
        store._db.close()  # a crash: no commit
        again = SqliteStore(path)
        assert again.add_event("e1", 0.0) is False
        assert again.add_event("e2", 0.0) is True
        again.close()

    def test_an_outbox_take_rolled_back_is_taken_again(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "r.db")
        store.outbox_add("t", "k", b"v")
        store.commit()
        assert len(store.outbox_take(10)) == 1
        store.rollback()  # publishing failed
        assert [i.value for i in store.outbox_take(10)] == [b"v"]
        store.close()

    def test_a_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "r.db"
        SqliteStore(path).close()
        import sqlite3

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

    def test_queued_writes_keep_their_order_and_are_sent_before_a_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sqlite_module, "MAX_QUEUED_WRITES", 4)
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


class TestPostgres:
    def test_survives_reopening(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.add_event("e1", 0.0)
        store.put_effect(task("tsk-1"))
        store.close()
        again = open_store(postgres_database)
        assert isinstance(again, PostgresStore)
        assert again.add_event("e1", 0.0) is False
        assert [e.id for e in again.effects()] == ["tsk-1"]
        assert again.schema_version == len(POSTGRES_MIGRATIONS)
        again.close()

    def test_uncommitted_writes_are_lost_on_a_crash(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.add_event("e1", 0.0)
        store.commit()
        store.add_event("e2", 0.0)
        store._conn.close()  # a crash: no commit
        again = PostgresStore(postgres_database)
        assert again.add_event("e1", 0.0) is False
        assert again.add_event("e2", 0.0) is True
        again.close()

    def test_an_outbox_take_rolled_back_is_taken_again(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.outbox_add("t", "k", b"v")
        store.commit()
        assert len(store.outbox_take(10)) == 1
        store.rollback()  # publishing failed
        assert [i.value for i in store.outbox_take(10)] == [b"v"]
        store.close()

    def test_a_newer_schema_is_refused(self, postgres_database: str) -> None:
        PostgresStore(postgres_database).close()
        with psycopg.connect(postgres_database, autocommit=True) as db:
            db.execute("UPDATE schema_version SET version = 99")
        with pytest.raises(StoreError, match="schema version 99, newer than this recovery"):
            PostgresStore(postgres_database)

    def test_instances_opening_at_once_migrate_once(self, postgres_database: str) -> None:
        opened: list[PostgresStore] = []
        failures: list[BaseException] = []

        def open_one() -> None:
            try:
                opened.append(PostgresStore(postgres_database))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert [store.schema_version for store in opened] == [len(POSTGRES_MIGRATIONS)] * 4
        for store in opened:
            store.close()

    def test_an_unreachable_server_names_the_host_not_the_password(self) -> None:
        url = f"postgresql://alice:s3cret-pw@127.0.0.1:{free_ports(1)[0]}/recovery?password=other-pw"
        with pytest.raises(StoreError, match=r"cannot open the PostgreSQL store at .*127\.0\.0\.1") as caught:
            PostgresStore(url, connect_timeout_s=2)
        assert "alice@127.0.0.1" in str(caught.value)
        assert "s3cret-pw" not in str(caught.value)
        assert "other-pw" not in str(caught.value)

    def test_a_missing_database_is_named(self, postgres_url: str) -> None:
        url = postgres_url.replace("postgres@", "postgres:pw-123@").rsplit("/", 1)[0] + "/no_such_db"
        with pytest.raises(StoreError, match='database "no_such_db" does not exist') as caught:
            PostgresStore(url)
        assert "pw-123" not in str(caught.value)

    def test_a_lost_connection_raises_then_rollback_reconnects(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.add_event("e1", 0.0)
        store.commit()
        store.add_event("e2", 0.0)
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
        with pytest.raises(StoreError, match=r"PostgreSQL store .*: add_event failed"):
            store.add_event("e3", 0.0)
        store.rollback()
        assert store.add_event("e1", 0.0) is False
        assert store.add_event("e2", 0.0) is True  # lost with the connection
        store.close()

    def test_a_queued_write_that_fails_is_named_at_commit(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.add_event("e1", 0.0)
        store.outbox_add(None, None, b"v")  # type: ignore[arg-type]  # topic is NOT NULL
        with pytest.raises(StoreError, match=r"queued outbox_add failed: null value in column \"topic\""):
            store.commit()
        store.rollback()
        assert store.add_event("e1", 0.0) is True
        store.close()

    def test_queued_writes_are_sent_in_bounded_batches(
        self, postgres_database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(postgres_module, "MAX_QUEUED_WRITES", 3)
        store = PostgresStore(postgres_database)
        for n in range(5):
            store.outbox_add("t", None, b"%d" % n)
        assert len(store._queued) == 2
        assert store.outbox_size() == 5
        store.close()

    def test_grouped_inserts_go_as_one_statement_each_in_queued_order(
        self, postgres_database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = PostgresStore(postgres_database)
        sent: list[str] = []
        execute = store._conn.execute

        def spy(query: str, *args: object, **kwargs: object) -> object:
            sent.append(query)
            return execute(query, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store._conn, "execute", spy)
        for n in range(7):
            store.append_history(Occurrence(f"e{n}", "service.call", 5.0, "C-1", {"n": n}))
            store.outbox_add("t", f"k{n}" if n % 2 else None, b"%d" % n)
        store.commit()
        assert len([q for q in sent if q.startswith("INSERT INTO history")]) == 1
        assert len([q for q in sent if q.startswith("INSERT INTO outbox")]) == 1
        # Same time: the order they were written in is kept (the store's sequence), across statements.
        assert [o.id for o in store.history("C-1", 0.0)] == [f"e{n}" for n in range(7)]
        assert [o.data for o in store.history("C-1", 0.0)] == [{"n": n} for n in range(7)]
        taken = [(i.topic, i.key, i.value, i.headers) for i in store.outbox_take(100)]
        assert taken == [("t", f"k{n}" if n % 2 else None, b"%d" % n, ()) for n in range(7)]
        store.close()

    def test_grouped_upserts_keep_the_last_row_of_each_key(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.put_profile("C1", 1.0, {"tier": "gold", "region": "north"})
        store.commit()
        for n in range(3):  # C1 three times in one statement: DO UPDATE alone would refuse it
            store.put_profile("C1", 2.0 + n, {"tier": "gold", "n": n, "region": "south" if n < 2 else None})
            store.put_profile(f"C{n + 2}", 5.0, {"tier": "silver"})
            store.set_cooldown("C1", "pb", float(n))
        store.set_watermark("w", 1.0)
        store.set_watermark("w", 3.0)
        store.commit()
        assert store.get_profile("C1") == (4.0, {"tier": "gold", "n": 2, "region": None})
        assert store.get_profile("C3") == (5.0, {"tier": "silver"})
        assert list(store.customers_in_region("north")) == list(store.customers_in_region("south")) == []
        assert store.get_cooldowns("C1") == {"pb": 2.0}
        assert store.watermarks("w") == {"w": 3.0}
        store.close()

    def test_a_failing_row_of_a_grouped_insert_is_named_at_commit(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.outbox_add("t", None, b"ok")
        store.outbox_add(None, None, b"v")  # type: ignore[arg-type]  # topic is NOT NULL
        with pytest.raises(StoreError, match=r"queued outbox_add failed: null value in column \"topic\""):
            store.commit()
        store.rollback()
        assert store.outbox_size() == 0
        store.close()

    def test_bulk_statements(self) -> None:
        tables = {
            "ledger": [("event_id", "text"), ("ts", "double precision")],
            "watermarks": [("stream", "text"), ("ts", "double precision")],
            "profiles": [("customer_id", "text"), ("ts", "double precision"), ("data", "text")],
        }
        bulk = postgres_module.bulk_statement("INSERT INTO ledger VALUES (%s, %s) ON CONFLICT DO NOTHING", tables)
        assert bulk == postgres_module.Bulk(
            'INSERT INTO ledger ("event_id", "ts") SELECT "event_id", "ts" FROM unnest(%b::text[], '
            '%b::double precision[]) WITH ORDINALITY AS bulk("event_id", "ts", bulk_row) ORDER BY bulk_row '
            "ON CONFLICT DO NOTHING",
            2,
            floats=(1,),
        )
        assert bulk.params([("a", 1.0), ("b", 2), ("a", 3.0)]) == [["a", "b", "a"], [1.0, 2.0, 3.0]]
        assert bulk.params([("a", None), ("b", 2)]) == [["a", "b"], [None, 2.0]]
        assert [type(v) for v in bulk.params([("b", 2), ("c", 2.5)])[1]] == [float, float]
        with pytest.raises(psycopg.ProgrammingError, match="3 parameters for 2 placeholders"):
            bulk.params([("a", 1.0, "x")])
        upsert = "INSERT INTO watermarks VALUES (%s, %s) ON CONFLICT (stream) DO UPDATE SET ts = excluded.ts"
        bulk = postgres_module.bulk_statement(upsert, tables)
        assert bulk is not None and bulk.key == (0,)
        assert bulk.params([("a", 1.0), ("b", 2.0), ("a", 3.0)]) == [["a", "b"], [3.0, 2.0]]
        bulk = postgres_module.bulk_statement("DELETE FROM ledger WHERE event_id = %s", tables)
        assert bulk == postgres_module.Bulk('DELETE FROM ledger WHERE "event_id" = ANY(%b::text[])', 1)
        assert bulk.params([("a",), ("b",)]) == [["a", "b"]]
        listed = "INSERT INTO profiles (customer_id, data) VALUES (%s, %s)"
        bulk = postgres_module.bulk_statement(listed, tables)
        assert bulk is not None and bulk.sql.startswith('INSERT INTO profiles ("customer_id", "data") SELECT')
        # Left to executemany: what is not a plain insert or upsert of the new values, or names unknown columns.
        for other in (
            "INSERT INTO watermarks VALUES (%s, %s) ON CONFLICT (stream) DO UPDATE SET ts = greatest(ts, excluded.ts)",
            "INSERT INTO watermarks VALUES (%s, %s) ON CONFLICT (stream) DO UPDATE SET ts = excluded.stream",
            "DELETE FROM ledger WHERE ts < %s",
            "DELETE FROM ledger WHERE event_id = %s AND ts = %s",
            "DELETE FROM ledger WHERE nope = %s",
            "INSERT INTO unknown VALUES (%s)",
            "INSERT INTO ledger VALUES (%s, %s, %s)",
            "INSERT INTO profiles (customer_id, nope) VALUES (%s, %s)",
            "INSERT INTO ledger VALUES (%s, now())",
        ):
            assert postgres_module.bulk_statement(other, tables) is None, other

    def test_two_instances_never_take_the_same_outbox_row(self, postgres_database: str) -> None:
        first, second = PostgresStore(postgres_database), PostgresStore(postgres_database)
        for n in range(100):
            first.outbox_add("t", None, b"%d" % n)
        first.commit()
        # Both hold their rows in open transactions: the second skips the first's.
        a, b = first.outbox_take(10), second.outbox_take(10)
        assert [i.seq for i in a] == sorted(i.seq for i in a)
        assert {i.seq for i in a}.isdisjoint(i.seq for i in b)
        assert max(i.seq for i in a) < min(i.seq for i in b)
        first.commit()
        second.rollback()  # its rows come back
        assert second.outbox_size() == 90

        taken: dict[str, list[int]] = {"first": [], "second": []}

        def drain(name: str, store: PostgresStore) -> None:
            while items := store.outbox_take(3):
                taken[name] += [i.seq for i in items]
                store.commit()

        threads = [threading.Thread(target=drain, args=item) for item in (("first", first), ("second", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = taken["first"] + taken["second"]
        assert len(every) == len(set(every)) == 90
        assert first.outbox_size() == 0
        first.close()
        second.close()


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
    store.close()
    reopened = SqliteStore(path)
    # The whole stream again, as after a crash before offsets were committed: duplicates are ignored.
    rest = process_all(Engine(shipped_playbooks, reopened), (Event.from_dict(r) for r in raws))
    assert [e.to_json() for e in first + rest] == whole
    assert [e.to_json() for e in reopened.effects()] == whole
    reopened.close()


def test_engine_restarted_on_postgres_gives_the_uninterrupted_result(
    shipped_playbooks: list[CompiledPlaybook], postgres_database: str
) -> None:
    raws = list(random_stream(21, customers=25, events=500))
    whole = [
        e.to_json() for e in process_all(Engine(shipped_playbooks, MemoryStore()), (Event.from_dict(r) for r in raws))
    ]
    store = PostgresStore(postgres_database)
    first = process_all(Engine(shipped_playbooks, store), (Event.from_dict(r) for r in raws[:250]))
    store.close()
    reopened = PostgresStore(postgres_database)
    rest = process_all(Engine(shipped_playbooks, reopened), (Event.from_dict(r) for r in raws))
    assert [e.to_json() for e in first + rest] == whole
    assert [e.to_json() for e in reopened.effects()] == whole
    reopened.close()
