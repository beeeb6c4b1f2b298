"""recovery.simulate's traffic: deterministic, its mix, its pace (read from the timestamps, never from the wall
clock)."""

from __future__ import annotations

import itertools
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from recovery import simulate
from recovery.events import Event
from recovery.times import parse_time

START = "2026-11-02T09:00:00Z"
T_START = parse_time(START)


def live(customers: int = 30, seed: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("rate", 20.0)
    kwargs.setdefault("duration_s", 50.0)
    kwargs.setdefault("start", T_START)
    return [event for _, event in simulate.traffic(customers, seed, **kwargs)]


def ts(event: dict[str, Any]) -> float:
    return Event.from_dict(event).ts


@pytest.fixture(autouse=True)
def _kafka_log_level() -> Iterator[None]:
    """`recovery simulate` quietens kafka-python's logger; keep that from leaking into other tests."""
    logger = logging.getLogger("kafka")
    level = logger.level
    yield
    logger.setLevel(level)


class TestDeterminism:
    def test_same_seed_same_events(self) -> None:
        assert live(seed=4, time_scale=600) == live(seed=4, time_scale=600)

    def test_other_seed_other_events(self) -> None:
        assert live(seed=4) != live(seed=5)

    def test_start_moves_only_the_times(self) -> None:
        first = live(seed=4)
        later = live(seed=4, start=T_START + 86_400)
        assert [ts(e) + 86_400 for e in first] == [ts(e) for e in later]
        strip = [{k: v for k, v in e.items() if k != "occurred_at"} for e in first]
        assert strip == [{k: v for k, v in e.items() if k != "occurred_at"} for e in later]

    def test_unique_ids_carrying_the_seed(self) -> None:
        ids = [e["id"] for e in live(seed=4)]
        assert len(ids) == len(set(ids))
        assert all(i.startswith("evt-4-") for i in ids)


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    """300 customers, then 24,000 events over 40 simulated hours."""
    return live(300, seed=7, rate=20.0, duration_s=1_200.0, time_scale=120.0)


class TestMix:
    def test_every_event_is_valid(self, stream: list[dict[str, Any]]) -> None:
        for event in stream:
            Event.from_json(simulate.dumps(event))

    def test_profiles_first(self, stream: list[dict[str, Any]]) -> None:
        profiles = stream[:300]
        assert {e["type"] for e in profiles} == {"customer.updated"}
        assert len({e["customer_id"] for e in profiles}) == 300
        assert {e["occurred_at"] for e in profiles} == {START}
        tiers = Counter(e["data"]["tier"] for e in profiles)
        assert tiers["standard"] > tiers["silver"] > tiers["gold"] > tiers["platinum"] > 0
        assert {e["data"]["region"] for e in profiles} == set(simulate.REGIONS)
        assert all(e["data"]["annual_value"] > 0 for e in profiles)

    def test_types_after_the_profiles(self, stream: list[dict[str, Any]]) -> None:
        counts = Counter(e["type"] for e in stream[300:])
        assert counts["service.call"] > counts["survey.response"] > counts["complaint.opened"] > 0
        for kind in ("complaint.resolved", "cancellation.requested", "payment.failed", "outage.started"):
            assert counts[kind] > 0, kind

    def test_times_never_go_back(self, stream: list[dict[str, Any]]) -> None:
        times = [ts(e) for e in stream]
        assert times == sorted(times)

    def test_outages_hit_regions_and_end(self, stream: list[dict[str, Any]]) -> None:
        started = {e["data"]["outage_id"]: e for e in stream if e["type"] == "outage.started"}
        resolved = {e["data"]["outage_id"]: e for e in stream if e["type"] == "outage.resolved"}
        assert len(started) >= 5 and resolved and set(resolved) <= set(started)
        for outage_id, end in resolved.items():
            begin = started[outage_id]
            assert "customer_id" not in begin and "customer_id" not in end
            assert begin["data"]["region"] == end["data"]["region"] in simulate.REGIONS
            assert ts(end) - ts(begin) >= 30 * 60
        # While a region is out, its customers call about it.
        region_of = {e["customer_id"]: e["data"]["region"] for e in stream[:300]}
        out: set[str] = set()
        outage_calls = 0
        for event in stream:
            if event["type"] == "outage.started":
                out.add(event["data"]["region"])
            elif event["type"] == "outage.resolved":
                out.discard(event["data"]["region"])
            elif event["type"] == "service.call" and event["data"]["reason"] == "outage":
                outage_calls += region_of[event["customer_id"]] in out
        assert outage_calls > 10

    def test_bursts_of_repeat_calls(self, stream: list[dict[str, Any]]) -> None:
        calls: dict[str, list[float]] = defaultdict(list)
        for event in stream:
            if event["type"] == "service.call":
                calls[event["customer_id"]].append(ts(event))
        bursts = [c for c, times in calls.items() if any(b - a <= 6 * 3600 for a, b in itertools.pairwise(times))]
        assert len(bursts) > 20

    def test_complaints_resolved_after_opening(self, stream: list[dict[str, Any]]) -> None:
        opened = {e["data"]["complaint_id"]: ts(e) for e in stream if e["type"] == "complaint.opened"}
        resolved = {e["data"]["complaint_id"]: ts(e) for e in stream if e["type"] == "complaint.resolved"}
        assert resolved and set(resolved) < set(opened)
        assert all(at - opened[cid] >= 3600 for cid, at in resolved.items())
