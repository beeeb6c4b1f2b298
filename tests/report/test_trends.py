"""Trends on hand-computed weeks: complaints per category, calls per reason, outage minutes per region (the week
the outage started), partial weeks, and which are rising."""

from __future__ import annotations

import pytest

from recovery.report.trends import rising
from tests.report.conftest import ev, report, run


def complaints(week: int, n: int, category: str | None = "billing") -> list:  # type: ignore[type-arg]
    data = {} if category is None else {"category": category}
    return [ev("complaint.opened", "C1", 7 * week + 1, {"complaint_id": f"K{week}-{i}", **data}) for i in range(n)]


def test_weekly_series_and_the_rising_ones() -> None:
    events = complaints(0, 2) + complaints(1, 2) + complaints(2, 5) + complaints(2, 1, None) + complaints(3, 9)
    events += [ev("service.call", "C1", 7 * w + 2, {"reason": "router"}) for w in range(3) for _ in range(4)]
    trends = report(run(events), 0, 24)["trends"]  # weeks 0, 1, 2 whole; week 3 partial (ends on day 28)
    assert [(w["label"], w["complete"]) for w in trends["weeks"]] == [
        ("2026-W45", True),
        ("2026-W46", True),
        ("2026-W47", True),
        ("2026-W48", False),
    ]
    assert trends["complaints"]["series"] == {"billing": [2, 2, 5, 9], "uncategorized": [0, 0, 1, 0]}
    assert trends["complaints"]["totals"] == {"billing": 18, "uncategorized": 1}
    assert trends["complaints"]["rising"] == ["billing"]  # 5 > 1.5 * mean(2, 2); the partial week is left out
    assert trends["service_calls"]["series"] == {"router": [4, 4, 4, 0]}
    assert trends["service_calls"]["rising"] == []


def test_outage_minutes_in_the_week_each_started() -> None:
    events = [
        ev("outage.started", None, 1, {"outage_id": "O1", "region": "north"}),
        ev("outage.resolved", None, 1 + 90 / 1440, {"outage_id": "O1"}),
        ev("outage.started", None, 6.99, {"outage_id": "O2", "region": "north"}),
        ev("outage.resolved", None, 7.5, {"outage_id": "O2"}),  # into the next week: counted where it started
        ev("outage.started", None, 13, {"outage_id": "O3", "customer_ids": ["C1"]}),  # never resolved
    ]
    minutes = report(run(events), 0, 14)["trends"]["outage_minutes"]
    o2 = (7.5 - 6.99) * 1440
    assert minutes["series"]["north"] == [pytest.approx(90 + o2, abs=0.1), 0]
    assert minutes["series"]["unspecified"] == [0, 1440]  # until the report's end
    assert minutes["unresolved"] == 1


@pytest.mark.parametrize(
    ("values", "complete", "minimum", "expected"),
    [
        ([2, 2, 4], [True, True, True], 3, True),  # 4 > 3.0
        ([2, 2, 3], [True, True, True], 3, False),  # 3 is not above 1.5 * 2
        ([0, 0, 2], [True, True, True], 3, False),  # below the minimum
        ([0, 0, 3], [True, True, True], 3, True),  # from nothing
        ([9], [True], 3, False),  # nothing to compare with
        ([1, 9, 0], [True, True, False], 3, True),  # the partial week is left out
    ],
)
def test_the_rising_rule(values: list[float], complete: list[bool], minimum: float, expected: bool) -> None:
    assert rising(values, complete, minimum) is expected
