"""The holdout comparison (report/holdout.py) and the shadow and held-out counts of the recovery results
(report/results.py), on a small stream with known losses: the shares, the save effect and its interval computed here
by formula."""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Any

import pytest

from recovery.events import Event
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbook_text
from recovery.report.html import render_html
from tests.report.conftest import ev, report, run

CALLER = """\
id: caller
version: 4
holdout: 50%
trigger: {event: service.call}
actions:
  - task: {queue: care, priority: P2, due_in: 1d, title: call, reason: called}
"""
SHADOW = """\
id: new-caller
version: 2
mode: shadow
trigger: {event: service.call}
actions:
  - task: {queue: care, priority: P3, due_in: 2d, title: call, reason: called}
  - gesture: {type: apology, amount: 5, currency: EUR, reason: sorry}
"""


@pytest.fixture(scope="module")
def caller() -> CompiledPlaybook:
    return load_playbook_text(CALLER, "caller.yaml")


def split(pb: CompiledPlaybook, n: int) -> tuple[list[str], list[str]]:
    """The first `n` treated and `n` held-out customers among H-0, H-1..."""
    treated: list[str] = []
    held: list[str] = []
    for i in range(10_000):
        cid = f"H-{i}"
        (held if pb.held_out(cid) else treated).append(cid)
        if len(treated) >= n and len(held) >= n:
            return treated[:n], held[:n]
    raise AssertionError("not enough customers")


def stream(treated: list[str], held: list[str], losses: dict[str, float]) -> list[Event]:
    """Each customer calls on day 1 + (their index mod 5) (the first trigger); the first treated one calls again
    two days later. `losses`: customer -> days after their first call when they are lost."""
    events: list[Event] = []
    first: dict[str, float] = {}
    for i, cid in enumerate(treated + held):
        first[cid] = 1 + i % 5
        events.append(ev("service.call", cid, first[cid], {"reason": "billing"}))
    events.append(ev("service.call", treated[0], first[treated[0]] + 2, {"reason": "billing"}))
    for cid, after in losses.items():
        events.append(ev("customer.lost", cid, first[cid] + after, {"reason": "price"}))
    return sorted(events, key=lambda e: e.occurred_at)


def expected(lost_t: int, n_t: int, lost_h: int, n_h: int) -> tuple[float, float, float]:
    """The save effect and its 95% interval, by the formula: (p_h - p_t) +/- z * sqrt(p_t q_t / n_t + p_h q_h / n_h)."""
    p_t, p_h = lost_t / n_t, lost_h / n_h
    z = NormalDist().inv_cdf(0.975)
    margin = z * math.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    return p_h - p_t, p_h - p_t - margin, p_h - p_t + margin


@pytest.fixture(scope="module")
def full(caller: CompiledPlaybook) -> dict[str, Any]:
    treated, held = split(caller, 40)
    losses = {cid: 10.0 for cid in treated[1:5]}  # 4 treated lost within 30 days
    losses |= {cid: 60.0 for cid in treated[5:7]}  # 2 more within 90
    losses[treated[0]] = 30.5  # 28.5 days after their second call: the first trigger counts, so not within 30
    losses |= {cid: 5.0 for cid in held[:12]}  # 12 held out lost within 30 days
    losses |= {cid: 80.0 for cid in held[12:16]}  # 4 more within 90
    losses[held[16]] = 95.0  # after 90 days: never counted
    store = run(stream(treated, held, losses), [caller, load_playbook_text(SHADOW, "new-caller.yaml")])
    return report(store, 0, 200)


class TestComparison:
    def test_shares_lost_the_save_effect_and_its_interval(self, full: dict[str, Any]) -> None:
        h = full["holdout"]
        assert (h["min_customers"], h["confidence"]) == (30, 0.95)
        assert h["method"] == "two-proportion normal approximation (Wald, unpooled)"
        assert list(h["playbooks"]) == ["caller"]  # not the shadow playbook, which holds no one out
        caller = h["playbooks"]["caller"]
        assert caller["customers"] == {"treated": 40, "held_out": 40}
        assert caller["held_out_share"] == 0.5
        for window, (lost_t, lost_h) in {"30d": (4, 12), "90d": (4 + 2 + 1, 12 + 4)}.items():
            w = caller["windows"][window]
            assert w["treated"] == {"customers": 40, "lost": lost_t, "share_lost": lost_t / 40, "pending": 0}
            assert w["held_out"] == {"customers": 40, "lost": lost_h, "share_lost": lost_h / 40, "pending": 0}
            effect, low, high = expected(lost_t, 40, lost_h, 40)
            assert w["sufficient"] is True
            assert w["save_effect"] == pytest.approx(effect)
            assert w["ci95"] == pytest.approx([low, high])
        # 30 days: 0.3 - 0.1 = 0.2, +/- 1.96 * sqrt(0.1 * 0.9 / 40 + 0.3 * 0.7 / 40) = 0.1698
        assert caller["windows"]["30d"]["ci95"] == pytest.approx([0.2 - 0.1698, 0.2 + 0.1698], abs=1e-4)

    def test_the_results_count_shadow_effects_by_version_and_held_out_ones(self, full: dict[str, Any]) -> None:
        shadow = full["playbooks"]["new-caller"]
        assert shadow["tasks"] == 0
        # 81 calls (80 customers, one twice), each a task and a gesture of 5 EUR in shadow mode
        found = {"tasks": 81, "gestures": 81, "gesture_amount": {"EUR": 405.0}}
        assert shadow["shadow"] == {**found, "by_version": {"2": found}}
        assert shadow["muted"] == {"tasks": 0, "by": {}}
        caller = full["playbooks"]["caller"]
        assert caller["tasks"] == 41  # the treated: 40 customers, one twice
        assert caller["held_out"] == {"tasks": 40, "gestures": 0}
        assert caller["muted"] == {"tasks": 0, "by": {}}

    def test_the_page_shows_the_comparison_and_the_shadow_effects(self, full: dict[str, Any]) -> None:
        page = render_html(full)
        assert 'id="holdout-comparison"' in page and 'data-window="90d"' in page
        assert "insufficient (fewer" not in page
        assert 'id="shadow"' in page and "405 EUR" in page


def test_windows_not_over_by_the_periods_end_are_pending(caller: CompiledPlaybook) -> None:
    treated, held = split(caller, 40)
    store = run(stream(treated, held, {cid: 2.0 for cid in held[:3]}), [caller])
    # Period [0, 33): first calls on days 1..5, so 30 days have passed for those on days 1, 2 and 3 (3 in 5).
    w = report(store, 0, 33)["holdout"]["playbooks"]["caller"]["windows"]
    assert (w["30d"]["treated"]["customers"], w["30d"]["treated"]["pending"]) == (24, 16)
    assert (w["30d"]["held_out"]["customers"], w["30d"]["held_out"]["pending"]) == (24, 16)
    assert w["30d"]["sufficient"] is False and w["30d"]["save_effect"] is None and w["30d"]["ci95"] is None
    assert w["90d"]["treated"] == {"customers": 0, "lost": 0, "share_lost": None, "pending": 40}


def test_below_the_floor_the_comparison_is_insufficient(caller: CompiledPlaybook) -> None:
    treated, held = split(caller, 29)
    store = run(stream(treated, held, {held[0]: 3.0}), [caller])
    r = report(store, 0, 200)
    w = r["holdout"]["playbooks"]["caller"]["windows"]["30d"]
    assert w["held_out"] == {"customers": 29, "lost": 1, "share_lost": 1 / 29, "pending": 0}
    assert (w["sufficient"], w["save_effect"], w["ci95"]) == (False, None, None)
    assert "insufficient (fewer than 30 per group)" in render_html(r)


def test_no_holdout_no_comparison(caller: CompiledPlaybook) -> None:
    r = report(run([ev("service.call", "C1", 1)], [dataclasses.replace(caller, holdout=0.0)]), 0, 10)
    assert r["holdout"]["playbooks"] == {}
    assert "No playbook held out a customer in the period." in render_html(r)
