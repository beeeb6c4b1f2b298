"""Shadow playbooks and holdouts in the engine: effects withheld by design (engine.py `_decide`, cases.py
`withhold`): kept with their reason and counted, never raised, in a case or an inhibition; the order of the checks
(cooldown, shadow, holdout, inhibition and snooze); the holdout's assignment (compiler.py `held_out`)."""

from __future__ import annotations

import math

import pytest

from recovery.engine import Engine
from recovery.engine.matcher import Matcher, MatcherError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbook_text
from recovery.store import MemoryStore
from recovery.times import format_time
from tests.conftest import T0
from tests.engine.conftest import Make

HOUR = 3600.0
DAY = 86400.0

CALLER = """\
id: caller
version: {version}
{extra}
trigger:
  event: service.call
when: event.data.reason != "noise"
actions:
  - task: {{queue: care, priority: P2, due_in: 1d, title: call, reason: called}}
  - gesture: {{type: apology, amount: 5, reason: sorry}}
"""
COMPLAINT = """\
id: complaint
trigger:
  event: complaint.opened
{extra}
actions:
  - task: {{queue: complaints, priority: P1, due_in: 4h, title: complaint, reason: complained}}
"""


def caller(extra: str = "", version: int = 1) -> CompiledPlaybook:
    return load_playbook_text(CALLER.format(extra=extra, version=version), "caller.yaml")


def complaint(extra: str = "") -> CompiledPlaybook:
    return load_playbook_text(COMPLAINT.format(extra=extra), "complaint.yaml")


def customers(pb: CompiledPlaybook, held_out: bool, n: int = 1) -> list[str]:
    """The first `n` customer ids C0, C1... that are (or are not) in the holdout of `pb`."""
    found = [cid for cid in (f"C{i}" for i in range(10_000)) if pb.held_out(cid) == held_out]
    return found[:n]


def kept(store: MemoryStore, customer_id: str | None = None) -> list[tuple[str, str, str, int]]:
    """The kept (muted or withheld) effects: (kind, muted_by, reason, playbook version), sorted."""
    return sorted(
        (m.effect.kind, m.muted_by, m.reason, m.effect.playbook_version)
        for m in store.muted(customer_id, -math.inf, math.inf)
    )


class TestShadow:
    def test_a_shadow_playbook_raises_nothing_and_keeps_its_effects_with_its_version(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine([caller("mode: shadow", version=3)], store)
        assert engine.process(ev("service.call", 0, reason="billing")) == []
        assert engine.process(ev("service.call", HOUR, "C2", reason="billing")) == []
        assert engine.process(ev("service.call", 2 * HOUR, "C2", reason="noise")) == []  # no match
        assert store.effects() == []
        assert store.open_case("C1") is None
        assert kept(store, "C1") == [("gesture", "shadow", "shadow", 3), ("task", "shadow", "shadow", 3)]
        assert engine.stats.matches == {"caller": 2}
        assert engine.stats.muted == {("caller", "shadow"): 4}
        assert engine.stats.shadow == {("caller", 3, "task"): 2, ("caller", 3, "gesture"): 2}
        assert engine.stats.effects == 0
        assert engine.stats.triggers == {}

    def test_promoting_is_the_mode_line_alone(self, ev: Make) -> None:
        shadow, live = caller("mode: shadow"), caller("mode: live")
        assert (shadow.mode, live.mode, caller().mode) == ("shadow", "live", "live")
        store = MemoryStore()
        assert len(Engine([live], store).process(ev("service.call", 0, reason="billing"))) == 2
        assert kept(store) == []

    def test_the_cooldown_comes_first_and_a_shadow_match_starts_it(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine([caller("mode: shadow\ncooldown: 7d")], store)
        for at in (0, DAY, 6 * DAY, 7 * DAY):  # 1 and 6 days after the first are in its cooldown; 7 days are not
            engine.process(ev("service.call", at, reason="billing"))
        assert engine.stats.matches == {"caller": 4}
        assert engine.stats.suppressed == {"caller": 2}
        assert [m.at - T0 for m in store.muted("C1", -math.inf, math.inf) if m.effect.kind == "task"] == [0, 7 * DAY]
        assert store.get_cooldowns("C1") == {"caller#withheld": T0 + 7 * DAY}

    def test_a_shadow_playbook_neither_inhibits_nor_opens_a_case(self, ev: Make) -> None:
        store = MemoryStore()
        pbs = [caller("mode: shadow"), complaint("inhibited_by: [{playbook: caller, within: 2d}]")]
        engine = Engine(pbs, store)
        engine.process(ev("service.call", 0, reason="billing"))
        raised = engine.process(ev("complaint.opened", HOUR, complaint_id="K1"))
        assert [e.playbook for e in raised] == ["complaint"]
        assert [r for _, _, r, _ in kept(store)] == ["shadow", "shadow"]

    def test_a_shadow_playbooks_failures_are_counted_per_playbook_and_the_live_ones_go_on(self, ev: Make) -> None:
        class Failing(Matcher):
            def matches_json(self, name: str, message: str) -> bool:
                if name == "complaint":
                    raise RuntimeError("boom")
                if name == "caller":
                    raise MatcherError("odd data")
                return super().matches_json(name, message)

        pbs = [
            caller("mode: shadow"),
            complaint("mode: shadow\nwhen: event.data.complaint_id != 'x'"),
            load_playbook_text(COMPLAINT.format(extra="").replace("id: complaint", "id: live"), "live.yaml"),
        ]
        matcher = Failing((pb.id, pb.condition.pattern) for pb in pbs)
        engine = Engine(pbs, MemoryStore(), matcher=matcher)
        engine.process(ev("service.call", 0, reason="billing"))
        raised = engine.process(ev("complaint.opened", HOUR, complaint_id="K1"))
        assert [e.playbook for e in raised] == ["live"]
        assert engine.stats.playbook_errors == {"caller": 1, "complaint": 1}
        assert engine.stats.errors == 2


class TestHoldout:
    def test_a_held_out_customer_gets_nothing_and_their_would_be_effects_are_kept(self, ev: Make) -> None:
        pb = caller("holdout: 20%")
        (out,), (treated,) = customers(pb, True), customers(pb, False)
        store = MemoryStore()
        engine = Engine([pb], store)
        assert engine.process(ev("service.call", 0, out, reason="billing")) == []
        assert len(engine.process(ev("service.call", 0, treated, reason="billing"))) == 2
        assert [e.customer_id for e in store.effects()] == [treated, treated]
        assert store.open_case(out) is None and store.open_case(treated) is not None
        assert kept(store, out) == [("gesture", "holdout", "held-out", 1), ("task", "holdout", "held-out", 1)]
        assert engine.stats.muted == {("caller", "held-out"): 2}
        assert engine.stats.triggers == {("caller", "held-out"): 1, ("caller", "treated"): 1}
        assert engine.stats.shadow == {}

    def test_a_held_out_match_starts_the_cooldown_and_inhibits_nothing(self, ev: Make) -> None:
        pb = caller("holdout: 20%\ncooldown: 7d")
        (out,) = customers(pb, True)
        store = MemoryStore()
        engine = Engine([pb, complaint("inhibited_by: [{playbook: caller, within: 2d}]")], store)
        engine.process(ev("service.call", 0, out, reason="billing"))
        engine.process(ev("service.call", DAY, out, reason="billing"))  # in the cooldown
        raised = engine.process(ev("complaint.opened", 2 * HOUR, out, complaint_id="K1"))
        assert [e.playbook for e in raised] == ["complaint"]
        assert engine.stats.suppressed == {"caller": 1}
        assert engine.stats.triggers == {("caller", "held-out"): 1}
        assert store.get_cooldowns(out) == {"caller#withheld": T0}

    def test_a_treated_customers_raise_still_inhibits(self, ev: Make) -> None:
        pb = caller("holdout: 20%")
        (treated,) = customers(pb, False)
        store = MemoryStore()
        engine = Engine([pb, complaint("inhibited_by: [{playbook: caller, within: 2d}]")], store)
        engine.process(ev("service.call", 0, treated, reason="billing"))
        assert engine.process(ev("complaint.opened", HOUR, treated, complaint_id="K1")) == []
        assert engine.stats.muted == {("complaint", "inhibited"): 1}

    def test_the_holdout_comes_before_a_snooze_and_shadow_before_the_holdout(self, ev: Make) -> None:
        pb = caller("holdout: 20%")
        (out,) = customers(pb, True)
        store = MemoryStore()
        engine = Engine([pb], store)
        engine.process(ev("playbook.snoozed", 0, out, playbook="caller", until=format_time(T0 + DAY)))
        engine.process(ev("service.call", HOUR, out, reason="billing"))
        assert engine.stats.muted == {("caller", "held-out"): 2}
        store = MemoryStore()
        engine = Engine([caller("holdout: 20%\nmode: shadow")], store)
        engine.process(ev("service.call", HOUR, out, reason="billing"))
        assert engine.stats.muted == {("caller", "shadow"): 2}
        assert engine.stats.triggers == {}

    def test_the_share_held_out_of_10000_customers_is_the_holdout_within_four_standard_deviations(self) -> None:
        n, p = 10_000, 0.10
        pb = caller("holdout: 10%")
        held = sum(pb.held_out(f"C-{i:05d}") for i in range(n))
        # Each customer is held out with probability p (a uniform hash): the count is binomial(n, p), whose
        # standard deviation is sqrt(n p (1 - p)) = 30; 4 of them is 120 (a chance of about 6e-5 to fall outside).
        tolerance = 4 * math.sqrt(n * p * (1 - p))
        assert tolerance == pytest.approx(120)
        assert abs(held - n * p) <= tolerance

    def test_the_engine_holds_out_the_customers_the_playbook_says(self, ev: Make) -> None:
        pb = caller("holdout: 10%")
        engine = Engine([pb], MemoryStore())
        ids = [f"C-{i:04d}" for i in range(2_000)]
        for i, cid in enumerate(ids):
            engine.process(ev("service.call", i, cid, reason="billing"))
        expected = sum(pb.held_out(cid) for cid in ids)
        assert engine.stats.triggers == {("caller", "held-out"): expected, ("caller", "treated"): 2_000 - expected}

    def test_a_new_version_keeps_the_assignment_and_a_larger_share_only_adds_customers(self) -> None:
        ids = [f"C-{i:05d}" for i in range(10_000)]
        v1 = caller("holdout: 10%", version=1)
        v2 = load_playbook_text(
            CALLER.format(extra="holdout: 10%", version=2).replace('"noise"', '"other"'), "caller.yaml"
        )
        wider = caller("holdout: 25%", version=3)
        at_10 = {cid for cid in ids if v1.held_out(cid)}
        assert at_10 == {cid for cid in ids if v2.held_out(cid)}
        at_25 = {cid for cid in ids if wider.held_out(cid)}
        assert at_10 < at_25
        assert abs(len(at_25) - 2_500) <= 4 * math.sqrt(10_000 * 0.25 * 0.75)

    def test_the_salt_alone_draws_another_holdout(self) -> None:
        ids = [f"C-{i:05d}" for i in range(10_000)]
        same_salt = load_playbook_text(
            CALLER.format(extra="holdout: 10%\nholdout_salt: caller", version=1).replace("id: caller", "id: other"),
            "other.yaml",
        )
        salted = caller("holdout: 10%\nholdout_salt: spring", version=1)
        default = caller("holdout: 10%")
        base = {cid for cid in ids if default.held_out(cid)}
        assert {cid for cid in ids if same_salt.held_out(cid)} == base
        overlap = len(base & {cid for cid in ids if salted.held_out(cid)})
        # Independent draws overlap on p * p of the customers: 100 of 10,000 (sd about 10).
        assert abs(overlap - 100) <= 40
