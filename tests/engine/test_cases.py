"""Cases in the engine: a customer's tasks grouped in one case, inhibition, snoozes, a lost customer's case
cancelled; all decided in event time, the same on every replay and after a restart."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from recovery.effects import Effect, Gesture, Task, effect_id
from recovery.engine import Engine
from recovery.engine.cases import case_id_of
from recovery.events import Event
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
trigger:
  event: service.call
{extra}
actions:
  - task: {{queue: care, priority: P2, due_in: 1d, title: call, reason: called}}
  - gesture: {{type: apology, reason: sorry}}
"""
COMPLAINT = """\
id: complaint
trigger:
  event: complaint.opened
actions:
  - task: {queue: complaints, priority: P1, due_in: 4h, title: complaint, reason: complained}
"""


def playbooks(caller_extra: str = "") -> list[CompiledPlaybook]:
    return [
        load_playbook_text(CALLER.format(extra=caller_extra), "caller.yaml"),
        load_playbook_text(COMPLAINT, "complaint.yaml"),
    ]


def tasks(effects: list[Effect]) -> list[Task]:
    return [e for e in effects if isinstance(e, Task)]


def completed(task: Task, at: float, ev: Make, outcome: str = "saved") -> Event:
    return ev("task.completed", at, task.customer_id, task_id=task.id, playbook=task.playbook, outcome=outcome)


class TestGrouping:
    def test_a_customers_tasks_share_the_case_the_first_one_opened(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks(), store)
        first = tasks(engine.process(ev("service.call", 0)))
        second = tasks(engine.process(ev("complaint.opened", HOUR, complaint_id="K1")))
        other = tasks(engine.process(ev("service.call", 2 * HOUR, "C2")))
        assert first[0].case_id == case_id_of(first[0].id) == "case-" + first[0].id.removeprefix("tsk-")
        assert second[0].case_id == first[0].case_id
        assert other[0].case_id == case_id_of(other[0].id) != first[0].case_id
        case = store.open_case("C1")
        assert case is not None and case.case_id == first[0].case_id
        assert case.open_tasks == {first[0].id: "caller", second[0].id: "complaint"}
        assert case.opened_ts == T0
        assert engine.stats.cases_opened == 2

    def test_the_case_closes_when_its_last_task_is_done_and_the_next_task_opens_another(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks(), store)
        a = tasks(engine.process(ev("service.call", 0)))[0]
        b = tasks(engine.process(ev("complaint.opened", HOUR, complaint_id="K1")))[0]
        engine.process(completed(a, 2 * HOUR, ev))
        case = store.open_case("C1")
        assert case is not None and case.open_tasks == {b.id: "complaint"}
        assert store.get_task(a.id).status == "done"  # type: ignore[union-attr]
        engine.process(completed(b, 3 * HOUR, ev, outcome="lost"))
        assert store.open_case("C1") is None
        done = store.get_task(b.id)
        assert done is not None and done.status == "done" and done.outcome == "lost"
        c = tasks(engine.process(ev("service.call", 4 * HOUR)))[0]
        assert c.case_id == case_id_of(c.id) != a.case_id
        assert engine.stats.cases_closed == 1

    def test_a_completion_for_a_task_of_another_case_or_unknown_changes_nothing(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks(), store)
        a = tasks(engine.process(ev("service.call", 0)))[0]
        engine.process(ev("task.completed", HOUR, task_id="tsk-unknown", outcome="saved"))
        engine.process(ev("task.completed", HOUR, "C2", task_id=a.id, outcome="saved"))  # not C2's case
        case = store.open_case("C1")
        assert case is not None and case.open_tasks == {a.id: "caller"}


class TestInhibition:
    def test_an_open_task_of_the_inhibitor_mutes_the_playbook(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks("inhibited_by: complaint"), store)
        k = tasks(engine.process(ev("complaint.opened", 0, complaint_id="K1")))[0]
        assert engine.process(ev("service.call", HOUR, id="call-1")) == []
        assert engine.process(ev("service.call", HOUR, "C2"))  # another customer: not muted
        muted = store.muted("C1", T0, T0 + DAY)
        assert [(m.effect.kind, m.muted_by, m.reason, m.at) for m in muted] == [  # by time, then id
            ("gesture", "complaint", "inhibited", T0 + HOUR),
            ("task", "complaint", "inhibited", T0 + HOUR),
        ]
        assert muted[1].effect.id == effect_id("tsk", "caller", "C1", "call-1", "task0")
        assert engine.stats.muted == {("caller", "inhibited"): 2}
        # Without a look-back, the inhibition ends with the inhibitor's open task.
        engine.process(completed(k, 2 * HOUR, ev))
        raised = engine.process(ev("service.call", 3 * HOUR))
        assert [e.kind for e in raised] == ["task", "gesture"]

    def test_a_look_back_mutes_for_that_long_after_the_inhibitor_raised(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks("inhibited_by: [{playbook: complaint, within: 2d}]"), store)
        k = tasks(engine.process(ev("complaint.opened", 0, complaint_id="K1")))[0]
        engine.process(completed(k, HOUR, ev))  # done: only the look-back holds now
        assert engine.process(ev("service.call", 2 * DAY)) == []  # exactly 2 days after: still muted
        assert tasks(engine.process(ev("service.call", 2 * DAY + 1)))
        assert engine.stats.muted == {("caller", "inhibited"): 2}

    def test_a_muted_match_sets_no_cooldown(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks("cooldown: 7d\ninhibited_by: complaint"), store)
        k = tasks(engine.process(ev("complaint.opened", 0, complaint_id="K1")))[0]
        assert engine.process(ev("service.call", HOUR)) == []
        engine.process(completed(k, 2 * HOUR, ev))
        assert tasks(engine.process(ev("service.call", 3 * HOUR)))  # the muted match started no cooldown

    def test_the_inhibitors_last_raise_survives_a_restart(self, ev: Make) -> None:
        store = MemoryStore()
        pbs = playbooks("inhibited_by: [{playbook: complaint, within: 2d}]")
        k = tasks(Engine(pbs, store).process(ev("complaint.opened", 0, complaint_id="K1")))[0]
        engine = Engine(pbs, store)  # a new engine: nothing in memory
        engine.process(completed(k, HOUR, ev))
        assert engine.process(ev("service.call", DAY)) == []


class TestSnooze:
    def test_a_snoozed_playbook_raises_nothing_for_the_customer_until_the_snooze_ends(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks(), store)
        until = format_time(T0 + 3 * DAY)
        engine.process(ev("playbook.snoozed", 0, playbook="caller", until=until, reason="on holiday", by="ops:ann"))
        assert engine.process(ev("service.call", HOUR)) == []
        assert tasks(engine.process(ev("complaint.opened", HOUR, complaint_id="K1")))  # another playbook
        assert tasks(engine.process(ev("service.call", HOUR, "C2")))  # another customer
        assert engine.stats.muted == {("caller", "snoozed"): 2}
        assert {(m.muted_by, m.reason) for m in store.muted("C1", T0, T0 + DAY)} == {("ops:ann", "snoozed")}
        assert tasks(engine.process(ev("service.call", 3 * DAY)))  # the snooze ended
        snooze = store.snoozes("C1")["caller"]
        assert (snooze.until, snooze.reason, snooze.by) == (T0 + 3 * DAY, "on holiday", "ops:ann")

    def test_a_snooze_that_ended_already_lifts_an_earlier_one(self, ev: Make) -> None:
        engine = Engine(playbooks(), MemoryStore())
        engine.process(ev("playbook.snoozed", 0, playbook="caller", until=format_time(T0 + 9 * DAY)))
        engine.process(ev("playbook.snoozed", HOUR, playbook="caller", until=format_time(T0 + HOUR)))
        assert tasks(engine.process(ev("service.call", 2 * HOUR)))


class TestLost:
    def test_a_lost_customers_case_is_closed_and_its_tasks_cancelled(self, ev: Make) -> None:
        store = MemoryStore()
        engine = Engine(playbooks(), store)
        a = tasks(engine.process(ev("service.call", 0)))[0]
        b = tasks(engine.process(ev("complaint.opened", HOUR, complaint_id="K1")))[0]
        engine.process(completed(a, 2 * HOUR, ev))
        cancelled = engine.process(ev("customer.lost", 3 * HOUR, reason="price"))
        assert [(t.id, t.status) for t in tasks(cancelled)] == [(b.id, "cancelled")]
        assert not [e for e in cancelled if isinstance(e, Gesture)]
        record = store.get_task(b.id)
        assert record is not None
        assert (record.status, record.cancel_reason, record.completed_at) == (
            "cancelled",
            "customer-lost",
            T0 + 3 * HOUR,
        )
        assert store.get_task(a.id).status == "done"  # type: ignore[union-attr]
        assert store.open_case("C1") is None
        assert engine.stats.cancelled == 1
        # A customer lost without a case: nothing to cancel.
        assert engine.process(ev("customer.lost", 3 * HOUR, "C9")) == []

    def test_replay_without_the_effects_kept_still_publishes_the_cancelled_tasks(self, ev: Make) -> None:
        engine = Engine(playbooks(), MemoryStore(keep_effects=False))
        a = tasks(engine.process(ev("service.call", 0)))[0]
        b = tasks(engine.process(ev("complaint.opened", HOUR, complaint_id="K1")))[0]
        engine.process(completed(a, 2 * HOUR, ev))
        cancelled = engine.process(ev("customer.lost", 3 * HOUR))
        assert cancelled == [b.model_copy(update={"status": "cancelled"})]


def lifecycle_stream(seed: int, customers: int = 12, steps: int = 400) -> Iterator[Event]:
    """Calls and complaints, with completions of the tasks they raise, snoozes and losses: the engine's feedback
    events made in advance, from task ids computed as the engine computes them."""
    rng = random.Random(seed)
    for n in range(steps):
        at = T0 + n * 1800.0
        cid = f"C{rng.randrange(customers)}"
        eid = f"s{seed}-{n}"
        kind = rng.random()
        when = format_time(at)
        if kind < 0.45:
            yield Event.from_dict({"id": eid, "type": "service.call", "customer_id": cid, "occurred_at": when})
        elif kind < 0.6:
            data = {"complaint_id": eid}
            yield Event.from_dict(
                {"id": eid, "type": "complaint.opened", "customer_id": cid, "occurred_at": when, "data": data}
            )
        elif kind < 0.85:  # completes the task a call some steps back raised, if it did
            back = f"s{seed}-{max(n - rng.randrange(1, 30), 0)}"
            task_id = effect_id("tsk", "caller", cid, back, "task0")
            data = {"task_id": task_id, "outcome": rng.choice(["saved", "lost"])}
            yield Event.from_dict(
                {"id": eid, "type": "task.completed", "customer_id": cid, "occurred_at": when, "data": data}
            )
        elif kind < 0.93:
            data = {"playbook": "caller", "until": format_time(at + rng.choice([0, 1, 3]) * DAY)}
            yield Event.from_dict(
                {"id": eid, "type": "playbook.snoozed", "customer_id": cid, "occurred_at": when, "data": data}
            )
        else:
            yield Event.from_dict({"id": eid, "type": "customer.lost", "customer_id": cid, "occurred_at": when})


class TestDeterminism:
    PBS = "cooldown: 1d\ninhibited_by: [{playbook: complaint, within: 1d}]"

    def run(self, engine: Engine, events: list[Event]) -> list[str]:
        return [e.to_json() for ev in events for e in engine.process(ev)]

    @pytest.mark.parametrize("seed", [1, 2])
    def test_cases_are_the_same_on_every_replay_with_evictions_and_restarts(self, seed: int) -> None:
        events = list(lifecycle_stream(seed))
        whole = Engine(playbooks(self.PBS), MemoryStore())
        expected = self.run(whole, events)
        assert whole.stats.cases_closed > 5 and whole.stats.cancelled > 3 and whole.stats.muted
        tiny = Engine(playbooks(self.PBS), MemoryStore(), max_customers=1)
        assert self.run(tiny, events) == expected
        store = MemoryStore()
        cut = len(events) // 3
        before = self.run(Engine(playbooks(self.PBS), store), events[:cut])
        middle = self.run(Engine(playbooks(self.PBS), store), events[cut : 2 * cut])
        after = self.run(Engine(playbooks(self.PBS), store), events[2 * cut :])
        assert before + middle + after == expected
