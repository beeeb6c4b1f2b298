"""The PostgreSQL store: what is its own (a server shared by instances, lost connections, round trips) beyond the
contract."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from recovery.engine import Engine
from recovery.events import Event, Occurrence
from recovery.exceptions import StoreError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import MemoryStore, open_store
from recovery.store import postgres as postgres_module
from recovery.store import sql as sql_module
from recovery.store import statements as q
from recovery.store.postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from recovery.store.postgres import PostgresStore
from tests.conftest import free_ports, process_all, random_stream, take_outbox
from tests.store.older import postgres_at
from tests.store.test_stores import task


class TestPostgres:
    def test_survives_reopening(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.add_event("e1", 0.0)
        store.put_effect(task("tsk-1"))
        store.commit()
        store.close()
        again = open_store(postgres_database)
        assert isinstance(again, PostgresStore)
        assert again.add_event("e1", 0.0) is False
        assert [e.id for e in again.effects()] == ["tsk-1"]
        assert again.schema_version == len(POSTGRES_MIGRATIONS)
        again.close()

    def test_a_watermark_of_an_older_version_holds_for_any_record_after_the_migration(
        self, postgres_database: str
    ) -> None:
        postgres_at(
            postgres_database, 8, ("INSERT INTO watermarks VALUES ('events/0', 'Infinity'), ('events/1', 5)", ())
        )
        store = PostgresStore(postgres_database)
        inf = float("inf")
        assert store.watermarks("events/") == {"events/0": (inf, -inf), "events/1": (5.0, -inf)}
        store.close()

    def test_uncommitted_writes_are_lost_on_a_crash(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.add_event("e1", 0.0)
        store.commit()
        store.add_event("e2", 0.0)
        store.dialect.conn.close()  # a crash: no commit
        again = PostgresStore(postgres_database)
        assert again.add_event("e1", 0.0) is False
        assert again.add_event("e2", 0.0) is True
        again.close()

    def test_an_outbox_claim_rolled_back_is_claimed_again(self, postgres_database: str) -> None:
        store = PostgresStore(postgres_database)
        store.outbox_add("t", "k", b"v")
        store.commit()
        assert len(store.outbox_claim("a", 10, 1.0, 60.0)) == 1
        store.rollback()  # the claim did not stick
        assert [i.value for i in store.outbox_claim("b", 10, 1.0, 60.0)] == [b"v"]
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
            admin.execute("SELECT pg_terminate_backend(%s)", (store.dialect.conn.info.backend_pid,))
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
        monkeypatch.setattr(sql_module, "MAX_QUEUED_WRITES", 3)
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
        execute = store.dialect.conn.execute

        def spy(query: str, *args: object, **kwargs: object) -> object:
            sent.append(query)
            return execute(query, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store.dialect.conn, "execute", spy)
        for n in range(7):
            store.append_history(Occurrence(f"e{n}", "service.call", 5.0, "C-1", {"n": n}))
            store.outbox_add("t", f"k{n}" if n % 2 else None, b"%d" % n)
        store.commit()
        assert len([q for q in sent if q.startswith("INSERT INTO history")]) == 1
        assert len([q for q in sent if q.startswith("INSERT INTO outbox")]) == 1
        # Same time: the order they were written in is kept (the store's sequence), across statements.
        assert [o.id for o in store.history("C-1", 0.0)] == [f"e{n}" for n in range(7)]
        assert [o.data for o in store.history("C-1", 0.0)] == [{"n": n} for n in range(7)]
        taken = [(i.topic, i.key, i.value, i.headers) for i in take_outbox(store)]
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
        assert store.watermarks("w") == {"w": (3.0, float("-inf"))}
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

    def test_bulk_forms_of_the_declared_writes(self) -> None:
        bulk = postgres_module.bulk_form(q.ADD_EVENT)
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
        bulk = postgres_module.bulk_form(q.SET_WATERMARK)
        assert bulk is not None and bulk.key == (0,)
        assert bulk.sql.endswith(
            "ORDER BY bulk_row ON CONFLICT (stream) DO UPDATE SET ts = excluded.ts, ended_at = excluded.ended_at"
        )
        inf = float("inf")
        rows = [("a", 1.0, -inf), ("b", 2.0, 5.0), ("a", 3.0, 4.0)]
        assert bulk.params(rows) == [["a", "b"], [3.0, 2.0], [4.0, 5.0]]
        bulk = postgres_module.bulk_form(q.SET_COOLDOWN)
        assert bulk is not None and bulk.key == (0, 1)
        assert bulk.params([("c", "p", 1.0), ("c", "q", 2.0), ("c", "p", 3.0)]) == [["c", "c"], ["p", "q"], [3.0, 2.0]]
        bulk = postgres_module.bulk_form(q.REMOVE_DEADLINE)
        assert bulk == postgres_module.Bulk('DELETE FROM deadlines WHERE "id" = ANY(%b::text[])', 1)
        assert bulk.params([("a",), ("b",)]) == [["a", "b"]]
        assert "%b::bigint[]" in str(getattr(postgres_module.bulk_form(q.MARK_SCOPE_APPLIED), "sql", ""))
        assert "%b::bytea[]" in str(getattr(postgres_module.bulk_form(q.OUTBOX_ADD), "sql", ""))
        # Ordered writes are sent one by one.
        assert postgres_module.bulk_form(q.CLEAR_SCOPE) is None
        assert postgres_module.bulk_form(q.PRUNE_SCOPE_LOG) is None

    def test_two_instances_never_claim_the_same_outbox_row(self, postgres_database: str) -> None:
        first, second = PostgresStore(postgres_database), PostgresStore(postgres_database)
        for n in range(100):
            first.outbox_add("t", None, b"%d" % n)
        first.commit()
        # Both claim in open transactions: the second skips the rows the first is claiming.
        a, b = first.outbox_claim("first", 10, 100.0, 60.0), second.outbox_claim("second", 10, 100.0, 60.0)
        assert [i.seq for i in a] == sorted(i.seq for i in a)
        assert {i.seq for i in a}.isdisjoint(i.seq for i in b)
        assert max(i.seq for i in a) < min(i.seq for i in b)
        first.commit()
        second.rollback()  # its claims come back
        assert len(second.outbox_claim("second", 200, 100.0, 60.0)) == 90  # the first's are the first's
        second.rollback()

        taken: dict[str, list[int]] = {"first": [], "second": []}

        def drain(name: str, store: PostgresStore) -> None:
            while items := store.outbox_claim(name, 3, 200.0, 60.0):  # by now, the first's claims ran out
                store.commit()
                taken[name] += [i.seq for i in items]
                store.outbox_done([i.seq for i in items])
                store.commit()

        threads = [threading.Thread(target=drain, args=item) for item in (("first", first), ("second", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = taken["first"] + taken["second"]
        assert len(every) == len(set(every)) == 100
        assert first.outbox_size() == 0
        first.close()
        second.close()

    def test_instances_adding_to_the_same_counts_wait_for_each_other_without_a_deadlock(
        self, postgres_database: str
    ) -> None:
        """The review's weekly counts are rows every instance adds to. Two instances' commits once took them in
        opposite orders (each its own first-seen order) and PostgreSQL ended one with "deadlock detected": its batch
        was rolled back, evaluated again, and its outbox claim published twice. Here a third connection holds one
        row so that the two commits meet in the worst order, each waiting before the next starts."""
        weeks = (0.0, 604_800.0)
        setup, first, second = (PostgresStore(postgres_database) for _ in range(3))
        try:
            self._meet_in_the_worst_order(postgres_database, weeks, setup, first, second)
            counts = setup.report_facts(until=2e6, weeks_since=0.0).counts
            assert [(c.week, c.n) for c in counts] == [(0.0, 3), (604_800.0, 3)]
        finally:
            for store in (setup, first, second):
                store.close()

    @staticmethod
    def _meet_in_the_worst_order(
        url: str, weeks: tuple[float, float], setup: PostgresStore, first: PostgresStore, second: PostgresStore
    ) -> None:
        for week in weeks:
            setup.add_count("calls", "billing", week)
        setup.commit()
        for week in reversed(weeks):  # the first meets the rows last week first
            first.add_count("calls", "billing", week)
        for week in weeks:
            second.add_count("calls", "billing", week)
        failures: list[BaseException] = []

        def commit(store: PostgresStore) -> None:
            try:
                store.commit()
            except BaseException as exc:  # reported by the assertion below
                failures.append(exc)

        with psycopg.connect(url) as holder:
            holder.execute(
                "SELECT n FROM report_counts WHERE metric = 'calls' AND key = 'billing' AND week = %s FOR UPDATE",
                (weeks[0],),
            )
            threads = []
            for store in (second, first):  # the second waits for the held row, then the first queues behind it
                thread = threading.Thread(target=commit, args=(store,))
                thread.start()
                threads.append(thread)
                wait_for_a_lock(url, store)
            holder.commit()  # the second goes on; without one order, it then waits for a row the first holds
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []


def test_a_claim_waits_for_the_step_in_flight_that_checked_its_fence(postgres_database: str) -> None:
    # The step checks that its partitions are still its own, then commits; a claim by their new owner between the
    # two would let a step from a state the new owner no longer has be committed after the owner read that state.
    # The check locks the rows: the claim waits for the step's commit, and the new owner reads the state after it.
    url = postgres_database
    old, new = PostgresStore(url), PostgresStore(url)
    mine = old.claim_streams(["events/0"])
    old.commit()
    old.add_event("e-of-the-step", 1.0)
    assert old.fenced(mine) == []
    claimed: list[dict[str, int]] = []

    def claim() -> None:
        claimed.append(new.claim_streams(["events/0"]))
        new.commit()

    thread = threading.Thread(target=claim)
    thread.start()
    wait_for_a_lock(url, new)
    assert claimed == []
    old.commit()  # the step ends; the claim goes through after it
    thread.join(timeout=30)
    assert claimed == [{"events/0": 2}]
    assert new.add_event("e-of-the-step", 1.0) is False  # what the step committed is there for the new owner
    assert old.fenced(mine) == ["events/0"]
    old.rollback()
    new.rollback()
    old.close()
    new.close()


def wait_for_a_lock(url: str, store: PostgresStore, timeout_s: float = 30.0) -> None:
    """Until the connection of `store` waits for a lock (its commit blocked by another transaction)."""
    pid = store.dialect.conn.info.backend_pid
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            row = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.01)
    raise AssertionError(f"the store's connection (pid {pid}) did not wait for a lock in {timeout_s:g} s")


def test_engine_restarted_on_postgres_gives_the_uninterrupted_result(
    shipped_playbooks: list[CompiledPlaybook], postgres_database: str
) -> None:
    raws = list(random_stream(21, customers=25, events=500))
    whole = [
        e.to_json() for e in process_all(Engine(shipped_playbooks, MemoryStore()), (Event.from_dict(r) for r in raws))
    ]
    store = PostgresStore(postgres_database)
    first = process_all(Engine(shipped_playbooks, store), (Event.from_dict(r) for r in raws[:250]))
    store.commit()
    store.close()
    reopened = PostgresStore(postgres_database)
    rest = process_all(Engine(shipped_playbooks, reopened), (Event.from_dict(r) for r in raws))
    assert [e.to_json() for e in first + rest] == whole
    assert [e.to_json() for e in reopened.effects()] == whole
    reopened.close()
