"""The guerrilla metrics on small streams computed by hand: new, lost, net, renewed by reason, referrals, revenue by
segment, tier and region, churn of the starting count and value; a value from the event, or else the customer's at
that time."""

from __future__ import annotations

import pytest

from recovery.exceptions import ReportError
from recovery.report.periods import periods
from recovery.times import format_time, parse_time
from tests.report.conftest import DAY, W, ev, profile, report, run

STREAM = [
    profile("A", -10, tier="gold", region="north", segment="smb", annual_value=1000),
    profile("B", -10, tier="silver", region="south", annual_value=500),
    ev("customer.joined", "C", 1, {"annual_value": 200, "segment": "home", "channel": "web"}),
    ev("customer.lost", "A", 2, {"reason": "price"}),  # no value: A's profile's at that time, 1000
    profile("A", 3, tier="gold", region="north", annual_value=5000),  # after the loss: changes neither
    ev("customer.renewed", "B", 4, {"annual_value": 600, "reason": "loyalty"}),
    ev("customer.renewed", "C", 5, {"reason": "offer"}),  # no value: C's at that time, 200 (joined)
    ev("customer.referred", "B", 6, {"referred_customer_id": "D"}),
    ev("customer.lost", "B", 8, {"reason": "service", "annual_value": 650}),
]


def test_the_whole_period() -> None:
    c = report(run(STREAM), 0, 14)["customers"]
    assert c["new"] == {"count": 1, "value": 200}
    assert c["lost"] == {"count": 2, "value": 1000 + 650}
    assert c["net"] == {"count": -1, "value": 200 - 1650}
    assert c["renewed"] == {
        "count": 2,
        "value": 800,
        "by_reason": {"loyalty": {"count": 1, "value": 600}, "offer": {"count": 1, "value": 200}},
    }
    assert c["referrals"] == 1
    assert (c["revenue_start"]["customers"], c["revenue_start"]["value"]) == (2, 1500)
    assert c["churn"] == {"count_share": 2 / 2, "value_share": 1650 / 1500}
    end = c["revenue_end"]
    assert (end["customers"], end["value"]) == (1, 200)  # C only
    assert end["by_tier"] == {"standard": {"customers": 1, "value": 200}}
    assert end["by_segment"] == {"home": {"customers": 1, "value": 200}}
    assert end["by_region"] == {"unspecified": {"customers": 1, "value": 200}}


def test_per_week() -> None:
    first, second = report(run(STREAM), 0, 14)["periods"]
    assert (first["label"], first["from"], first["to"]) == ("2026-W45", "2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z")
    assert (first["new"], first["lost"]) == ({"count": 1, "value": 200}, {"count": 1, "value": 1000})
    assert first["referrals"] == 1
    assert first["renewed"]["count"] == 2
    assert first["churn"] == {"count_share": 1 / 2, "value_share": 1000 / 1500}
    end = first["revenue_end"]  # B renewed at 600, C at 200; A lost
    assert (end["customers"], end["value"]) == (2, 800)
    assert end["by_segment"] == {"home": {"customers": 1, "value": 200}, "unspecified": {"customers": 1, "value": 600}}
    assert end["by_tier"] == {"silver": {"customers": 1, "value": 600}, "standard": {"customers": 1, "value": 200}}
    assert end["by_region"] == {"south": {"customers": 1, "value": 600}, "unspecified": {"customers": 1, "value": 200}}
    assert second["label"] == "2026-W46"
    assert (second["new"]["count"], second["lost"], second["renewed"]["count"]) == (0, {"count": 1, "value": 650}, 0)
    assert second["revenue_start"] == end
    assert second["churn"] == {"count_share": 1 / 2, "value_share": 650 / 800}


def test_a_lost_customer_has_the_tier_segment_and_region_of_that_time() -> None:
    lost = report(run(STREAM), 0, 14)["lost"]
    assert [(r["customer_id"], r["value"], r["tier"], r["segment"], r["region"], r["reason"]) for r in lost] == [
        ("A", 1000, "gold", "smb", "north", "price"),
        ("B", 650, "silver", "unspecified", "south", "service"),
    ]


def test_a_customer_won_back_is_active_again_a_profile_does_not_bring_one_back() -> None:
    store = run(
        [
            profile("A", -5, annual_value=100),
            profile("B", -5, annual_value=100),
            ev("customer.lost", "A", 1),
            ev("customer.lost", "B", 1),
            ev("customer.joined", "A", 2, {"annual_value": 300}),
            profile("B", 3, annual_value=900),
        ]
    )
    end = report(store, 0, 7)["customers"]["revenue_end"]
    assert (end["customers"], end["value"]) == (1, 300)


def test_an_event_at_a_boundary_belongs_to_the_period_it_starts() -> None:
    store = run([profile("A", -1, annual_value=100), ev("customer.lost", "A", 7)])
    first, second = report(store, 0, 14)["periods"]
    assert (first["lost"]["count"], second["lost"]["count"]) == (0, 1)
    assert first["revenue_end"]["customers"] == 1 and second["revenue_end"]["customers"] == 0


def test_shares_of_nothing_are_null() -> None:
    c = report(run([ev("customer.joined", "A", 1, {"annual_value": 10}), ev("customer.lost", "A", 2)]), 0, 7)
    assert c["customers"]["churn"] == {"count_share": None, "value_share": None}  # nobody active at the start
    assert c["customers"]["lost"] == {"count": 1, "value": 10}


def test_periods_by_month_are_calendar_months_cut_to_the_report() -> None:
    since, until = parse_time("2026-10-20T00:00:00Z"), parse_time("2026-12-03T00:00:00Z")
    assert [(p.label, format_time(p.start), format_time(p.end)) for p in periods(since, until, "month")] == [
        ("2026-10", "2026-10-20T00:00:00Z", "2026-11-01T00:00:00Z"),
        ("2026-11", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-12", "2026-12-01T00:00:00Z", "2026-12-03T00:00:00Z"),
    ]
    dec = parse_time("2026-12-15T00:00:00Z")
    assert [p.label for p in periods(dec, dec + 40 * DAY, "month")] == ["2026-12", "2027-01"]
    store = run([ev("customer.joined", "A", -13, {"annual_value": 5}), ev("customer.joined", "B", 0)])
    months = report(store, -13, 31, "month")["periods"]  # 2026-10-20 to 2026-12-03
    assert [(p["label"], p["new"]["count"]) for p in months] == [("2026-10", 1), ("2026-11", 1), ("2026-12", 0)]
    assert W == parse_time("2026-11-02T00:00:00Z")


def test_an_empty_period_is_refused() -> None:
    with pytest.raises(ReportError, match="not before"):
        report(run([]), 3, 3)
