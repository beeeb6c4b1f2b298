"""The engine: evaluates playbooks per customer over a stream of events, in event time.

It keeps the clock, sends each event to the playbooks its type concerns, fans scope events (outages) out to their
customers, matches conditions through durable-rules (`matcher.py`) and holds back what a cooldown forbids. The
customers' state is in `state.py`, absence deadlines in `deadlines.py`, and the effects a matched playbook makes
in `actions.py`.

Principles (DESIGN.md):
1. Event time. Before an event is processed, the clock moves to its `occurred_at` and every deadline strictly
   before that fires. `advance(ts)` moves the clock without an event (`--until`, or wall time in `serve`).
2. Effectively once. An event id seen before is ignored (ids are kept for `ledger_retention_s` of event time);
   effect ids derive from the cause, and the store keeps an effect id once, so the same cause never raises a
   second task or gesture.
3. The store is the truth, this engine a cache: a customer's state (profile, recent history, cooldowns) is
   loaded from the store on first use and may be evicted at any time; deadlines are written to the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from recovery.effects import Effect
from recovery.engine.actions import build_effects
from recovery.engine.cases import HELD_OUT, SHADOW, CaseKeeper
from recovery.engine.deadlines import Deadlines
from recovery.engine.facts import FACT_TYPES, FactRecorder
from recovery.engine.matcher import Matcher, MatcherError
from recovery.engine.plans import plans
from recovery.engine.state import Customers, CustomerState
from recovery.engine.stats import EngineStats
from recovery.events import FEEDBACK_TYPES, SCOPE_TYPES, Event, Occurrence
from recovery.expressions.context import Context
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.base import EngineState
from recovery.store.records import Deadline

logger = logging.getLogger(__name__)

DEFAULT_MAX_CUSTOMERS = 100_000
LEDGER_MIN_RETENTION_S = 7 * 86400.0
PROFILE_VERSIONS_S = 7 * 86400.0
"""A customer's profile versions are kept for the longest playbook look-back, and at least this long in event time:
an event up to this late sees the profile as it was at its time."""
"""Event ids are remembered (duplicates recognised) for the longest playbook look-back, and at least this long
in event time: redeliveries and producer retries come within seconds or minutes of the original."""
_NO_DATA: dict[str, Any] = {}
SCOPE_PRELOAD = 1000
"""A scope event's customers not in memory are asked of the store this many at a time (`preload_customers`)."""


class Engine:
    """The playbooks' evaluator over `store`, the truth it keeps its state in (`recovery replay` and playbook tests
    give it a MemoryStore). Not thread-safe: one engine per consumer thread.

    `max_customers` bounds how many customers' state is held in memory (least recently used are evicted and
    rebuilt from the store when they come back).

    In `serve` an engine evaluates one Kafka partition's customers, with a clock of its own (the partition's event
    time): `owns(customer_id)` says which customers, and only their deadlines are loaded. There a scope event (an
    outage) is not evaluated where it is read: `record_scope` logs it in the store, and `apply_scope` evaluates it
    for one partition's customers, in that partition's event-time order (see recovery/consumer/). `matcher` lets
    engines share (and reuse after a rebalance) the compiled durable-rules host, `stats` share their counts.
    History, scope log and ledger are pruned below the clock, or below `prune_floor(clock)` where other engines
    with clocks of their own share the store (the lowest of their clocks). `deadlines`: the store's pending
    deadlines, when the caller read them already (several engines built at once). `facts=False` records none of
    the customer-loss review's facts (engine/facts.py): for a run nothing reads them after (`recovery replay`)."""

    def __init__(
        self,
        playbooks: Sequence[CompiledPlaybook],
        store: EngineState,
        *,
        max_customers: int = DEFAULT_MAX_CUSTOMERS,
        owns: Callable[[str], bool] | None = None,
        matcher: Matcher | None = None,
        stats: EngineStats | None = None,
        prune_floor: Callable[[float], float] | None = None,
        deadlines: Iterable[Deadline] | None = None,
        facts: bool = True,
    ) -> None:
        self.store = store
        self.stats = stats if stats is not None else EngineStats()
        self.clock = float("-inf")
        self._pruned_at = float("-inf")
        self.owns = owns
        self.prune_floor = prune_floor
        self._load(playbooks, matcher)
        self.customers = Customers(self.store, max_customers, self.horizon_s, True, self.stats)
        self.deadlines = Deadlines(self.store)
        self.facts = FactRecorder(self.store) if facts else None
        self.on_fan_out: Callable[[str, Event], None] | None = None
        """Called with each customer an event about many reaches, before it is evaluated (`recovery explain`)."""
        for deadline in self.store.pending_deadlines() if deadlines is None else deadlines:
            if owns is None or owns(deadline.customer_id):
                self.deadlines.schedule(deadline)

    # ------------------------------------------------------------------------------------------- playbooks

    def _load(self, playbooks: Sequence[CompiledPlaybook], matcher: Matcher | None) -> None:
        self.playbooks = [pb for pb in playbooks if pb.source is None or pb.source.enabled]
        self._by_id = {pb.id: pb for pb in self.playbooks}
        self.history_types = frozenset().union(*(pb.history_types for pb in self.playbooks))
        # The profile's versions are kept over the horizon, so that a late event sees the profile of its time.
        self.horizon_s = max([PROFILE_VERSIONS_S, *(pb.horizon_s for pb in self.playbooks)])
        self._plans = plans(self.playbooks, self.history_types)
        self.ledger_retention_s = max(self.horizon_s, LEDGER_MIN_RETENTION_S)
        self._prune_every_s = self.ledger_retention_s / 4
        self.matcher = matcher or Matcher((pb.id, pb.condition.pattern) for pb in self.playbooks)
        self.cases = CaseKeeper(self.store, self.stats, self.playbooks)

    def uncached(self, customer_ids: Iterable[str]) -> list[str]:
        """Those of `customer_ids` whose state is not in memory (a rebuild would read it from the store)."""
        return self.customers.uncached(customer_ids)

    @property
    def customers_in_memory(self) -> int:
        return len(self.customers)

    @property
    def pending_deadlines(self) -> int:
        return len(self.deadlines)

    # ------------------------------------------------------------------------------------------- the clock

    def advance(self, ts: float) -> list[Effect]:
        """Move the clock to `ts`; every deadline strictly before `ts` fires, oldest first."""
        effects: list[Effect] = []
        deadlines = self.deadlines
        while (found := deadlines.pop_due(ts)) is not None:
            due, deadline = found
            self.clock = max(self.clock, due)
            effects.extend(self._fire(deadline))
        if ts > self.clock:
            self.clock = ts
            if ts - self._pruned_at > self._prune_every_s:
                self._pruned_at = ts
                floor = ts if self.prune_floor is None else min(ts, self.prune_floor(ts))
                if self.horizon_s:
                    self.store.prune_history(floor - self.horizon_s)
                self.store.prune_ledger(floor - self.ledger_retention_s)
        return effects

    # ------------------------------------------------------------------------------------------- events

    def process(self, event: Event) -> list[Effect]:
        """Evaluate one event; returns the new effects (none for a duplicate)."""
        ts = event.occurred_at.timestamp()
        if not self.store.add_event(event.id, ts):
            self.stats.duplicates += 1
            return []
        self.stats.events += 1
        if self.facts is not None and event.type in FACT_TYPES:  # what `recovery report` reads (engine/facts.py)
            self.facts.record(event, ts)
        heap = self.deadlines.heap
        if event.type in FEEDBACK_TYPES:  # evaluated at its time, moving no clock
            effects = []
        elif (heap and heap[0][0] < ts) or ts - self._pruned_at > self._prune_every_s:
            effects = self.advance(ts)
        else:  # `advance(ts)` when it has nothing to fire or prune, inline: most events
            if ts > self.clock:
                self.clock = ts
            effects = []
        if event.customer_id is not None:
            found = self._on_customer_event(event.customer_id, event.id, event.type, ts, event.data)
            if effects:
                effects.extend(found)
                return effects
            return found
        for cid in self._scope(event):
            self.stats.fanned_out += 1
            if self.on_fan_out is not None:
                self.on_fan_out(cid, event)
            effects.extend(self._on_customer_event(cid, event.id, event.type, ts, event.data))
        return effects

    def record_scope(self, event: Event) -> tuple[list[Effect], int | None]:
        """Log a scope event for every partition's customers (`serve`); returns the effects of the deadlines
        its time passed and its seq in the scope log (None for a duplicate)."""
        ts = event.occurred_at.timestamp()
        if not self.store.add_event(event.id, ts):
            self.stats.duplicates += 1
            return [], None
        self.stats.events += 1
        if self.facts is not None:
            self.facts.record(event, ts)
        effects = self.advance(ts)
        return effects, self.store.scope_log_add(ts, event.model_dump_json())

    def apply_scope(self, event: Event, stream: str, seq: int, members: Callable[[str], bool]) -> list[Effect]:
        """Evaluate a logged scope event for the customers of one partition (`stream`; `members` says which
        customers are in it), once: the store remembers it was applied, in the same transaction."""
        self.store.mark_scope_applied(stream, seq)
        ts = event.occurred_at.timestamp()
        effects = self.advance(ts)
        customers = self._scope(event, members, f"#{stream}")
        since = self.clock - self.horizon_s if self.horizon_s else float("inf")
        for start in range(0, len(customers), SCOPE_PRELOAD):
            chunk = customers[start : start + SCOPE_PRELOAD]
            missing = self.customers.uncached(chunk)
            if missing:  # a region's customers in a few queries, not a few each
                self.store.preload_customers(missing, since)
            for cid in chunk:
                self.stats.fanned_out += 1
                effects.extend(self._on_customer_event(cid, event.id, event.type, ts, event.data))
        return effects

    def _scope(self, event: Event, members: Callable[[str], bool] | None = None, suffix: str = "") -> list[str]:
        """The customers a scope event (an outage without customer_id) touches; only `members` when given."""
        data = event.data
        affected: set[str] = {str(c) for c in data.get("customer_ids") or ()}
        region = data.get("region")
        if region is not None:
            affected.update(self.store.customers_in_region(str(region)))
        if members is not None:
            affected = {cid for cid in affected if members(cid)}
        scope_id = f"{event.type.rsplit('.', 1)[0]}:{data.get('outage_id') or event.id}{suffix}"
        if event.type in SCOPE_TYPES and event.type.endswith(".resolved"):
            affected |= self.store.scope_customers(scope_id)
            self.store.set_scope_customers(scope_id, set())
        else:
            self.store.set_scope_customers(scope_id, affected | self.store.scope_customers(scope_id))
        return sorted(affected)

    def _on_customer_event(
        self, cid: str, event_id: str, event_type: str, ts: float, data: dict[str, Any]
    ) -> list[Effect]:
        plan = self._plans.get(event_type)
        if plan is None:  # a type no playbook reads, keeps or evaluates (nor a profile): nothing to do
            return []
        state = self.customers.get(cid, self.clock)
        occ = Occurrence(event_id, plan.type, ts, cid, data)
        if plan.profile and ts >= state.profile_ts:
            state.profile = data
            state.profile_ts = ts
            self.store.put_profile(cid, ts, data)
        if plan.keep:
            # Counting needs only time and type; pairing (sequences) needs the data too.
            kept = occ if plan.keep_data else Occurrence(event_id, plan.type, ts, cid, _NO_DATA)
            self.customers.remember(state, kept, self.clock)
        effects: list[Effect] = self.cases.on_event(state, cid, event_type, ts, data) if plan.case else []
        for pb in plan.missing:
            self.deadlines.answer(pb, cid, occ)
        for pb in plan.first:
            self.deadlines.wait_for(pb, cid, occ)
        profile = state.profile_at(ts)
        for pb in plan.event:
            # Positional arguments here: keywords cost more than the rest of the call (once per event and playbook).
            ctx = Context(occ, cid, profile, ts, state.history)
            effects.extend(self._evaluate(pb, state, ctx, event_id, ts, [occ]))
        for pb in plan.then:
            first = self._paired(pb, state, occ)
            if first is None:
                continue
            ctx = Context(occ, cid, profile, ts, state.history, first, ts - first.ts)
            effects.extend(self._evaluate(pb, state, ctx, f"{first.id}+{event_id}", ts, [first, occ]))
        return effects

    # ------------------------------------------------------------------------------------------- pairing

    def _paired(self, pb: CompiledPlaybook, state: CustomerState, occ: Occurrence) -> Occurrence | None:
        """The latest `first` event (with the same key, when the playbook has one), at most `within` before
        `occ`."""
        key = pb.key
        value = None
        if key is not None:
            value = occ.data.get(key)
            if value is None:
                return None
            value = str(value)
        earliest = occ.ts - pb.within_s
        for candidate in reversed(state.history.get(pb.first_type or "", ())):
            if earliest <= candidate.ts <= occ.ts and (key is None or str(candidate.data.get(key)) == value):
                return candidate
        return None

    def _fire(self, deadline: Deadline) -> list[Effect]:
        pb = self._by_id.get(deadline.playbook)
        if pb is None:  # the playbook was removed since the deadline was set
            return []
        self.stats.deadlines_fired += 1
        state = self.customers.get(deadline.customer_id, self.clock)
        first = deadline.first
        ctx = Context(
            event=first,
            customer_id=deadline.customer_id,
            profile=state.profile_at(deadline.due),
            at=deadline.due,
            by_type=state.history,
            first=first,
        )
        return self._evaluate(pb, state, ctx, f"{first.id}@deadline", first.ts, [first])

    # ------------------------------------------------------------------------------------------- effects

    def _evaluate(
        self,
        pb: CompiledPlaybook,
        state: CustomerState,
        ctx: Context,
        cause: str,
        anchor: float,
        evidence: list[Occurrence],
    ) -> list[Effect]:
        """`pb` for one customer in `ctx`: its new effects (`_decide`). A shadow playbook's failure is counted and
        logged, never raised: it must not change what the live playbooks do with the event."""
        if pb.mode != SHADOW:
            return self._decide(pb, state, ctx, cause, anchor, evidence)
        try:
            return self._decide(pb, state, ctx, cause, anchor, evidence)
        except Exception:
            self._failed(pb, ctx)
            return []

    def _failed(self, pb: CompiledPlaybook, ctx: Context) -> None:
        """Count a failed evaluation of `pb` (in all and per playbook) and say where; the stream goes on."""
        self.stats.errors += 1
        self.stats.playbook_errors[pb.id] = self.stats.playbook_errors.get(pb.id, 0) + 1
        logger.exception(
            "evaluation failed",
            extra={"playbook": pb.id, "mode": pb.mode, "event_id": ctx.event.id, "customer_id": ctx.customer_id},
        )

    def _decide(
        self,
        pb: CompiledPlaybook,
        state: CustomerState,
        ctx: Context,
        cause: str,
        anchor: float,
        evidence: list[Occurrence],
    ) -> list[Effect]:
        """The checks in order (docs/playbooks.md, "Shadow and holdout"): the condition; the cooldown (`cooling`);
        shadow mode, then the customer's holdout, keep the effects as `shadow` or `held-out` (`withhold`); an
        inhibition or a snooze mutes them (`mute`); else they are raised and their tasks join the customer's case.
        `cause`, `anchor` and `evidence` as `build_effects` takes them."""
        condition = pb.condition
        if not condition.trivial:
            try:
                matched = self.matcher.matches_json(pb.id, condition.message_json(ctx))
            except MatcherError:
                # One event's odd data must not stop the stream: count it, say where, and go on.
                self._failed(pb, ctx)
                return []
            if not matched:
                return []
        stats = self.stats
        stats.matches[pb.id] = stats.matches.get(pb.id, 0) + 1
        cid = ctx.customer_id
        cases = self.cases
        if pb.cooldown_s is not None and cases.cooling(pb, state, ctx.at):
            stats.suppressed[pb.id] = stats.suppressed.get(pb.id, 0) + 1
            logger.debug("suppressed by cooldown", extra={"playbook": pb.id, "customer_id": cid})
            return []
        effects = build_effects(pb, ctx, cause, anchor, evidence, cases.case_id(state, cid) if pb.tasks else "")
        if not effects:
            return []
        if pb.mode == SHADOW or (pb.holdout and cases.held_out(pb, cid)):
            cases.withhold(pb, state, cid, effects, SHADOW if pb.mode == SHADOW else HELD_OUT, ctx.at)
            return []
        muted_by, why = cases.muted_by(pb, state, cid, ctx.at)
        if muted_by:
            cases.mute(pb, effects, muted_by, why, ctx.at)
            logger.debug("muted", extra={"playbook": pb.id, "customer_id": cid, "muted_by": muted_by, "reason": why})
            return []
        fresh = [e for e in effects if self.store.put_effect(e)]
        cases.raised(pb, state, cid, fresh, ctx.at)
        stats.effects += len(fresh)
        return fresh
