"""One suite, every store: what the engine relies on to rebuild state and never repeat an effect."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recovery.config import Settings
from recovery.effects import Gesture, Task
from recovery.events import Occurrence
from recovery.exceptions import StoreError
from recovery.store import Deadline, MemoryStore, SqliteStore, Store, open_service_store, open_store
from recovery.store.postgres import PostgresStore

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

    def test_an_effect_an_earlier_connection_stored_is_not_stored_twice(self, store_factory: StoreFactory) -> None:
        first = store_factory()
        if isinstance(first, MemoryStore):
            pytest.skip("the memory store has no other connection")
        first.put_effect(task("t1"))
        first.commit()
        first.close()
        again = store_factory()
        # Only a replay of a recorded cause could make it again (the ledger prevents it): published once more at
        # worst, with the same id and content, never a second row.
        again.put_effect(task("t1"))
        again.put_effect(task("t2"))
        again.commit()
        assert [e.id for e in again.effects()] == ["t1", "t2"]

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
        store.set_watermark("events/1", 30.0, ended_at=1000.5)
        store.set_watermark("events/2", float("inf"))
        store.set_watermark("other/0", 5.0)
        inf = float("inf")
        assert store.watermarks("events/") == {
            "events/0": (20.0, -inf),
            "events/1": (30.0, 1000.5),
            "events/2": (inf, -inf),
        }
        store.commit()
        store.prune_history(150.0)  # what no playbook can look back to goes, applied marks with it
        assert [seq for seq, _, _ in store.scope_log(float("-inf"))] == [late]
        assert store.scope_applied("events/0") == set()

    def test_a_claim_of_partitions_fences_the_instance_that_had_them(
        self, store_factory: StoreFactory, request: pytest.FixtureRequest
    ) -> None:
        first = store_factory()
        second = first if "memory" in request.node.name else store_factory()  # one memory store holds the data
        mine = first.claim_streams(["events/0", "events/1"])
        first.commit()
        assert mine == {"events/0": 1, "events/1": 1}
        assert first.fenced(mine) == []
        first.commit()
        assert second.claim_streams(["events/1"]) == {"events/1": 2}  # the group gave partition 1 to another
        second.commit()
        assert first.fenced(mine) == ["events/1"]
        assert first.fenced({"events/2": 1}) == ["events/2"]  # never claimed: not ours either
        first.rollback()
        assert second.fenced({"events/1": 2}) == []
        second.rollback()

    def test_outbox_is_first_in_first_out_and_claimed_by_one_publisher_at_a_time(
        self, store_factory: StoreFactory
    ) -> None:
        store = store_factory()
        store.outbox_add("recovery.tasks", "C1", b'{"id":"t1"}', (("h", b"\x00\xff"),))
        store.outbox_add("recovery.dlq", None, b"\xff not json")
        store.outbox_add("recovery.tasks", "C2", b'{"id":"t2"}')
        store.commit()
        assert store.outbox_size() == 3
        first = store.outbox_claim("a", 2, 100.0, 60.0)
        assert [(i.topic, i.key, i.value, i.headers, i.attempts) for i in first] == [
            ("recovery.tasks", "C1", b'{"id":"t1"}', (("h", b"\x00\xff"),), 0),
            ("recovery.dlq", None, b"\xff not json", (), 0),
        ]
        store.commit()
        rest = store.outbox_claim("b", 10, 100.0, 60.0)  # a's claims are a's until 160
        assert [i.value for i in rest] == [b'{"id":"t2"}'] and rest[0].seq > first[-1].seq
        store.outbox_done([i.seq for i in first])
        store.commit()
        assert store.outbox_size() == 1  # claimed, not published yet
        assert store.outbox_claim("c", 10, 159.0, 60.0) == []
        assert [i.value for i in store.outbox_claim("c", 10, 170.0, 60.0)] == [b'{"id":"t2"}']  # b's ran out

    def test_outbox_retries_after_the_backoff_and_parks_for_good(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        for n in range(3):
            store.outbox_add("t", None, b"%d" % n)
        store.commit()
        one, two, three = store.outbox_claim("a", 10, 100.0, 60.0)
        store.outbox_retry([one.seq], 110.0, "broker away")
        store.outbox_park(two.seq, 100.0, "MessageSizeTooLargeError: too large")
        store.outbox_done([three.seq])
        store.commit()
        assert store.outbox_size() == 1
        assert store.outbox_claim("a", 10, 105.0, 60.0) == []  # not before 110
        [again] = store.outbox_claim("b", 10, 110.0, 60.0)
        assert (again.seq, again.attempts) == (one.seq, 1)
        parked, count = store.outbox_parked(10)
        assert count == 1 and [(p.seq, p.topic, p.size, p.parked_at, p.error) for p in parked] == [
            (two.seq, "t", 1, 100.0, "MessageSizeTooLargeError: too large")
        ]
        assert store.outbox_unpark([two.seq]) == 1
        store.commit()
        assert store.outbox_parked(10) == ([], 0) and store.outbox_size() == 2
        assert [i.seq for i in store.outbox_claim("c", 10, 111.0, 60.0)] == [two.seq]  # b still holds one's

    def test_released_claims_are_anyones_again(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.outbox_add("t", None, b"v")
        store.commit()
        assert len(store.outbox_claim("dead", 10, 100.0, 60.0)) == 1
        store.commit()
        assert store.outbox_release() == 1
        store.commit()
        assert len(store.outbox_claim("alive", 10, 101.0, 60.0)) == 1

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


class TestOpen:
    def test_the_service_store_is_never_the_memory_store(self) -> None:
        settings = Settings.load(None, environ={"RECOVERY_STORE_URL": "memory://"})
        with pytest.raises(StoreError, match=r"store_url \(RECOVERY_STORE_URL\) is 'memory://'.*sqlite:///FILE"):
            open_service_store(settings)
        assert isinstance(open_store("memory://"), MemoryStore)  # replay, tests and benchmarks may

    def test_the_service_stores_sqlite_page_cache_holds_a_batch(self, tmp_path: Path) -> None:
        """With SQLite's 2 MiB a drain of the bench stream read 2.2 GB back from the file (0.16 GB with 128 MiB)."""
        url = f"sqlite:///{tmp_path / 'r.db'}"
        loop = open_service_store(Settings.load(None, environ={"RECOVERY_STORE_URL": url}))
        other = open_store(url)  # the API's, replay's: SQLite's default
        try:
            assert loop.dialect.db.execute("PRAGMA cache_size").fetchone()[0] == -128 * 1024  # type: ignore[attr-defined]
            assert other.dialect.db.execute("PRAGMA cache_size").fetchone()[0] == -2000  # type: ignore[attr-defined]
        finally:
            loop.close()
            other.close()

    def test_an_unknown_scheme_is_named(self) -> None:
        with pytest.raises(StoreError, match="unknown scheme 'mysql'"):
            open_store("mysql://db/recovery")
