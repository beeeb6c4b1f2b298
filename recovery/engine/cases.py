"""Cases in the engine (DESIGN.md, effects: a case groups a customer's open tasks): which case a new task joins,
what mutes a playbook for a customer (another playbook's inhibition, an ops snooze), and what the lifecycle events
do to a case: `task.completed` takes its task out (the last one closes it), `customer.lost` cancels its tasks and
closes it, `playbook.snoozed` snoozes a playbook for the customer.

Everything here is decided in event time and kept in the store, so a replay of the same stream makes the same
cases, with the same ids, and a restart finds them as they were.
"""

from __future__ import annotations

from typing import Any, Final

from recovery.effects import Effect, Task
from recovery.engine.state import NO_COOLDOWNS, NO_SNOOZES, CustomerState
from recovery.engine.stats import EngineStats
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.base import EngineState
from recovery.store.records import TASK_OUTCOMES, CaseRecord, Snooze
from recovery.times import parse_time

INHIBITED: Final = "inhibited"
SNOOZED: Final = "snoozed"
SHADOW: Final = "shadow"
HELD_OUT: Final = "held-out"
MUTED_REASONS: Final = (INHIBITED, SNOOZED, SHADOW, HELD_OUT)
"""Why an effect was muted (the `reason` label of `recovery_effects_muted_total`): another playbook inhibited it, ops
snoozed it, its playbook is in shadow mode, or the customer is in its playbook's holdout."""
WITHHELD: Final = frozenset({SHADOW, HELD_OUT})
"""The reasons that keep an effect away from the customer by design (shadow, holdout), not by a case's state: kept
for the figures (metrics, the report), never shown on a case."""
TREATED: Final = "treated"
"""The group of a customer who is not held out of a playbook with a holdout (the other is `HELD_OUT`)."""
WITHHELD_COOLDOWN: Final = "#withheld"
"""Appended to a playbook id, the key of the last shadow or held-out match in a customer's cooldowns: it holds the
playbook's cooldown as a raise does, but no inhibition looks back to it (they look back to the playbook id's)."""
CUSTOMER_LOST: Final = "customer-lost"
"""Why the tasks of a lost customer's case were cancelled, and why the case closed."""
CASE_DONE: Final = "done"
"""Why a case closed when its last open task was done."""
CASE_TYPES: Final = frozenset({"task.completed", "customer.lost", "playbook.snoozed"})
"""The event types that change a customer's case or snoozes."""


def case_id_of(task_id: str) -> str:
    """The id of the case a task opens: derived from the task's id, so the same on every replay."""
    return "case-" + task_id.split("-", 1)[-1]


class CaseKeeper:
    """The engine's side of cases, over the store the engine keeps its state in. `remembered` are the playbooks
    whose last raise for a customer is kept (a cooldown needs it; so does a playbook another one is inhibited by
    for a look-back)."""

    def __init__(self, store: EngineState, stats: EngineStats, playbooks: list[CompiledPlaybook]) -> None:
        self.store = store
        self.stats = stats
        inhibitors = {other for pb in playbooks for other, _ in pb.inhibited_by}
        self.remembered = frozenset(pb.id for pb in playbooks if pb.cooldown_s is not None or pb.id in inhibitors)

    # ------------------------------------------------------------------------------------------- raising

    def muted_by(self, pb: CompiledPlaybook, state: CustomerState, customer_id: str, at: float) -> tuple[str, str]:
        """What mutes `pb` for the customer at event time `at`, and why (`snoozed`, `inhibited`); ("", "") when
        nothing does. A snooze holds while `at` is before its end; an inhibitor while a task of it is open in the
        customer's case, or, with a look-back, when it raised anything for the customer at most that long before."""
        snooze = state.snoozes.get(pb.id)
        if snooze is not None and at < snooze.until:
            return snooze.by or "ops", SNOOZED
        if pb.inhibited_by:
            case = state.case
            open_playbooks = case.open_tasks.values() if case is not None else ()
            for other, within_s in pb.inhibited_by:
                if other in open_playbooks:
                    return other, INHIBITED
                last = state.cooldowns.get(other)
                if within_s is not None and last is not None and at - last <= within_s:
                    return other, INHIBITED
        return "", ""

    def cooling(self, pb: CompiledPlaybook, state: CustomerState, at: float) -> bool:
        """Whether `pb`'s cooldown holds it back for the customer at `at`: its last match that passed the cooldown,
        raised or withheld (shadow, held out), is less than the cooldown away (either side: a late event too)."""
        cooldown_s = pb.cooldown_s
        cooldowns = state.cooldowns
        if cooldown_s is None or not cooldowns:
            return False
        last = cooldowns.get(pb.id)
        if last is not None and abs(at - last) < cooldown_s:
            return True
        withheld = cooldowns.get(pb.id + WITHHELD_COOLDOWN)
        return withheld is not None and abs(at - withheld) < cooldown_s

    def mute(self, pb: CompiledPlaybook, effects: list[Effect], muted_by: str, reason: str, at: float) -> None:
        """Keep the effects `pb` would have raised, with what muted them; count them."""
        for effect in effects:
            self.store.put_muted(effect, muted_by, reason, at)
        key = (pb.id, reason)
        self.stats.muted[key] = self.stats.muted.get(key, 0) + len(effects)

    def held_out(self, pb: CompiledPlaybook, customer_id: str) -> bool:
        """Whether the customer is in the holdout of `pb` (a playbook with one), counting the trigger by group."""
        key = (pb.id, HELD_OUT if pb.held_out(customer_id) else TREATED)
        self.stats.triggers[key] = self.stats.triggers.get(key, 0) + 1
        return key[1] == HELD_OUT

    def withhold(
        self,
        pb: CompiledPlaybook,
        state: CustomerState,
        customer_id: str,
        effects: list[Effect],
        reason: str,
        at: float,
    ) -> None:
        """Keep the effects of `pb` in shadow mode, or for a customer in its holdout (`reason`: `SHADOW` or
        `HELD_OUT`), and count them (a shadow one with the playbook's version). Its cooldown starts as a raise's
        would, so that the figures compare with what it would raise live; no case opens and nothing is inhibited."""
        by = "shadow" if reason == SHADOW else "holdout"
        for effect in effects:
            self.store.put_muted(effect, by, reason, at)
        stats = self.stats
        key = (pb.id, reason)
        stats.muted[key] = stats.muted.get(key, 0) + len(effects)
        if reason == SHADOW:
            for effect in effects:
                shadow_key = (pb.id, pb.version, effect.kind)
                stats.shadow[shadow_key] = stats.shadow.get(shadow_key, 0) + 1
        if pb.cooldown_s is not None:
            if state.cooldowns is NO_COOLDOWNS:
                state.cooldowns = {}
            withheld = pb.id + WITHHELD_COOLDOWN
            last = state.cooldowns.get(withheld)
            state.cooldowns[withheld] = max(at, last) if last is not None else at
            self.store.set_cooldown(customer_id, withheld, state.cooldowns[withheld])

    def case_id(self, state: CustomerState, customer_id: str) -> str:
        """The id of the customer's open case, or "" when none is open (the next task opens one)."""
        case = state.case
        return case.case_id if case is not None else ""

    def raised(
        self, pb: CompiledPlaybook, state: CustomerState, customer_id: str, fresh: list[Effect], at: float
    ) -> None:
        """`pb` raised `fresh` for the customer at `at`: its tasks join the customer's case (opening it when none is
        open), and the raise is remembered when a cooldown or an inhibition looks back to it."""
        tasks = [e for e in fresh if isinstance(e, Task)]
        if tasks:
            case = state.case
            if case is None:
                case = state.case = CaseRecord(tasks[0].case_id, customer_id, at)
                self.stats.cases_opened += 1
            for task in tasks:
                case.open_tasks[task.id] = task.playbook
            self.store.put_case(case)
        if pb.id in self.remembered:
            if state.cooldowns is NO_COOLDOWNS:
                state.cooldowns = {}
            last = state.cooldowns.get(pb.id)
            state.cooldowns[pb.id] = max(at, last) if last is not None else at
            self.store.set_cooldown(customer_id, pb.id, state.cooldowns[pb.id])

    # ------------------------------------------------------------------------------------------- lifecycle

    def on_event(
        self, state: CustomerState, customer_id: str, event_type: str, ts: float, data: dict[str, Any]
    ) -> list[Effect]:
        """A lifecycle event (`CASE_TYPES`) for the customer; returns the tasks it cancelled, to publish."""
        if event_type == "task.completed":
            self._completed(state, customer_id, data, ts)
        elif event_type == "customer.lost":
            return list(self._lost(state, customer_id, ts))
        elif event_type == "playbook.snoozed":
            self._snoozed(state, customer_id, data)
        return []

    def _completed(self, state: CustomerState, customer_id: str, data: dict[str, Any], ts: float) -> None:
        task_id = data.get("task_id")
        if not isinstance(task_id, str):
            return
        outcome = data.get("outcome")
        if outcome in TASK_OUTCOMES:
            reason_code, agent = data.get("reason_code"), data.get("agent")
            self.store.complete_from_event(task_id, ts, str(outcome), str(reason_code or ""), str(agent or ""))
        case = state.case
        if case is None or case.open_tasks.pop(task_id, None) is None:
            return
        if not case.open_tasks:
            self._close(state, case, ts, CASE_DONE)
        self.store.put_case(case)

    def _lost(self, state: CustomerState, customer_id: str, ts: float) -> list[Task]:
        case = state.case
        if case is None:
            return []
        cancelled = self.store.cancel_tasks(sorted(case.open_tasks), ts, CUSTOMER_LOST)
        self.stats.cancelled += len(case.open_tasks)
        case.open_tasks = {}
        self._close(state, case, ts, CUSTOMER_LOST)
        self.store.put_case(case)
        return cancelled

    def _close(self, state: CustomerState, case: CaseRecord, ts: float, reason: str) -> None:
        case.closed_ts = max(ts, case.opened_ts)
        case.closed_reason = reason
        state.case = None
        self.stats.cases_closed += 1

    def _snoozed(self, state: CustomerState, customer_id: str, data: dict[str, Any]) -> None:
        playbook, until = data.get("playbook"), data.get("until")
        if not isinstance(playbook, str) or not isinstance(until, str):
            return  # the event's model makes both required: only an event built around it lacks them
        snooze = Snooze(playbook, parse_time(until), str(data.get("reason") or ""), str(data.get("by") or ""))
        if state.snoozes is NO_SNOOZES:
            state.snoozes = {}
        state.snoozes[playbook] = snooze
        self.store.put_snooze(customer_id, snooze)
