"""The power players at risk: the most valuable customers with an open case or a distress signal in the last 30
days, highest value first, with what happened; a cut list says so."""

from __future__ import annotations

from typing import Any

import pytest

from recovery.api.risk import Signals, signals
from recovery.events import Occurrence
from recovery.store.records import WatchedCustomer
from tests.api.conftest import T0, Api, ApiFactory
from tests.store.test_desk import make_task

NOW = T0 + 3600  # the API's pinned clock
HOUR = 3600.0
DAY = 86400.0


def occ(type: str, at: float, customer: str = "C1", **data: Any) -> Occurrence:
    return Occurrence(f"{customer}-{type}-{at}", type, at, customer, data)


def watched(*events: Occurrence) -> WatchedCustomer:
    return WatchedCustomer("C1", None, tuple(events), ())


class TestSignals:
    def test_counts_pairs_and_the_lowest_score(self) -> None:
        since = NOW - 30 * DAY
        found = signals(
            watched(
                occ("outage.resolved", since + HOUR, outage_id="o0"),  # started before the window: counted from it
                occ("service.call", NOW - 3 * HOUR),
                occ("outage.started", NOW - 2 * HOUR, outage_id="o1"),
                occ("complaint.opened", NOW - 2 * HOUR, complaint_id="k1"),
                occ("complaint.opened", NOW - 2 * HOUR, complaint_id="k2"),
                occ("survey.response", NOW - 2 * HOUR, score=8),
                occ("outage.resolved", NOW - HOUR, outage_id="o1"),
                occ("complaint.resolved", NOW - HOUR, complaint_id="k1"),
                occ("survey.response", NOW - HOUR, score=4),
                occ("payment.failed", NOW - HOUR),
                occ("outage.started", NOW - HOUR / 2, outage_id="o2"),  # still on: until now
            ),
            since,
            NOW,
        )
        assert found == Signals(1, 60 + 60 + 30, 1, 4, 1)
        assert found.why() == ["150 outage minutes", "1 open complaint", "survey score 4", "1 failed payment"]

    def test_events_kept_without_their_data_pair_in_order(self) -> None:
        since = NOW - 30 * DAY
        found = signals(
            watched(
                occ("outage.started", NOW - 2 * HOUR),
                occ("outage.resolved", NOW - HOUR),
                occ("complaint.opened", NOW - HOUR),
                occ("survey.response", NOW),
            ),
            since,
            NOW,
        )
        assert found == Signals(0, 60, 1, None, 0)

    @pytest.mark.parametrize(
        ("found", "why"),
        [(Signals(service_calls=1), []), (Signals(service_calls=2), ["2 service calls"]),
         (Signals(lowest_survey_score=7), []), (Signals(lowest_survey_score=6), ["survey score 6"]),
         (Signals(open_complaints=2, failed_payments=3), ["2 open complaints", "3 failed payments"])],
    )  # fmt: skip
    def test_what_counts_as_distress(self, found: Signals, why: list[str]) -> None:
        assert found.why() == why


def customers(api: Api) -> None:
    store = api.ctx.open_store()
    for customer, tier, value in (("big", "platinum", 50_000), ("rich", "gold", 20_000), ("mid", "silver", 5000),
                                  ("cased", "standard", 3000), ("low", "gold", 1000), ("old", "platinum", 99_999),
                                  ("fine", "gold", 8000)):  # fmt: skip
        store.put_profile(customer, T0 - 60 * DAY, {"tier": tier, "annual_value": value, "segment": "consumer"})
    for event in (
        occ("service.call", NOW - DAY, "big"),  # one call: no distress
        occ("service.call", NOW - 2 * DAY, "rich"),
        occ("service.call", NOW - DAY, "rich"),
        occ("outage.started", NOW - 2 * HOUR, "mid", outage_id="o1"),
        occ("outage.resolved", NOW - HOUR, "mid", outage_id="o1"),
        occ("survey.response", NOW - DAY, "low", score=3),
        occ("payment.failed", NOW - 40 * DAY, "old"),  # before the window
        occ("survey.response", NOW - DAY, "fine", score=9),
    ):
        store.append_history(event)
    store.commit()
    store.close()
    api.put(make_task("t1", case_id="case-1", customer_id="cased", priority="P1"))


def test_the_most_valuable_first_with_what_happened(api_factory: ApiFactory) -> None:
    api = api_factory()
    customers(api)
    body = api.get("/api/customers/at-risk").json()
    assert [c["customer_id"] for c in body["items"]] == ["rich", "mid", "cased", "low"]
    assert (body["truncated"], body["limit"], body["since"]) == (False, 50, "2026-10-03T10:00:00Z")
    rich, mid, cased, low = body["items"]
    assert (rich["annual_value"], rich["tier"], rich["segment"]) == (20_000, "gold", "consumer")
    assert rich["why"] == ["2 service calls"]
    assert mid["signals"] == {
        "service_calls": 0,
        "outage_minutes": 60,
        "open_complaints": 0,
        "lowest_survey_score": None,
        "failed_payments": 0,
    }
    assert cased["why"] == ["open case: P1, open"]
    assert [c["case_id"] for c in cased["cases"]] == ["case-1"]
    assert low["why"] == ["survey score 3"] and low["cases"] == []
    cut = api.get("/api/customers/at-risk", params={"limit": 2}).json()
    assert ([c["customer_id"] for c in cut["items"]], cut["truncated"]) == (["rich", "mid"], True)
    assert api.get("/api/customers/at-risk", params={"limit": 0}).status_code == 422


def test_customers_are_looked_at_in_chunks_and_a_cut_scan_says_so(
    api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_factory()
    customers(api)
    monkeypatch.setattr("recovery.api.risk.CHUNK", 2)
    body = api.get("/api/customers/at-risk").json()
    assert [c["customer_id"] for c in body["items"]] == ["rich", "mid", "cased", "low"]
    assert (body["truncated"], body["scanned"]) == (False, 6)  # big, rich, fine, mid, cased and low
    monkeypatch.setattr("recovery.api.risk.MAX_SCANNED", 3)
    body = api.get("/api/customers/at-risk").json()
    assert [c["customer_id"] for c in body["items"]] == ["rich"]  # of big, rich and fine
    assert (body["truncated"], body["scanned"]) == (True, 3)
