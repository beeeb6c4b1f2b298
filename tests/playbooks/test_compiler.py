"""compile_playbook: each expression is checked for the type its place wants (a condition gives true/false, an
amount a number)."""

from __future__ import annotations

import pytest

from recovery.catalog import EventCatalog, EventType
from recovery.engine import Engine
from recovery.events import Event
from recovery.exceptions import PlaybookError
from recovery.playbooks.loader import load_playbook_text
from recovery.store import MemoryStore

PLAYBOOK = """\
id: p
trigger:
  event: x.y
actions:
  - task:
      queue: q
      priority: P2
      due_in: 24h
      title: t
      reason: r
      when: "{when}"
  - gesture:
      type: apology
      amount: "{amount}"
      reason: r
"""


CUSTOM = EventCatalog({"x.y": EventType("x.y", {"x": "any", "n": "number"})})
"""A custom type with a free-form field and a number."""


def problems(when: str = "true", amount: str = "5") -> list[str]:
    try:
        load_playbook_text(PLAYBOOK.format(when=when, amount=amount), "p.yaml", CUSTOM)
    except PlaybookError as exc:
        return [p.message for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("place", "text", "message"),
    [
        ("when", "1 + 1", "expected bool here, but the expression gives number"),
        ("amount", "'a'", "expected number here, but the expression gives string"),
    ],
)
def test_wanted_type(place: str, text: str, message: str) -> None:
    assert problems(**{place: text}) == [message]


@pytest.mark.parametrize("text", ["event.data.x", "null", "1 < 2"])
def test_wanted_type_accepts_any_null_and_the_type(text: str) -> None:
    assert problems(when=text) == []


LARGE = """\
id: large
customers:
  tiers: [gold, platinum]
  where: customer.region != "mars"
trigger:
  event: x.y
when: {when}
actions:
  - task: {{queue: q, priority: P2, due_in: 24h, title: t, reason: r}}
"""


def test_a_condition_beyond_durable_rules_limits_still_runs() -> None:
    # 9 `!=` (an $or each) and 8 `and`, with the customer filters: more $and/$or than durable-rules 2.0.28 takes
    when = " and ".join(f"event.data.n != {i}" for i in range(9))
    pb = load_playbook_text(LARGE.format(when=when), "large.yaml", CUSTOM)
    engine = Engine([pb], MemoryStore())

    def raised(customer: str, n: int) -> list[str]:
        event = {"id": f"{customer}-{n}", "type": "x.y", "occurred_at": "2026-11-02T09:00:00Z", "data": {"n": n}}
        return [e.kind for e in engine.process(Event.from_dict({**event, "customer_id": customer}))]

    profile = {"id": "p1", "type": "customer.updated", "occurred_at": "2026-11-01T09:00:00Z", "customer_id": "G"}
    engine.process(Event.from_dict({**profile, "data": {"tier": "gold", "region": "eu"}}))
    assert (raised("G", 3), raised("G", 20), raised("S", 20)) == ([], ["task"], [])


class TestShadowAndHoldout:
    BASE = (
        "id: x\n{extra}\ntrigger: {{event: service.call}}\n"
        "actions: [{{task: {{queue: q, priority: P2, due_in: 1d, title: t, reason: r}}}}]\n"
    )

    @pytest.mark.parametrize(
        ("extra", "mode", "holdout", "salt"),
        [
            ("", "live", 0.0, "x"),
            ("mode: shadow", "shadow", 0.0, "x"),
            ("holdout: 10%", "live", 0.10, "x"),
            ("holdout: 12.5\nholdout_salt: spring", "live", 0.125, "spring"),
            ("holdout: 50%", "live", 0.50, "x"),
        ],
    )
    def test_mode_holdout_and_salt(self, extra: str, mode: str, holdout: float, salt: str) -> None:
        pb = load_playbook_text(self.BASE.format(extra=extra), "x.yaml")
        assert (pb.mode, pb.holdout, pb.holdout_salt) == (mode, holdout, salt)

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ("holdout: 60%", "x.yaml:2:10: holdout: Input should be less than or equal to 50 (got '60%')"),
            ("holdout: 0%", "x.yaml:2:10: holdout: Input should be greater than 0 (got '0%')"),
            ("mode: dark", "x.yaml:2:7: mode: Input should be 'live' or 'shadow' (got 'dark')"),
        ],
    )
    def test_a_share_out_of_range_or_another_mode_is_a_located_error(self, extra: str, message: str) -> None:
        with pytest.raises(PlaybookError) as caught:
            load_playbook_text(self.BASE.format(extra=extra), "x.yaml")
        assert str(caught.value) == message
