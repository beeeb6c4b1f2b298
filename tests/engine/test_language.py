"""The language of issue 17 at work: a trigger on several types, absence per customer, the look-back functions
(count with a filter, sum, distinct, last), and the profile as it was at an event's time. Every expected figure
is worked out by hand from the stream in the test."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from recovery.effects import Effect, Task
from recovery.engine import Engine
from recovery.events import Event
from recovery.exceptions import PlaybookError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbook_text, load_playbooks
from recovery.store import MemoryStore
from recovery.times import format_time
from tests.conftest import T0
from tests.engine.conftest import Make

HOUR = 3600.0
DAY = 86400.0


def playbook(body: str, title: str = "{{ note }}") -> CompiledPlaybook:
    text = f"id: p\nactions:\n  - task: {{queue: q, priority: P2, due_in: 1d, title: '{title}', reason: r}}\n" + body
    return load_playbook_text(text, "p.yaml")


def run(pb: CompiledPlaybook, events: list[Event], until: float | None = None) -> list[Task]:
    engine = Engine([pb], MemoryStore())
    effects: list[Effect] = []
    for event in events:
        effects.extend(engine.process(event))
    if until is not None:
        effects.extend(engine.advance(T0 + until))
    return [e for e in effects if isinstance(e, Task)]


class TestSeveralTypes:
    BODY = """\
trigger:
  event: [complaint.opened, service.call]
let:
  note: event.type
when: count("complaint.opened", 3d) >= 1 and count("service.call", 3d) >= 1
cooldown: 14d
"""

    def test_either_type_triggers_and_one_cooldown_covers_both(self, ev: Make) -> None:
        pb = playbook(self.BODY)
        assert pb.event_types == ("complaint.opened", "service.call")
        found = run(
            pb,
            [
                ev("service.call", 0),  # a call alone: no complaint yet
                ev("complaint.opened", HOUR, complaint_id="K1"),  # both within 3 days: fires, on the complaint
                ev("service.call", 2 * HOUR),  # matches again, within the cooldown
                ev("complaint.opened", 3 * HOUR, complaint_id="K2"),  # so does this
            ],
        )
        assert [(t.title, t.created_at) for t in found] == [("complaint.opened", format_time(T0 + HOUR))]

    def test_each_type_alone_raises_nothing(self, ev: Make) -> None:
        pb = playbook(self.BODY)
        calls = [ev("service.call", i * HOUR) for i in range(5)]
        assert run(pb, calls) == []


class TestAbsencePerCustomer:
    @pytest.mark.parametrize("key", ["", "    key: customer_id\n"], ids=["no-key", "key-customer_id"])
    def test_the_customer_is_the_key(self, ev: Make, key: str) -> None:
        pb = playbook(
            "let:\n  note: event.type\ntrigger:\n  absence:\n    first: payment.failed\n"
            f"    missing: payment.succeeded\n    within: 5d\n{key}"
        )
        assert pb.key is None
        events = [
            ev("payment.failed", 0, "C1"),
            ev("payment.failed", 0, "C2"),
            ev("payment.succeeded", 4 * DAY, "C2"),  # C2 made it good in time, whatever its data
            ev("payment.succeeded", 4 * DAY, "C3"),  # another customer's success answers nothing of C1's
        ]
        found = run(pb, events, until=5 * DAY + 1)
        assert [(t.customer_id, t.created_at) for t in found] == [("C1", format_time(T0 + 5 * DAY))]


class TestLookBack:
    def test_count_with_a_filter_counts_the_matching_events_only(self, ev: Make) -> None:
        pb = playbook(
            "trigger:\n  event: service.call\nlet:\n"
            "  note: count('service.call', 7d, it.data.reason == event.data.reason)\nwhen: true\n"
        )
        events = [
            ev("service.call", 0, reason="billing"),
            ev("service.call", HOUR, reason="network"),
            ev("service.call", 2 * HOUR, reason="billing"),
            ev("service.call", 8 * DAY, reason="billing"),  # the first two billing calls are 8 days before
        ]
        assert [t.title for t in run(pb, events)] == ["1", "1", "2", "1"]

    def test_sum_adds_a_numeric_field_in_the_window(self, ev: Make) -> None:
        pb = playbook(
            "trigger:\n  event: payment.failed\nlet:\n  note: sum('payment.failed', 30d, it.data.amount)\nwhen: true\n"
        )
        events = [
            ev("payment.failed", 0, amount="ninety"),  # not a number: not added
            ev("payment.failed", DAY, amount=30),
            ev("payment.failed", 2 * DAY, amount=45.5),
            ev("payment.failed", 40 * DAY, amount=10),  # the others are out of the window
        ]
        assert [t.title for t in run(pb, events)] == ["0", "30", "75.5", "10"]

    def test_distinct_counts_different_values(self, ev: Make) -> None:
        pb = playbook(
            "trigger:\n  event: service.call\nlet:\n  note: distinct('service.call', 7d, it.data.reason)\nwhen: true\n"
        )
        events = [ev("service.call", i * HOUR, reason=r) for i, r in enumerate(["a", "b", "a", "c", "b"])]
        assert [t.title for t in run(pb, events)] == ["1", "2", "2", "3", "3"]

    def test_values_lists_the_values_in_time_order_nulls_left_out(self, ev: Make) -> None:
        pb = playbook(
            "trigger:\n  event: service.call\nlet:\n  note: values('service.call', 7d, it.data.reason)\n"
            "when: not ('b' in values('service.call', 7d, it.data.reason, it.data.reason != 'a'))\n"
        )
        events = [ev("service.call", i * HOUR, reason=r) for i, r in enumerate(["a", None, "c", "a", "b", "d"])]
        assert [t.title for t in run(pb, events)] == ["a", "a", "a, c", "a, c, a"]  # then a b: no more tasks

    def test_the_latest_complaint_whose_id_is_not_among_the_resolved_ones(self, ev: Make) -> None:
        """A look-back's list in another's condition: the latest complaint still open, not the latest one."""
        pb = playbook(
            "trigger:\n  event: cancellation.requested\nlet:\n"
            "  resolved: values('complaint.resolved', 14d, it.data.complaint_id)\n"
            "  note: last('complaint.opened', 14d, it.data.complaint_id, it.data.complaint_id not in resolved)\n"
            "when: note != null\n"
        )
        events = [
            ev("complaint.opened", 0, complaint_id="K1"),
            ev("complaint.opened", DAY, complaint_id="K2"),
            ev("complaint.resolved", 2 * DAY, complaint_id="K2"),
            ev("cancellation.requested", 3 * DAY),
            ev("complaint.resolved", 4 * DAY, complaint_id="K1"),
            ev("cancellation.requested", 5 * DAY),
        ]
        assert [t.title for t in run(pb, events)] == ["K1"]  # K1 still open at day 3; nothing open at day 5

    def test_last_gives_the_latest_events_field_or_time(self, ev: Make) -> None:
        pb = playbook(
            "trigger:\n  event: cancellation.requested\nlet:\n"
            "  billing: last('complaint.opened', 14d, it.data.complaint_id, it.data.category == 'billing')\n"
            "  since: hours(event.occurred_at - last('complaint.opened', 14d))\nwhen: true\n",
            title="{{ billing }} {{ since }}",
        )
        events = [
            ev("complaint.opened", 0, complaint_id="K1", category="billing"),
            ev("complaint.opened", DAY, complaint_id="K2", category="network"),
            ev("cancellation.requested", DAY + 2 * HOUR),
        ]
        # the latest billing complaint is K1; the latest of any is K2, 2 hours before
        assert [t.title for t in run(pb, events)] == ["K1 2"]


class TestProfileAtTheEventsTime:
    BODY = """\
trigger:
  event: service.call
let:
  note: customer.tier
when: customer.tier == "gold"
"""

    def test_a_late_event_sees_the_profile_of_its_time_whatever_the_arrival_order(self, ev: Make) -> None:
        pb = playbook(self.BODY)
        gold = ev("customer.updated", 0, tier="gold")
        standard = ev("customer.updated", 10 * HOUR, tier="standard")
        call = ev("service.call", 5 * HOUR)  # made while the customer was gold
        orders = [[gold, call, standard], [gold, standard, call], [standard, gold, call], [call, gold, standard]]
        results = [[(t.id, t.title) for t in run(pb, order)] for order in orders[:3]]
        assert results[0] == results[1] == results[2] and [title for _, title in results[0]] == ["gold"]
        assert run(pb, orders[3]) == []  # a call before any profile: no profile then, nothing to match

    def test_late_events_give_the_effects_of_the_stream_in_order(self, ev: Make) -> None:
        pb = playbook(self.BODY)
        profiles = [ev("customer.updated", i * HOUR, tier=["gold", "standard"][i % 2]) for i in range(0, 20, 3)]
        calls = [ev("service.call", i * HOUR + 1) for i in range(20)]
        expected = sorted(t.id for t in run(pb, sorted(profiles + calls, key=lambda e: e.occurred_at)))
        assert len(expected) == 11  # gold over hours 0-2, 6-8, 12-14 and 18-19: 3 + 3 + 3 + 2 calls
        rng = random.Random(7)
        for _ in range(5):  # every call late, after every profile, in any order
            rng.shuffle(calls)
            assert sorted(t.id for t in run(pb, profiles + calls)) == expected


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("trigger:\n  event: servcie.call\nwhen: true\n", "unknown event type 'servcie.call' (did you mean"),
            ("trigger:\n  event: [service.call, complaint.opend]\nwhen: true\n", "'complaint.opened'"),
            (
                "trigger:\n  event: payment.failed\nwhen: event.data.invoice_id != null\n",
                "unknown data field 'invoice_id' for payment.failed",
            ),
            (
                "trigger:\n  event: service.call\nwhen: count('service.call', 7d, it.data.reasn == 'x') > 0\n",
                "unknown data field 'reasn' for service.call",
            ),
            (
                "trigger:\n  event: service.call\nwhen: count('service.call', 7d, count('service.call', 1d) > 1) > 0\n",
                "look-back",
            ),
            ("trigger:\n  event: service.call\nwhen: sum('service.call', 7d) > 0\n", "sum"),
        ],
        ids=["type", "type-in-a-list", "field", "field-of-it", "nested-look-back", "sum-without-a-value"],
    )
    def test_a_problem_is_located_with_a_suggestion(self, body: str, message: str) -> None:
        with pytest.raises(PlaybookError) as raised:
            playbook("let:\n  note: 1\n" + body)
        assert message in str(raised.value) and "p.yaml:" in str(raised.value)

    def test_a_declared_type_and_its_fields(self, tmp_path: Path, ev: Make) -> None:
        (tmp_path / "events.yaml").write_text(
            "types:\n  usage.dropped:\n    description: data usage fell\n    fields: {percent: number, plan: string}\n"
        )
        (tmp_path / "usage.yaml").write_text(
            "id: usage\ntrigger:\n  event: usage.dropped\nwhen: event.data.percent > 50\n"
            "actions:\n  - task: {queue: q, priority: P2, due_in: 1d, title: '{{ event.data.plan }}', reason: r}\n"
        )
        (tmp_path / "examples").mkdir()
        (tmp_path / "examples" / "broken.yaml").write_text("id: [not valid\n")  # examples are not loaded
        playbooks, problems = load_playbooks([tmp_path])
        assert problems == [] and [pb.id for pb in playbooks] == ["usage"]
        (tmp_path / "usage.yaml").write_text(
            (tmp_path / "usage.yaml").read_text().replace("event.data.percent", "event.data.percnt")
        )
        _, problems = load_playbooks([tmp_path])
        assert [p.message for p in problems] == [
            "unknown data field 'percnt' for usage.dropped (did you mean 'percent'?); known fields: percent, plan"
        ]

    @pytest.mark.parametrize(
        ("catalog", "message"),
        [
            ("types:\n  service.call:\n    fields: {x: string}\n", "'service.call' is a standard type"),
            ("types:\n  usage.dropped:\n    fields: {percent: float}\n", "events.yaml:3:"),
            ("types:\n  Usage:\n    fields: {}\n", "events.yaml:2:"),
            ("types: [usage.dropped]\n", "events.yaml:1:"),
        ],
        ids=["standard", "field-type", "type-name", "not-a-mapping"],
    )
    def test_a_bad_catalog_is_a_located_problem(self, tmp_path: Path, catalog: str, message: str) -> None:
        (tmp_path / "events.yaml").write_text(catalog)
        _, problems = load_playbooks([tmp_path])
        assert len(problems) == 1 and message in str(problems[0]), problems
