"""recovery.simulate's batch model (`generate`): the customers' life cycle over a month, its proportions and its
consistency (bench/generate.py's tests cover determinism, validity and the activities)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

import pytest

from recovery import simulate
from recovery.events import Event

CUSTOMERS = 2_000
DAY = 86_400


def ts(event: dict[str, Any]) -> float:
    return Event.from_dict(event).ts


@pytest.fixture(scope="module")
def month() -> list[dict[str, Any]]:
    """2,000 customers over 30 days, as `recovery simulate --customers 2000 --duration 30d --out` makes it."""
    return list(simulate.generate(CUSTOMERS, 30, seed=7))


def by_customer(stream: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in stream:
        if "customer_id" in event:
            events[event["customer_id"]].append(event)
    return events


class TestProportions:
    def test_the_life_cycle_types_appear(self, month: list[dict[str, Any]]) -> None:
        counts = Counter(e["type"] for e in month)
        for kind in ("customer.joined", "customer.renewed", "customer.referred", "customer.lost", "payment.succeeded"):
            assert counts[kind] > 10, kind

    def test_a_few_percent_a_month(self, month: list[dict[str, Any]]) -> None:
        counts = Counter(e["type"] for e in month)
        assert 0.01 * CUSTOMERS <= counts["customer.lost"] <= 0.06 * CUSTOMERS
        assert 0.01 * CUSTOMERS <= counts["customer.joined"] <= 0.06 * CUSTOMERS
        assert 0.005 * CUSTOMERS <= counts["customer.referred"] <= 0.04 * CUSTOMERS
        # Yearly contracts: about a twelfth of the customers reach their anniversary in a month; most renew.
        assert 0.04 * CUSTOMERS <= counts["customer.renewed"] <= 0.1 * CUSTOMERS
        assert counts["payment.failed"] * 0.4 <= counts["payment.succeeded"] <= counts["payment.failed"] * 0.8
        assert counts["service.call"] > counts["survey.response"] > counts["complaint.opened"] > counts["customer.lost"]

    def test_busier_customers_are_not_lost_more(self) -> None:
        """`--events` makes customers busier (here about six times): the chances per event are scaled down."""
        stream = list(simulate.generate(500, 30, seed=3, events=20_000))
        assert Counter(e["type"] for e in stream)["customer.lost"] <= 0.06 * 500

    def test_distress_makes_a_loss_likelier(self, month: list[dict[str, Any]]) -> None:
        events = by_customer(month)
        lost = {cid for cid, evs in events.items() if evs[-1]["type"] == "customer.lost"}
        asked = {cid for cid, evs in events.items() if any(e["type"] == "cancellation.requested" for e in evs)}
        calm = {
            cid
            for cid, evs in events.items()
            if not any(e["type"] in ("cancellation.requested", "complaint.opened", "payment.failed") for e in evs)
        }
        assert len(asked) > 20 and len(calm) > 200
        assert len(lost & asked) / len(asked) > 5 * len(lost & calm) / len(calm)
        # A cancellation request is often followed by a loss within days (unless the save desk saves them).
        assert len(lost & asked) >= 0.2 * len(asked)


class TestConsistency:
    def test_nothing_after_a_loss(self, month: list[dict[str, Any]]) -> None:
        for cid, events in by_customer(month).items():
            kinds = [e["type"] for e in events]
            if "customer.lost" in kinds:
                assert kinds.count("customer.lost") == 1 and kinds[-1] == "customer.lost", cid

    def test_a_loss_says_why_and_what_was_lost(self, month: list[dict[str, Any]]) -> None:
        for events in by_customer(month).values():
            if events[-1]["type"] == "customer.lost":
                data = events[-1]["data"]
                profile = next(e for e in reversed(events) if e["type"] == "customer.updated")
                assert data["reason"] in simulate.LOSS_REASONS
                assert type(data["annual_value"]) is float and data["annual_value"] == profile["data"]["annual_value"]
        reasons = Counter(e["data"]["reason"] for e in month if e["type"] == "customer.lost")
        assert len(reasons) >= 4

    def test_joining_follows_the_first_profile(self, month: list[dict[str, Any]]) -> None:
        first = "C-000001"
        for cid, events in by_customer(month).items():
            assert events[0]["type"] == "customer.updated", cid
            joins = [i for i, e in enumerate(events) if e["type"] == "customer.joined"]
            if cid <= f"C-{CUSTOMERS:06d}":
                assert cid >= first and not joins, cid  # customers of the base were there before the period
                continue
            assert joins == [1], cid
            profile, joined = events[0], events[1]
            assert joined["data"]["segment"] == profile["data"]["segment"]
            assert type(joined["data"]["annual_value"]) is float
            assert joined["data"]["annual_value"] == profile["data"]["annual_value"] > 0
            assert joined["data"]["channel"] in (*simulate.JOIN_CHANNELS, simulate.REFERRAL_CHANNEL)

    def test_referred_customers_then_join(self, month: list[dict[str, Any]]) -> None:
        joined = {e["customer_id"]: e for e in month if e["type"] == "customer.joined"}
        referred = [e for e in month if e["type"] == "customer.referred"]
        assert referred
        for referral in referred:
            new = joined[referral["data"]["referred_customer_id"]]
            assert new["data"]["channel"] == simulate.REFERRAL_CHANNEL
            assert ts(new) > ts(referral) and new["customer_id"] != referral["customer_id"]
        assert len({e["data"]["referred_customer_id"] for e in referred}) == len(referred)
        referrals = sum(e["data"]["channel"] == simulate.REFERRAL_CHANNEL for e in joined.values())
        assert referrals == len(referred)

    def test_profile_then_joined_or_renewed(self, month: list[dict[str, Any]]) -> None:
        """A new or renewed profile comes first, at the same second, and the event right after it."""
        followed = 0
        for before, event in itertools.pairwise(month):
            if event["type"] in ("customer.joined", "customer.renewed"):
                followed += 1
                assert before["type"] == "customer.updated" and before["customer_id"] == event["customer_id"]
                assert before["occurred_at"] == event["occurred_at"]
                assert event["data"]["annual_value"] == before["data"]["annual_value"] > 0
            if event["type"] == "customer.renewed":
                assert event["data"]["reason"] in simulate.RENEWAL_REASONS
        assert followed > 100

    def test_payments_made_good_within_days(self, month: list[dict[str, Any]]) -> None:
        for events in by_customer(month).values():
            failed = [e for e in events if e["type"] == "payment.failed"]
            for paid in (e for e in events if e["type"] == "payment.succeeded"):
                before = [e for e in failed if 0 < ts(paid) - ts(e) <= 4 * DAY]
                assert any(e["data"]["amount"] == paid["data"]["amount"] for e in before), paid

    def test_complaints_have_a_category(self, month: list[dict[str, Any]]) -> None:
        categories = Counter(e["data"]["category"] for e in month if e["type"] == "complaint.opened")
        assert set(categories) == set(simulate.COMPLAINT_CATEGORIES)

    def test_the_save_desk_closes_its_tasks(self, month: list[dict[str, Any]]) -> None:
        closed = [e["data"] for e in month if e["type"] == "task.completed"]
        outcomes = {(d["playbook"], d["queue"], d["outcome"]) for d in closed}
        assert {("cancellation-save", "save-desk", outcome) for outcome in ("saved", "lost")} <= outcomes
        assert {d["outcome"] for d in closed} <= {"saved", "lost", "unreachable", "not-needed"}
