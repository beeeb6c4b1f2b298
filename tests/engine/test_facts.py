"""The report's facts, recorded by the engine as events go by: once per event, without reading the store."""

from __future__ import annotations

from collections.abc import Callable

from recovery.engine import Engine
from recovery.engine.facts import FACT_TYPES, FactRecorder
from recovery.events import Event
from recovery.store import MemoryStore
from recovery.store.fact_records import (
    CALLS,
    COMPLAINTS,
    WEEK_S,
    LifecycleFact,
    Outage,
    ProfileFact,
    WeeklyCount,
    week_of,
)
from recovery.times import parse_time
from tests.conftest import T0

EventFactory = Callable[..., Event]
MONDAY = parse_time("2026-11-02T00:00:00Z")  # T0 is that Monday, 09:00


def facts(store: MemoryStore) -> tuple[list[LifecycleFact], list[ProfileFact], list[WeeklyCount], list[Outage]]:
    found = store.report_facts(float("inf"), float("-inf"))
    return found.lifecycle, found.profiles, found.counts, found.outages


def test_weeks_start_on_monday_at_midnight_utc() -> None:
    assert week_of(T0) == MONDAY
    assert week_of(MONDAY) == MONDAY
    assert week_of(MONDAY - 1) == MONDAY - WEEK_S
    assert week_of(MONDAY + WEEK_S - 0.001) == MONDAY


def test_lifecycle_events_are_kept_as_they_came(event_factory: EventFactory) -> None:
    store = MemoryStore()
    engine = Engine([], store)
    joined = {"annual_value": 1200, "segment": "smb", "channel": "web"}
    engine.process(event_factory("customer.joined", "C1", 0, joined))
    engine.process(event_factory("customer.renewed", "C1", 60, {"reason": "loyalty"}))
    engine.process(event_factory("customer.referred", "C1", 120, {"referred_customer_id": "C9"}))
    engine.process(event_factory("customer.lost", "C1", 180, {"reason": "price", "annual_value": 900.5}))
    lifecycle, profiles, counts, outages = facts(store)
    assert [(f.kind, f.ts - T0, f.value) for f in lifecycle] == [
        ("joined", 0, 1200.0),
        ("renewed", 60, None),  # resolved by the report, from the profile history
        ("referred", 120, None),
        ("lost", 180, 900.5),
    ]
    joined, renewed, referred, lost = lifecycle
    assert (joined.segment, joined.channel, renewed.reason, referred.referred_id, lost.reason) == (
        "smb",
        "web",
        "loyalty",
        "C9",
        "price",
    )
    assert (profiles, counts, outages) == ([], [], [])


def test_each_profile_is_kept_with_its_time(event_factory: EventFactory) -> None:
    store = MemoryStore()
    engine = Engine([], store)
    engine.process(event_factory("customer.updated", "C1", 0, {"tier": "gold", "region": "north", "annual_value": 10}))
    engine.process(event_factory("customer.updated", "C1", 60, {"segment": "home"}))
    _, profiles, _, _ = facts(store)
    assert [(p.ts - T0, p.tier, p.segment, p.region, p.value) for p in profiles] == [
        (0, "gold", None, "north", 10.0),
        (60, "standard", "home", None, None),  # a profile without a tier is standard
    ]


def test_complaints_and_calls_are_counted_by_week_and_key(event_factory: EventFactory) -> None:
    store = MemoryStore()
    engine = Engine([], store)
    for at, category in ((0, "billing"), (60, "billing"), (120, None), (7 * 86400, "billing")):
        data = {"complaint_id": f"K{at}"} | ({"category": category} if category else {})
        engine.process(event_factory("complaint.opened", "C1", at, data))
    engine.process(event_factory("complaint.resolved", "C1", 200, {"complaint_id": "K0", "category": "billing"}))
    engine.process(event_factory("service.call", "C1", 0, {"reason": "router"}))
    engine.process(event_factory("service.call", "C2", 10, {}))
    _, _, counts, _ = facts(store)
    assert counts == [
        WeeklyCount(COMPLAINTS, "billing", MONDAY, 2),
        WeeklyCount(COMPLAINTS, "billing", MONDAY + WEEK_S, 1),
        WeeklyCount(COMPLAINTS, "uncategorized", MONDAY, 1),
        WeeklyCount(CALLS, "router", MONDAY, 1),
        WeeklyCount(CALLS, "unspecified", MONDAY, 1),
    ]


def test_outages_are_paired_by_id_in_replay_and_in_serve(event_factory: EventFactory) -> None:
    store = MemoryStore()
    engine = Engine([], store)
    engine.process(event_factory("outage.started", None, 0, {"outage_id": "O1", "region": "north"}))
    engine.process(event_factory("outage.resolved", None, 5400, {"outage_id": "O1"}))
    served = Engine([], store)  # serve logs a scope event once, where it is read: the facts are recorded there
    served.record_scope(event_factory("outage.started", None, 60, {"outage_id": "O2", "customer_ids": ["C1"]}))
    _, _, _, outages = facts(store)
    assert outages == [Outage("O1", "north", T0, T0 + 5400), Outage("O2", None, T0 + 60, None)]


def test_a_redelivered_event_is_recorded_once(event_factory: EventFactory) -> None:
    store = MemoryStore()
    engine = Engine([], store)
    call = event_factory("service.call", "C1", 0, {"reason": "router"}, id="same")
    lost = event_factory("customer.lost", "C1", 10, {"reason": "price"}, id="lost")
    for event in (call, lost, call, lost):
        engine.process(event)
    lifecycle, _, counts, _ = facts(store)
    assert [c.n for c in counts] == [1]
    assert len(lifecycle) == 1
    assert engine.stats.duplicates == 2


def test_only_the_types_it_reads_reach_the_recorder(event_factory: EventFactory) -> None:
    class Counting(FactRecorder):
        seen: list[str] = []  # noqa: RUF012

        def record(self, event: Event, ts: float) -> None:
            self.seen.append(event.type)
            super().record(event, ts)

    engine = Engine([], MemoryStore())
    engine.facts = Counting(engine.store)
    for kind in ("payment.failed", "survey.response", "service.call", "customer.lost"):
        engine.process(event_factory(kind, "C1", 0, {"score": 5} if kind == "survey.response" else {}))
    assert Counting.seen == ["service.call", "customer.lost"]
    assert {"customer.updated", "complaint.opened", "outage.started", "outage.resolved"} < FACT_TYPES


def test_a_replay_records_no_facts_and_raises_the_same_effects(event_factory: EventFactory) -> None:
    """`recovery replay` reads no facts after its run: its engine keeps none (a million customers' profile history
    was a sixth of `bench.memory`'s peak), and what it raises is the same as with them."""
    from recovery.playbooks.loader import load_playbooks_or_raise
    from recovery.replay import replay_engine

    playbooks = load_playbooks_or_raise(["rules"])
    events = [
        event_factory("customer.updated", "C1", 0, {"tier": "gold", "annual_value": 5000, "region": "north"}),
        event_factory("complaint.opened", "C1", 60, {"complaint_id": "K1", "category": "billing"}),
        *(event_factory("service.call", "C1", 120 + i, {"reason": "billing"}) for i in range(4)),
        event_factory("customer.lost", "C1", 600, {"reason": "price"}),
        event_factory("outage.started", None, 700, {"outage_id": "O1", "region": "north"}),
    ]
    replayed, recorded = replay_engine(playbooks), Engine(playbooks, MemoryStore(keep_effects=False))
    raised = [[e.id for event in events for e in engine.process(event)] for engine in (replayed, recorded)]
    assert raised[0] == raised[1] and raised[0]
    assert facts(replayed.store) == ([], [], [], [])  # type: ignore[arg-type]
    lifecycle, profiles, counts, outages = facts(recorded.store)  # type: ignore[arg-type]
    assert (len(lifecycle), len(profiles), len(outages)) == (1, 1, 1) and counts
