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
        for kind in ("customer.joined", "customer.renewed", "customer.referred", "customer.lost", "payment.succeeded"):
            assert counts[kind] > 0, kind

    def test_the_life_cycle_keeps_its_share(self, stream: list[dict[str, Any]]) -> None:
        """Live customers are far busier than real ones (80 events each here): losses keep their share of the
        events (a few in a thousand, as in a month of the batch model), and joins make up for them."""
        counts = Counter(e["type"] for e in stream[300:])
        events = len(stream) - 300
        assert 0.0005 * events <= counts["customer.lost"] <= 0.005 * events
        assert counts["customer.lost"] <= 0.25 * 300
        assert counts["customer.lost"] / 2 <= counts["customer.joined"] <= counts["customer.lost"] * 4
        assert counts["customer.referred"] <= counts["customer.joined"]
        assert counts["payment.succeeded"] <= counts["payment.failed"]
        assert counts["cancellation.requested"] > counts["customer.lost"] / 4

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
        region_of = {e["customer_id"]: e["data"]["region"] for e in stream if e["type"] == "customer.updated"}
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


def by_customer(stream: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in stream:
        if "customer_id" in event:
            events[event["customer_id"]].append(event)
    return events


class TestLifeCycle:
    def test_nothing_after_a_loss(self, stream: list[dict[str, Any]]) -> None:
        lost = 0
        for cid, events in by_customer(stream).items():
            kinds = [e["type"] for e in events]
            if "customer.lost" in kinds:
                lost += 1
                assert kinds.count("customer.lost") == 1 and kinds[-1] == "customer.lost", cid
                data = events[-1]["data"]
                assert data["reason"] in simulate.LOSS_REASONS and type(data["annual_value"]) is float
        assert lost > 5

    def test_joining_follows_the_first_profile(self, stream: list[dict[str, Any]]) -> None:
        joined = 0
        for cid, events in by_customer(stream).items():
            assert events[0]["type"] == "customer.updated", cid
            if cid in {e["customer_id"] for e in stream[:300]}:
                assert all(e["type"] != "customer.joined" for e in events), cid
                continue
            if len(events) == 1:
                continue  # joined at the very end of the stream
            joined += 1
            profile, join = events[0], events[1]
            assert join["type"] == "customer.joined", cid
            assert stream.index(join) == stream.index(profile) + 1  # at the next tick
            assert join["data"]["segment"] == profile["data"]["segment"]
            assert type(join["data"]["annual_value"]) is float
            assert join["data"]["annual_value"] == profile["data"]["annual_value"] > 0
            assert join["data"]["channel"] in (*simulate.JOIN_CHANNELS, simulate.REFERRAL_CHANNEL)
        assert joined > 5

    def test_referred_customers_then_join(self, stream: list[dict[str, Any]]) -> None:
        joined = {e["customer_id"]: e for e in stream if e["type"] == "customer.joined"}
        referred = [e for e in stream if e["type"] == "customer.referred"]
        end = ts(stream[-1])
        assert referred
        for referral in referred:
            new = joined.get(referral["data"]["referred_customer_id"])
            if new is None:  # joins up to 2 days later: after the end of the stream
                assert end - ts(referral) < 2 * 86_400
                continue
            assert new["data"]["channel"] == simulate.REFERRAL_CHANNEL and ts(new) > ts(referral)
        assert len({e["data"]["referred_customer_id"] for e in referred}) == len(referred)

    def test_renewing_follows_the_renewed_profile(self, stream: list[dict[str, Any]]) -> None:
        renewed = 0
        for before, event in itertools.pairwise(stream):  # the renewed profile, then at the next tick
            if event["type"] == "customer.renewed":
                renewed += 1
                assert before["type"] == "customer.updated" and before["customer_id"] == event["customer_id"]
                assert event["data"]["annual_value"] == before["data"]["annual_value"] > 0
                assert event["data"]["reason"] in simulate.RENEWAL_REASONS
        assert renewed > 10

    def test_complaints_have_a_category(self, stream: list[dict[str, Any]]) -> None:
        categories = {e["data"]["category"] for e in stream if e["type"] == "complaint.opened"}
        assert categories == set(simulate.COMPLAINT_CATEGORIES)

    def test_payments_made_good_after_failing(self, stream: list[dict[str, Any]]) -> None:
        failed: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in stream:
            if event["type"] == "payment.failed":
                failed[event["customer_id"]].append(event)
            elif event["type"] == "payment.succeeded":
                amounts = [e["data"]["amount"] for e in failed[event["customer_id"]]]
                assert event["data"]["amount"] in amounts
