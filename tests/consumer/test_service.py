"""The service loop on an in-memory transport: batches, rebalances and failures at each step, and the promise that
offsets are never committed ahead of the store (DESIGN.md principle 2), checked at every offset commit."""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

import recovery.consumer.reader as reader_module
from recovery.config import Settings
from recovery.consumer import Service, TopicPartition
from recovery.consumer.evaluation import Evaluator
from recovery.consumer.fence import Fenced
from recovery.consumer.records import DLQ_HEADERS, partition_of
from recovery.consumer.transport import Transport
from recovery.engine import Engine
from recovery.exceptions import BrokerError
from recovery.outbox import CLAIM_LIMIT, FLUSH_TIMEOUT_S
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.replay import replay
from recovery.store import MemoryStore, SqliteStore
from recovery.store.base import Store
from recovery.store.postgres import PostgresStore
from tests.conftest import PostgresServer, random_stream, wait_for
from tests.consumer.memory import JournalStore, MemoryBroker, MemoryTransport

EVENTS = "events"
TEN_YEARS_S = 10 * 365 * 86400.0
MAX_STEPS = 400


def stream(seed: int = 5, customers: int = 40, events: int = 500) -> list[dict[str, Any]]:
    return list(random_stream(seed, customers, events, days=20))


def replayed(playbooks: list[CompiledPlaybook], events: list[dict[str, Any]]) -> set[str]:
    out = io.StringIO()
    replay([json.dumps(e) for e in events], Engine(playbooks, MemoryStore()), out, io.StringIO())
    return set(out.getvalue().splitlines())


@dataclass
class Loop:
    """A `Service` on a memory broker and a journaled SQLite store, run step by step from `on_step` hooks."""

    service: Service
    broker: MemoryBroker
    store: JournalStore
    transports: list[MemoryTransport]
    steps: int = 0

    @property
    def transport(self) -> MemoryTransport:
        return self.transports[-1]

    def run(self, at_step: Callable[[Loop], None] | None = None, partitions: Iterable[int] | None = None) -> None:
        """Run until every event (of `partitions`, default all) is committed and the outbox is empty (or fail after
        MAX_STEPS)."""
        stop = threading.Event()
        ends = self.broker.end_offsets(EVENTS)
        if partitions is not None:
            wanted = set(partitions)
            ends = {tp: end for tp, end in ends.items() if tp.partition in wanted}

        def on_step(store: Store, now: float) -> None:
            self.steps += 1
            if at_step is not None:
                at_step(self)
            committed = {tp: self.broker.committed.get(tp) for tp in ends}
            done = committed == ends and store.outbox_size() == 0
            if done or self.steps >= MAX_STEPS:
                stop.set()

        self.service.on_step = on_step
        self.service.run(stop)
        assert self.steps < MAX_STEPS, "the loop did not catch up"

    def effects(self) -> set[str]:
        return set(self.published())

    def published(self) -> list[str]:
        """Every task and gesture message on the broker, repeats included."""
        return [(m.value or b"").decode() for topic in ("tasks", "gestures") for m in self.broker.messages(topic)]


@pytest.fixture
def loop_factory(tmp_path: Path, shipped_playbooks: list[CompiledPlaybook]) -> Iterator[Callable[..., Loop]]:
    stores: list[Store] = []

    def make(
        events: list[dict[str, Any]],
        *,
        fetch: int = 1_000_000,
        fetch_by_partition: dict[int, int] | None = None,
        assigned: Iterable[int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sql_store: Store | None = None,
        outbox: JournalStore | None = None,
        broker: MemoryBroker | None = None,
        wall_clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> Loop:
        values: dict[str, Any] = {
            "topic_events": EVENTS,
            "topic_tasks": "tasks",
            "topic_gestures": "gestures",
            "topic_dlq": "dlq",
            "lateness_s": TEN_YEARS_S,  # the clock stays in event time, as in replay without --until
            "batch_max_events": 40,
            "retry_backoff_s": 0.001,
            "store_url": f"sqlite:///{tmp_path / 'loop.db'}",
        }
        values.update(overrides)
        settings = Settings.model_validate(values)
        if broker is None:  # else another loop's, its events on it
            broker = MemoryBroker(partitions=3)
            broker.produce_events(EVENTS, events)
        if sql_store is None:
            sqlite = SqliteStore(tmp_path / "loop.db")
            stores.append(sqlite)
        store = JournalStore(sql_store or sqlite)
        transports: list[MemoryTransport] = []

        def connect(_settings: Settings) -> MemoryTransport:
            transport = MemoryTransport(
                broker, EVENTS, fetch=fetch, fetch_by_partition=fetch_by_partition, assigned=assigned
            )
            transport.on_commit = lambda offsets: never_ahead_of_the_store(broker, store, offsets)
            transports.append(transport)
            return transport

        service = Service(
            settings,
            cast(Store, store),
            shipped_playbooks,
            transport=connect,
            wall_clock=wall_clock,
            monotonic=monotonic,
            outbox=cast(Store, outbox) if outbox is not None else None,
        )
        return Loop(service, broker, store, transports)

    yield make
    for store in stores:
        store.close()


def never_ahead_of_the_store(broker: MemoryBroker, store: JournalStore, offsets: Mapping[TopicPartition, int]) -> None:
    """Every record below a committed offset is durable in the store: a valid event in the ledger, an invalid one
    as a DLQ record."""
    for tp, offset in offsets.items():
        for message in broker.log(tp.topic)[tp.partition][:offset]:
            try:
                event_id = json.loads(message.value or b"")["id"]
            except (ValueError, KeyError, TypeError):
                event_id = None
            durable = event_id in store.durable_ids or (tp.partition, message.offset) in store.durable_dlq
            assert durable, f"offset {offset} of {tp} committed ahead of the store (record {message.offset})"


def test_a_backlog_in_small_batches_gives_replays_effects_and_commits_every_offset(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events)
    loop.run()
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)
    assert loop.service.stats.batches > len(events) // 40
    assert loop.store.commits > 10


def test_invalid_records_go_to_the_dlq_and_their_offsets_are_committed_with_the_rest(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream(events=200)
    loop = loop_factory(events)
    for key, value in ((b"C1", b"{not json"), (b"C2", b""), (b"C3", b'{"id": "x", "type": "Bad"}')):
        loop.broker.produce(EVENTS, key, value)
    loop.run()
    dlq = loop.broker.messages("dlq")
    assert sorted(m.value or b"" for m in dlq) == sorted([b"{not json", b"", b'{"id": "x", "type": "Bad"}'])
    assert all(dict(m.headers)["recovery-error"] for m in dlq)
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_a_rebalance_mid_stream_drops_what_is_buffered_and_reads_it_again_from_the_committed_offsets(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15)  # a few records per partition and poll: the stream takes many steps

    def rebalance(loop: Loop) -> None:
        if loop.steps in (2, 5):
            # Buffered, unprocessed records are dropped; the same partitions come back at the committed offsets.
            assert any(loop.service.merge.buffers.values()) or loop.steps == 5
            loop.transport.assign()

    loop.run(rebalance)
    assert loop.service.stats.rebalances == 3  # the first assignment and two rebalances
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_partitions_taken_away_and_given_back_are_processed_once_and_never_committed_ahead(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15, barrier_wait_s=0.0)

    def rebalance(loop: Loop) -> None:
        if loop.steps == 2:
            loop.transport.assign([0])  # another member took partitions 1 and 2
        elif loop.steps == 12:
            loop.transport.assign()  # and left

    loop.run(rebalance)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)
    assert loop.store.durable_ids == {e["id"] for e in events}
    # No effect raised twice: repeats on the topics carry the same id and content.
    published = [json.loads(v) for v in loop.effects()]
    assert len({e["id"] for e in published}) == len(published)


def test_a_step_after_another_instance_claimed_the_partitions_is_not_committed(
    loop_factory: Callable[..., Loop],
    shipped_playbooks: list[CompiledPlaybook],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An instance paused past its group session (a long garbage collection, a VM paused) loses its partitions to
    # another, which claims them in the store. When it goes on, its step in flight must not be committed: it was
    # evaluated from a state the new owner has moved on from. The fault suite's `pause` row, on PostgreSQL, had 31
    # effects unlike replay's in 2 runs of 3 without this.
    events = stream()
    loop = loop_factory(events, fetch=15)
    claimed_at: list[int] = []  # the events the loop had stored when the other instance claimed
    fenced_at: list[int] = []  # ... when the loop's step found it out

    def claim_after_some_commits() -> None:
        if loop.store.commits >= 5 and not claimed_at:  # at an offset commit: the loop holds no transaction
            other = SqliteStore(tmp_path / "loop.db")
            other.claim_streams([f"{EVENTS}/{n}" for n in range(3)])
            other.commit()
            other.close()
            claimed_at.append(len(loop.store.durable_ids))

    fence = loop.service.fence
    check = fence.check

    def check_then_rejoin() -> None:
        try:
            check()
        except Fenced:
            fenced_at.append(len(loop.store.durable_ids))
            loop.transport.assign()  # the group soon tells the instance: a new assignment at its next poll
            raise

    fence.check = check_then_rejoin  # type: ignore[method-assign]
    connect = loop.service.connect

    def connect_with_the_claim(settings: Settings) -> Transport:
        transport = connect(settings)
        checked = transport.on_commit
        assert isinstance(transport, MemoryTransport) and checked is not None

        def on_commit(offsets: Mapping[TopicPartition, int]) -> None:
            checked(offsets)
            claim_after_some_commits()

        transport.on_commit = on_commit
        return transport

    loop.service.connect = connect_with_the_claim
    loop.run()
    assert claimed_at and fenced_at, "the loop went on committing after another instance claimed its partitions"
    assert fenced_at[0] == claimed_at[0]  # not one event stored in between (the outbox's claims are apart)
    assert loop.service.stats.store_errors >= 1
    assert loop.service.stats.rebalances == 2
    # Said as what it is, in one line: not a store failure with a traceback.
    said = [r for r in caplog.records if r.getMessage() == "the step is rolled back: its partitions moved"]
    assert said and all(r.levelname == "WARNING" and "assigned to another instance" in r.error for r in said)
    assert not any(r.getMessage().startswith("store failure") for r in caplog.records)
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_an_assignment_whose_committed_offsets_cannot_be_read_at_first_is_claimed(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """The broker does not answer for the committed offsets of a new assignment once: the step after reads them and
    claims the partitions. It used to go on without the claim, unfenced: a step of its after a pause past the group
    session would have been committed over the new owner's."""
    events = stream()
    loop = loop_factory(events, fetch=15)

    def rebalance_then_fail(loop: Loop) -> None:
        if loop.steps == 2:
            loop.transport.assign()
            loop.transport.fail("committed", BrokerError("injected: coordinator not available"))

    loop.run(rebalance_then_fail)
    assert loop.service.stats.broker_errors == 1 and loop.service.stats.rebalances == 2
    assert sorted(loop.service.fence.epochs) == [f"{EVENTS}/{n}" for n in range(3)]
    assert loop.effects() == replayed(shipped_playbooks, events)


class WallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def stamps(self) -> Iterator[int]:
        """The broker's timestamps (milliseconds), from this clock."""
        while True:
            yield int(self.now * 1000)


def run_steps(loop: Loop, steps: int) -> None:
    stop = threading.Event()
    done = iter(range(1, steps + 1))
    loop.service.on_step = lambda _store, _now: stop.set() if next(done) == steps else None
    loop.service.run(stop)


def run_in_turn(loops: list[Loop], steps: int = 3, turns: int = 100) -> None:
    """A few steps of each loop in turn (instances on one store, in one thread), until every event is committed."""
    broker = loops[0].broker
    for _ in range(turns):
        for loop in loops:
            run_steps(loop, steps)
        if broker.committed == broker.end_offsets(EVENTS) and loops[0].store.outbox_size() == 0:
            return
    raise AssertionError(f"the loops did not catch up in {turns} turns")


def test_a_paused_instances_partition_read_to_its_end_holds_back_what_the_broker_took_after_its_pause(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], tmp_path: Path
) -> None:
    # Two instances on one store: `paused` owns partition 0, `other` partitions 1 and 2. `paused` reads its
    # partition to its end and freezes; then the rest of the stream comes, outages of partition 0 among it. `other`
    # went on by `paused`'s last word (its partition read to its end: nothing older to come) past those outages,
    # which then reached its customers late: the fault suite's `pause` row, with the stream produced during the
    # pause, had 31 effects unlike replay's.
    wall = WallClock(time.time() - 100)
    broker = MemoryBroker(partitions=3, _clock=wall.stamps())
    events = stream()
    first, later = events[:300], events[300:]
    broker.produce_events(EVENTS, first)
    store = SqliteStore(tmp_path / "loop.db")  # one connection: the two run in turn, in this thread
    paused = loop_factory([], assigned=[0], broker=broker, wall_clock=wall, sql_store=store)
    other = loop_factory([], assigned=[1, 2], broker=broker, wall_clock=wall, sql_store=store)
    wall.now += 100
    run_in_turn([paused, other])
    # Frozen from here on: the rest of the stream comes.
    wall.now += 10
    broker.produce_events(EVENTS, later)
    run_steps(other, 20)
    ends = broker.end_offsets(EVENTS)
    behind = [tp for tp in ends if tp.partition in (1, 2) and broker.committed.get(tp, 0) < ends[tp]]
    assert behind, "the other instance went on past what the broker took after the paused one's last word"
    assert other.service.barrier.held_since is not None
    assert not other.service.barrier.gone_without
    # Thawed: both go on to the end, and the outages reach every customer in their order.
    wall.now += 10
    run_in_turn([paused, other])
    assert paused.effects() == replayed(shipped_playbooks, events)
    store.close()


def test_two_instances_taking_turns_give_the_effects_of_one(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], tmp_path: Path
) -> None:
    # Each turn starts from a new assignment, its buffers empty, with the scope events the other instance logged
    # meanwhile to apply. One was applied before the records of its partition older than it were fetched again:
    # 17 effects unlike replay's and 20 of replay's missing (3 outage credits first), when a partition's own next
    # record did not bound the scope events to apply to it while it was still on the broker.
    events = stream()
    broker = MemoryBroker(partitions=3)
    broker.produce_events(EVENTS, events)
    store = SqliteStore(tmp_path / "loop.db")  # one connection: the two run in turn, in this thread
    first = loop_factory([], assigned=[0], broker=broker, sql_store=store)
    second = loop_factory([], assigned=[1, 2], broker=broker, sql_store=store)
    run_in_turn([first, second])
    assert first.effects() == replayed(shipped_playbooks, events)
    store.close()


def test_results_do_not_depend_on_one_partition_being_read_ahead_of_the_others(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    # Partition 0 is fetched 50 records a poll, the others 3: every customer's decisions need only its own
    # partition's order, and outages are placed in each partition's order by the scope log.
    events = stream()
    loop = loop_factory(events, fetch=3, fetch_by_partition={0: 50}, merge_wait_s=0.0)
    loop.run()
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_results_do_not_depend_on_which_partitions_an_instance_owns_for_a_while(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15)

    def rebalance(loop: Loop) -> None:
        if loop.steps == 2:
            loop.transport.assign([0])  # another member takes partitions 1 and 2, and does not get to them
        elif loop.steps == 40:
            loop.transport.assign()  # it left: they come back, far behind partition 0

    loop.run(rebalance)
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_a_failed_store_commit_is_rolled_back_and_the_batch_read_again(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15)

    def fail(loop: Loop) -> None:
        if loop.steps in (3, 4):
            loop.store.fail("commit")

    loop.run(fail)
    assert loop.service.stats.store_errors == 2
    assert loop.service.health.store is None
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_an_assignment_whose_claim_fails_is_claimed_again_with_the_topics_partitions(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """The first assignment's claim fails (the store away, or busy, as the instance starts): the loop claims again
    at the next step and evaluates each partition's own customers. It rebuilt its engines for a topic of no
    partitions instead, each of which took every customer for its own: an outage reached a customer once per
    partition (a save desk's task said 3 outages for 1), and events keyed to the wrong partition stayed there."""
    events = stream()
    loop = loop_factory(events, fetch=15)
    loop.store.fail("claim_streams")
    loop.run()
    assert loop.service.stats.store_errors == 1
    assert loop.service.evaluator.partitions == 3
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_a_store_failing_every_other_commit_for_a_while_gives_replays_effects(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """Every second commit fails, 100 in all: the claims of an assignment, the batches', the outbox's, the ones made
    while the loop recovers. Before the claim's failure was handled, the loop gave 59 effects replay did not and
    missed 51."""
    events = stream()
    loop = loop_factory(events, fetch=5, batch_max_events=10)
    commit, commits, failed = loop.store.commit, itertools.count(1), []

    def failing_every_other() -> None:
        if (n := next(commits)) % 2 == 0 and n <= 200:
            failed.append(n)
            loop.store.fail("commit")
        commit()

    loop.store.commit = failing_every_other  # type: ignore[method-assign]
    loop.run()
    assert len(failed) == 100
    assert loop.effects() == replayed(shipped_playbooks, events)


def inject(loop: Loop, fault: str, rng: random.Random) -> None:
    """One fault of the loop's store or broker, or a rebalance, at its next use."""
    transport = loop.transport
    if fault == "commit":
        loop.store.fail("commit", rng.choice([1, 2]))
    elif fault == "claim":
        loop.store.fail("claim_streams")
    elif fault in ("poll", "committed", "commit_async", "send"):
        transport.fail(fault, BrokerError(f"injected: {fault}"))
    elif fault == "reconnect":  # the poll fails, then the rewind: new clients
        transport.fail("poll", BrokerError("injected: connection reset"))
        transport.fail("committed", BrokerError("injected: connection reset"))
    elif fault == "share":  # another member takes some partitions for a while
        transport.assign(rng.sample(range(3), rng.choice([1, 2])))
    else:
        transport.assign()


FAULTS = ("commit", "claim", "poll", "committed", "commit_async", "send", "reconnect", "share", "rebalance")


def faults_at_random(loop: Loop, rng: random.Random) -> list[tuple[int, str]]:
    """Run `loop` with about a step in three meeting a fault or a rebalance, drawn from `rng`; returns them."""
    if rng.random() < 0.5:
        loop.store.fail(rng.choice(["claim_streams", "commit"]), rng.choice([1, 2]))
    injected: list[tuple[int, str]] = []

    def at_random(loop: Loop) -> None:
        if loop.steps > 200:  # then it catches up, with every partition its own again
            if len(loop.transport.assigned) < 3:
                loop.transport.assign()
        elif rng.random() < 0.35:
            injected.append((loop.steps, rng.choice(FAULTS)))
            inject(loop, injected[-1][1], rng)

    loop.run(at_random)
    return injected


def random_tuning(rng: random.Random) -> dict[str, int]:
    """A fetch size (the fetcher's unevenness) and a batch size, drawn from `rng`."""
    return {"fetch": rng.choice([3, 5, 15, 40]), "batch_max_events": rng.choice([5, 10, 40])}


def with_faults_at_random(
    loop_factory: Callable[..., Loop], playbooks: list[CompiledPlaybook], seed: int, sql_store: Store | None = None
) -> None:
    """A loop run with faults at random (`faults_at_random`, seeded) gives replay's effects, each once (the
    broker here answers every message), and commits every offset."""
    rng = random.Random(seed)
    events = stream()
    tuning = random_tuning(rng)
    loop = loop_factory(events, sql_store=sql_store, **tuning)
    injected = faults_at_random(loop, rng)
    assert loop.effects() == replayed(playbooks, events), injected
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)
    assert len(loop.published()) == len(loop.effects()), injected


@pytest.mark.parametrize("seed", range(12))
def test_faults_and_rebalances_at_random_give_replays_effects(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], seed: int
) -> None:
    """About a step in three meets a fault of the store or the broker, or a rebalance, drawn at random (seeded),
    from the first assignment's claim on. Of seeds 0 to 299, 102 gave other effects than replay's before a failed
    first claim was handled (7 of these 12), and 2 had repeats before the answers of dropped clients were kept
    (seed 10 among them); all 300 give replay's since, each once."""
    with_faults_at_random(loop_factory, shipped_playbooks, seed)


@pytest.mark.parametrize("seed", range(4))
def test_faults_and_rebalances_at_random_on_postgresql_give_replays_effects(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], postgres_database: str, seed: int
) -> None:
    store = PostgresStore(postgres_database)
    try:
        with_faults_at_random(loop_factory, shipped_playbooks, seed, sql_store=store)
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(6))
def test_garbage_and_repeats_among_faults_at_random_reach_the_dlq_and_change_no_effect(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], seed: int
) -> None:
    """After about one event in eight comes a message that is not JSON, an event without its time, an empty message
    or the same event again (sent twice). With faults at random: replay's effects, and each refused message in the
    DLQ, each once (150 seeds passed; 2 had repeats before the answers of dropped clients were kept)."""
    rng = random.Random(seed)
    events = stream()
    broker = MemoryBroker(partitions=3)
    for event in events:
        key = str(event.get("customer_id") or event["data"].get("outage_id")).encode()
        broker.produce(EVENTS, key, json.dumps(event).encode())
        extra = rng.choice([None] * 7 + [b"{not json", b"", "untimed", "again"])
        if extra == "untimed":
            broker.produce(EVENTS, key, json.dumps({k: v for k, v in event.items() if k != "occurred_at"}).encode())
        elif extra == "again" and event.get("customer_id"):
            broker.produce(EVENTS, key, json.dumps(event).encode())
        elif isinstance(extra, bytes):
            broker.produce(EVENTS, key, extra or None)
    tuning = random_tuning(rng)
    loop = loop_factory([], broker=broker, **tuning)
    injected = faults_at_random(loop, rng)
    assert loop.effects() == replayed(shipped_playbooks, events), injected
    refused = {(m.partition, m.offset) for m in broker.messages(EVENTS) if b"occurred_at" not in (m.value or b"")}
    dlq = [dict(m.headers) for m in broker.messages("dlq")]
    assert {(int(h[DLQ_HEADERS[2]]), int(h[DLQ_HEADERS[3]])) for h in dlq} == refused, injected
    assert len(dlq) == len(refused) > 20, injected  # each once
    assert len(loop.published()) == len(loop.effects()), injected


@pytest.mark.parametrize("seed", range(8))
def test_two_instances_with_faults_and_reassignments_at_random_give_the_effects_of_one(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], tmp_path: Path, seed: int
) -> None:
    """Two loops on one store take turns of 1 to 3 steps. For 60 turns, a turn in five splits the partitions anew
    between them (one may get none), and a loop's turn in three meets a fault. Of seeds 0 to 399, all give replay's
    effects; 333 did not before a scope event waited for its partition's older records (f0c9108; all 8 of these)."""
    rng = random.Random(seed)
    events = stream()
    broker = MemoryBroker(partitions=3)
    broker.produce_events(EVENTS, events)
    store = SqliteStore(tmp_path / "loop.db")  # one connection: the two run in turn, in this thread
    tuning = random_tuning(rng)
    mine = rng.sample(range(3), rng.choice([1, 2]))
    first = loop_factory([], assigned=mine, broker=broker, sql_store=store, **tuning)
    second = loop_factory([], assigned=set(range(3)) - set(mine), broker=broker, sql_store=store, **tuning)
    faults = [fault for fault in FAULTS if fault not in ("share", "rebalance")]
    injected: list[tuple[int, int, str]] = []
    for turn in range(200):
        if turn < 60 and rng.random() < 0.2:
            mine = rng.sample(range(3), rng.choice([0, 1, 2, 3]))
            for loop, partitions in ((first, mine), (second, set(range(3)) - set(mine))):
                if loop.transports:
                    loop.transport.assign(partitions)
        for n, loop in enumerate((first, second)):
            if turn < 60 and loop.transports and rng.random() < 0.3:
                injected.append((turn, n, rng.choice(faults)))
                inject(loop, injected[-1][2], rng)
            run_steps(loop, rng.choice([1, 2, 3]))
        if turn >= 60 and broker.committed == broker.end_offsets(EVENTS) and store.outbox_size() == 0:
            break
    else:
        raise AssertionError(f"the loops did not catch up in 200 turns: {injected}")
    assert first.effects() == replayed(shipped_playbooks, events), injected
    store.close()


def test_a_refused_offset_commit_is_sent_again(loop_factory: Callable[..., Loop]) -> None:
    events = stream(events=200)
    loop = loop_factory(events, fetch=15)

    def fail(loop: Loop) -> None:
        if loop.steps == 2:
            loop.transport.fail("commit_async", BrokerError("injected: commit refused"))

    loop.run(fail)
    assert loop.service.stats.commit_failures == 1
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_a_message_the_broker_does_not_take_is_tried_again_and_the_loop_goes_on(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15)

    def fail(loop: Loop) -> None:
        if loop.steps == 3:
            loop.transport.fail("send", BrokerError("injected: not leader"))

    loop.run(fail)
    assert loop.store.retried == 1 and loop.store.parked == []
    assert loop.service.stats.broker_errors == 0  # the loop never stopped for it
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_a_message_the_broker_refuses_for_good_is_parked_and_the_rest_goes_through(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15)

    def fail(loop: Loop) -> None:
        if loop.steps == 3:
            loop.transport.refuse("send", BrokerError("injected: MessageSizeTooLargeError", retriable=False))

    loop.run(fail)
    [(seq, error)] = loop.store.parked
    assert "MessageSizeTooLargeError" in error
    parked, count = loop.store.outbox_parked(10)
    assert count == 1 and parked[0].seq == seq
    expected = replayed(shipped_playbooks, events)
    assert len(expected - loop.effects()) == 1 and loop.effects() < expected  # that one, and nothing else
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_a_broker_failure_while_polling_reconnects_and_goes_on(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15)

    def fail(loop: Loop) -> None:
        if loop.steps == 3:
            # The poll fails, and so does the rewind that follows: the loop drops its clients and connects again.
            loop.transport.fail("poll", BrokerError("injected: connection reset"))
            loop.transport.fail("committed", BrokerError("injected: connection reset"))

    loop.run(fail)
    assert len(loop.transports) == 2
    assert loop.transports[0].closed
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_a_stuck_partition_of_another_instance_is_waited_for_once_not_at_every_batch(
    loop_factory: Callable[..., Loop], caplog: pytest.LogCaptureFixture
) -> None:
    ticks = iter(range(10**9))
    events = stream()
    loop = loop_factory(events, assigned=[0], barrier_wait_s=5.0, monotonic=lambda: next(ticks) / 20)
    loop.store.set_watermark(f"{EVENTS}/1", -1.0)  # the other instance's partitions never move
    loop.store.set_watermark(f"{EVENTS}/2", -1.0)
    loop.store.commit()
    with caplog.at_level(logging.WARNING, logger="recovery.consumer"):
        loop.run(partitions=[0])
    waits = [r for r in caplog.records if "lag behind" in r.getMessage()]
    assert len(waits) == 1
    assert loop.service.stats.batches > 5


def test_an_event_whose_evaluation_raises_goes_to_the_dlq_and_leaves_nothing_else_behind(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], monkeypatch: pytest.MonkeyPatch
) -> None:
    events = stream()
    bad = next(e for e in events if e["type"] == "cancellation.requested")
    original = Evaluator._evaluate

    def evaluate(self: Evaluator, engine: Any, tp: Any, pending: Any, event: Any, barrier: Any) -> Any:
        effects = original(self, engine, tp, pending, event, barrier)  # its writes are made...
        if event.id == bad["id"]:
            raise RuntimeError("a bug")  # ...then it fails
        return effects

    monkeypatch.setattr(Evaluator, "_evaluate", evaluate)
    loop = loop_factory(events, fetch=15)
    loop.run()
    [dead] = loop.broker.messages("dlq")
    assert json.loads(dead.value or b"")["id"] == bad["id"]
    assert dict(dead.headers)["recovery-error"] == b"evaluation failed: RuntimeError: a bug"
    # Nothing of that event stayed: the rest is what replay makes of the stream without it.
    assert bad["id"] not in loop.store.durable_ids
    assert loop.effects() == replayed(shipped_playbooks, [e for e in events if e is not bad])
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_a_step_that_fails_for_any_reason_is_rolled_back_and_read_again(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    loop = loop_factory(events, fetch=15)
    seen: list[dict[str, str]] = []

    def fail(loop: Loop) -> None:
        seen.append(loop.service.health.problems())
        if loop.steps in (3, 4):
            raise ZeroDivisionError("a bug in a hook")  # inside the step's transaction, before its commit

    loop.run(fail)
    assert loop.service.stats.loop_errors == 2
    assert any("ZeroDivisionError" in p.get("loop", "") for p in seen)
    assert "loop" not in loop.service.health.problems()
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_frontline_writes_during_a_backlog_never_make_the_loop_roll_back(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], tmp_path: Path
) -> None:
    # The API writes through connections of its own while the loop works: each waits for its turn, none fails,
    # and the loop never meets "database is locked".
    events = stream(events=1500)
    loop = loop_factory(events, fetch=40, batch_max_events=20)
    stop = threading.Event()
    failures: list[BaseException] = []
    writes = [0]

    def agent() -> None:
        while not stop.is_set():
            api = SqliteStore(tmp_path / "loop.db")
            try:
                api.add_audit(time.time(), "ann", "claim")
                api.commit()
                writes[0] += 1
            except BaseException as exc:
                failures.append(exc)
            finally:
                api.close()

    thread = threading.Thread(target=agent)
    thread.start()
    try:
        loop.run()
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert writes[0] > 10
    assert loop.service.stats.store_errors == 0
    assert loop.effects() == replayed(shipped_playbooks, events)


@pytest.mark.timeout(600)
def test_a_postgresql_restart_mid_stream_is_waited_out_with_nothing_lost_or_doubled(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    server = PostgresServer()
    store = PostgresStore(server.start(), connect_timeout_s=2)
    try:
        events = stream()
        loop = loop_factory(events, fetch=15, sql_store=store, retry_backoff_s=0.05)
        down = threading.Event()
        problems: list[dict[str, str]] = []

        def restart_when_noticed() -> None:
            down.wait()
            wait_for(lambda: loop.service.stats.store_errors >= 3, what="the loop to notice", timeout_s=120)
            problems.append(loop.service.health.problems())
            server.start()

        thread = threading.Thread(target=restart_when_noticed)
        thread.start()

        def stop_server(loop: Loop) -> None:
            if loop.steps == 3:
                server.stop()  # mid-stream, inside a step: its commit fails
                down.set()

        try:
            loop.run(stop_server)
        finally:
            down.set()
            thread.join()
        assert "store" in problems[0]  # /readyz said so meanwhile
        assert "store" not in loop.service.health.problems()
        assert loop.effects() == replayed(shipped_playbooks, events)
        assert len(loop.published()) == len(loop.effects())
        assert loop.broker.committed == loop.broker.end_offsets(EVENTS)
    finally:
        store.close()
        server.delete()


def test_an_event_from_the_future_goes_to_the_dlq_and_moves_nothing(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream()
    future = {**events[len(events) // 2], "id": "from-the-future", "type": "cancellation.requested"}
    future["occurred_at"] = "9999-12-31T23:59:59Z"  # it would fire every deadline of its partition and prune it all
    ancient = {**future, "id": "from-the-past", "occurred_at": "1901-01-01T00:00:00Z"}
    with_them = [*events[: len(events) // 2], future, ancient, *events[len(events) // 2 :]]
    loop = loop_factory(with_them, fetch=15)
    loop.run()
    reasons = sorted(dict(m.headers)["recovery-error"].split(b":")[0] for m in loop.broker.messages("dlq"))
    assert reasons == [b"future_event", b"too_old"]
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_an_outbox_backlog_is_published_claim_after_claim_without_waiting_for_records(
    loop_factory: Callable[..., Loop], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage's credits, more than one claim of the outbox: each step publishes a claim, and the poll between
    two steps does not wait for records (`poll_timeout_s`) while messages wait (the fan-out's publishing was a
    claim per idle poll: 2,000 credits a second)."""
    customers = 4 * CLAIM_LIMIT
    profile = {"tier": "standard", "segment": "consumer", "region": "north", "annual_value": 480}
    events: list[dict[str, Any]] = [
        {"id": f"p{n}", "type": "customer.updated", "occurred_at": "2026-03-01T08:00:00Z", "customer_id": f"C{n}",
         "data": profile}
        for n in range(customers)
    ]  # fmt: skip
    outage = {"outage_id": "O1", "region": "north"}
    events.append({"id": "o1", "type": "outage.started", "occurred_at": "2026-03-01T09:00:00Z", "data": outage})
    events.append({"id": "o2", "type": "outage.resolved", "occurred_at": "2026-03-01T11:00:00Z", "data": outage})
    loop = loop_factory(events, poll_timeout_s=5.0)
    waits: list[tuple[int, int]] = []  # (the poll's timeout, messages in the outbox) at each poll
    poll = MemoryTransport.poll

    def watched(transport: MemoryTransport, timeout_ms: int, max_records: int) -> Any:
        waits.append((timeout_ms, loop.store.outbox_size()))
        return poll(transport, timeout_ms, max_records)

    monkeypatch.setattr(MemoryTransport, "poll", watched)
    loop.run()
    assert len(loop.broker.messages("gestures")) == customers
    assert waits[0] == (5000, 0)  # nothing waited in the outbox yet
    # More than a claim in the outbox: the last claim was a full one, and messages wait behind it.
    behind = [timeout for timeout, size in waits if size > CLAIM_LIMIT]
    assert behind and set(behind) == {0}, waits


def test_a_backlogs_messages_go_out_batch_after_batch_not_once_it_is_drained(
    loop_factory: Callable[..., Loop],
) -> None:
    """A step that takes several batches (a backlog) publishes each batch's messages before it evaluates the next.
    Published once per step, a claim of the outbox per 2 s step, a 100,000-event backlog had 3,000 of its 18,184
    tasks and credits out when it was drained, the rest after."""
    loop = loop_factory(stream(events=1000))
    evaluator = loop.service.evaluator
    evaluate = evaluator.evaluate
    behind: list[tuple[int, int]] = []  # (messages queued, messages published) as a batch's evaluation begins

    def counted(*args: Any, **kwargs: Any) -> Any:
        queued = sum(loop.service.stats.effects.values())
        published = sum(len(loop.broker.messages(topic)) for topic in ("tasks", "gestures"))
        if published < queued:
            behind.append((queued, published))
        return evaluate(*args, **kwargs)

    evaluator.evaluate = counted  # type: ignore[method-assign]
    loop.run()
    assert loop.service.stats.batches > 2 * loop.steps  # steps of several batches
    assert not behind, behind[:5]
    assert sum(loop.service.stats.effects.values()) > 20


def test_partitions_paused_with_a_late_record_last_do_not_hold_each_other_for_good(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition's watermark is its newest record fetched, the last of its buffer: a late record there lowers it
    below the heads of the others. When every partition's buffer is full (paused) and each ends with a late record,
    none may go on and none fetches more: the loop must fetch again from the one that holds the others back (seen
    in bench.scale: 1,029,828 of 2,200,000 events committed, then nothing for good)."""
    monkeypatch.setattr(reader_module, "PAUSE_ABOVE", 5)
    monkeypatch.setattr(reader_module, "RESUME_BELOW", 2)
    customers: dict[int, str] = {}
    n = 0
    while len(customers) < 3:
        customers.setdefault(partition_of(f"C{n}", 3), f"C{n}")
        n += 1
    events: list[dict[str, Any]] = []
    for customer in customers.values():
        for block in range(3):  # ten calls in order, then one late by a day, three times
            for k in range(10):
                at = f"2026-03-{2 + block * 2:02d}T{8 + k:02d}:00:00Z"
                events.append(_call(f"{customer}-{block}-{k}", customer, at))
            events.append(_call(f"{customer}-{block}-late", customer, f"2026-03-{1 + block * 2:02d}T12:00:00Z"))
    loop = loop_factory(events, fetch=11)
    loop.run()
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)
    assert loop.effects() == replayed(shipped_playbooks, events)


def _call(event_id: str, customer: str, at: str) -> dict[str, Any]:
    return {"id": event_id, "type": "service.call", "occurred_at": at, "customer_id": customer,
            "data": {"reason": "billing"}}  # fmt: skip


def test_a_kafka_client_that_fetches_nothing_while_records_wait_is_replaced(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """kafka-python 3.0.12 under load: the member stable and ready, every partition lagging, and every poll empty,
    for good. Past FETCH_STALL_S the client is closed and a new one reads from the committed offsets."""
    events = stream(events=200)
    ticks = [0.0]

    def monotonic() -> float:
        ticks[0] += 0.1  # a tenth of a second per look at the clock: the stall is seen within a hundred steps
        return ticks[0]

    loop = loop_factory(events, monotonic=monotonic)
    connect = loop.service.connect

    def stuck_first(settings: Settings) -> MemoryTransport:
        transport = cast(MemoryTransport, connect(settings))
        if len(loop.transports) == 1:
            transport.fetch = 0  # assigned, records waiting, nothing ever fetched
        return transport

    loop.service.connect = stuck_first
    loop.run()
    assert len(loop.transports) == 2 and loop.transports[0].closed
    assert loop.service.stats.broker_errors == 1
    assert loop.effects() == replayed(shipped_playbooks, events)
    assert loop.broker.committed == loop.broker.end_offsets(EVENTS)


def test_a_failed_step_sends_none_of_the_messages_in_flight_again(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """A step's failure (here its store's commit) rolls back the loop's transaction only: what the publisher sent
    before, on claims committed on their own, is settled as the broker answers. Forgotten instead, a claim of up to
    500 messages went out twice after every failed step (a deadlock between two instances on PostgreSQL did it)."""
    events = stream()
    loop = loop_factory(events, fetch=15)

    def fail(loop: Loop) -> None:
        if loop.steps in (2, 4):
            loop.store.fail("commit")

    loop.run(fail)
    assert loop.service.stats.store_errors == 2
    assert len(loop.published()) == len(loop.effects())
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_clients_dropped_after_a_broker_failure_send_none_of_the_answered_messages_again(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """Before its Kafka clients are closed, the loop settles what the broker answered: sent again by the next
    clients instead, up to a claim of 500 messages went out twice (the fault suite's broker row: 500 repeats)."""
    events = stream()
    loop = loop_factory(events, fetch=15)

    def fail(loop: Loop) -> None:
        # Once the step ends with messages to send: they are in flight (and answered) when the next poll fails,
        # then the rewind, and the loop drops its clients and connects again.
        if len(loop.transports) == 1 and loop.store.outbox_size() and not loop.transport.failures.get("poll"):
            loop.transport.fail("poll", BrokerError("injected: connection reset"))
            loop.transport.fail("committed", BrokerError("injected: connection reset"))

    loop.run(fail)
    assert len(loop.transports) == 2
    assert len(loop.published()) == len(loop.effects())
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_clients_dropped_while_the_store_fails_too_send_none_of_the_answered_messages_again(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """As above, and the store fails as the loop stores the broker's answers before it drops its clients: the next
    clients' publisher stores them. Dropped with the publisher, they were claimed and sent again: 18 repeats in the
    run of a random test where a reconnection and two failed commits met."""
    events = stream()
    loop = loop_factory(events, fetch=15)

    def committed_with_the_store_failing(tp: TopicPartition) -> int | None:
        loop.store.fail("commit")  # the next commit: the settlement of what the broker answered
        raise BrokerError("injected: connection reset")

    def fail(loop: Loop) -> None:
        if len(loop.transports) == 1 and loop.store.outbox_size() and not loop.transport.failures.get("poll"):
            loop.transport.fail("poll", BrokerError("injected: connection reset"))
            loop.transport.committed = committed_with_the_store_failing  # type: ignore[method-assign]

    loop.run(fail)
    assert len(loop.transports) == 2 and loop.store.outbox_size() == 0
    assert len(loop.published()) == len(loop.effects())
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_a_store_failure_while_settling_sends_none_of_the_answered_messages_again(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook], tmp_path: Path
) -> None:
    """The publisher's own connection fails as it stores the broker's answers (PostgreSQL going away, say): the
    answers are kept and stored at the next try. Dropped, their messages were claimed and sent again (the fault
    suite's postgres row: 20 to 24 repeats)."""
    events = stream()
    outbox = JournalStore(SqliteStore(tmp_path / "loop.db"))
    try:
        loop = loop_factory(events, fetch=15, outbox=outbox)

        def fail(loop: Loop) -> None:
            if 2 <= loop.steps <= 6:
                outbox.fail("commit")  # the publisher's next commit: it settles what the last step sent

        loop.run(fail)
        assert outbox.commits and len(loop.published()) == len(loop.effects())
        assert loop.effects() == replayed(shipped_playbooks, events)
    finally:
        outbox.close()


def test_a_producer_in_a_fatal_state_is_replaced_and_the_next_clients_publish_its_messages(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """librdkafka's idempotent producer, after an error it cannot recover from, fails every send with `_FATAL`:
    the outbox tried again through it at every step, and nothing more was published."""
    events = stream()
    loop = loop_factory(events, fetch=15)

    def break_it(loop: Loop) -> None:
        if len(loop.transports) == 1 and loop.steps == 2:
            loop.transport.broken = BrokerError(
                "Kafka send to recovery.tasks failed: _FATAL: Local: Fatal error", fatal=True
            )

    loop.run(break_it)
    assert len(loop.transports) == 2 and loop.transports[0].closed
    assert loop.service.stats.broker_errors == 1
    assert len(loop.published()) == len(loop.effects())
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_a_producer_that_no_longer_answers_is_replaced_and_the_next_clients_publish_its_messages(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """kafka-python's producer, its batches retried while the broker stopped and then expired, answered nothing
    sent to it afterwards, the broker back or not: the outbox tried again through it at every step, for good."""
    events = stream()
    loop = loop_factory(events, fetch=15)

    def wedge(loop: Loop) -> None:
        if len(loop.transports) == 1 and loop.steps == 2:
            loop.transport.answering = False

    loop.run(wedge)
    assert len(loop.transports) == 2 and loop.transports[0].closed
    assert loop.service.stats.broker_errors == 1
    assert len(loop.published()) == len(loop.effects())
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_a_broker_gone_during_a_wait_for_answers_is_said_on_readyz_before_the_wait_ends(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """A step that meets an outage meets it in the outbox's wait for the producer's answers (up to 20 s a claim):
    /readyz said 200 through it, and only the next step's check told (the fault suite's broker row on
    confluent-kafka's clients: /readyz 503 for 125 s of a 150 s outage)."""
    events = stream()
    loop = loop_factory(events, fetch=15)
    said: list[bool] = []
    """At each flush of the wait that met the outage (FLUSH_TIMEOUT_S in all): whether /readyz said so."""
    waited = [0.0]

    def outage(loop: Loop) -> None:
        transport = loop.transport
        if len(loop.transports) == 1 and loop.steps == 2:
            flush = transport.flush

            def flushed(timeout_s: float) -> None:
                if not said:  # the broker goes away as the wait begins: the producer holds what it sent
                    transport.answering = False
                    transport.connected = lambda **_: False  # type: ignore[method-assign]
                if waited[0] < FLUSH_TIMEOUT_S:
                    said.append("broker" in loop.service.health.problems())
                    waited[0] += timeout_s
                flush(timeout_s)

            transport.flush = flushed  # type: ignore[method-assign]

    loop.run(outage)
    # Told after the wait's first second (before: one wait of 20 s, told by the next step's check).
    assert len(said) > 1 and not said[0] and all(said[1:]), said
    assert len(loop.transports) == 2  # the producer that answered nothing was replaced, as before
    assert "broker" not in loop.service.health.problems()
    assert loop.effects() == replayed(shipped_playbooks, events)


def test_a_broker_gone_is_said_on_readyz_before_the_step_waits_on_the_producer(
    loop_factory: Callable[..., Loop], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    """confluent-kafka's clients tell whether a broker is connected in librdkafka's statistics, which its consumer
    hands over inside a poll. The loop asked at a step's end, every 5 s at most: a step that met an outage first
    waited on the producer's answers (up to 20 s a claim), and so did the next before it asked. /readyz said 200 for
    the first 35 s of a 150 s outage (docs/operations.md, "The suite on confluent-kafka's clients")."""
    events = stream()
    loop = loop_factory(events, fetch=2)
    away = False
    flushes: list[bool] = []
    """At each flush while the broker is away: whether /readyz said so."""

    def outage(loop: Loop) -> None:
        nonlocal away
        transport = loop.transport
        if loop.steps == 1:  # connected as of the last poll, as with librdkafka's statistics
            state = {"connected": True}
            poll, flush = transport.poll, transport.flush

            def polled(timeout_ms: int, max_records: int) -> Any:
                state["connected"] = not away
                return poll(timeout_ms, max_records)

            def flushed(timeout_s: float) -> None:
                if away:
                    flushes.append("broker" in loop.service.health.problems())
                flush(timeout_s)

            transport.poll = polled  # type: ignore[method-assign]
            transport.flush = flushed  # type: ignore[method-assign]
            transport.connected = lambda **_: state["connected"]  # type: ignore[method-assign]
        elif loop.steps == 4:  # the broker goes away before this step publishes
            away = True
        elif loop.steps == 12:
            away = False

    loop.run(outage)
    assert len(loop.transports) == 1
    # A flush in the step the outage began in may come before any poll could tell; every one after knows.
    assert len(flushes) >= 2 and all(flushes[1:]), flushes
    assert loop.steps > 12, loop.steps  # and once it was back, it was said too
    assert "broker" not in loop.service.health.problems(), loop.steps
    assert loop.effects() == replayed(shipped_playbooks, events)
