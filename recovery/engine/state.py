"""Per-customer state: what the engine holds about each customer, a bounded cache of it, and its rebuild from
the store.

The store is the truth, the cache a copy (DESIGN.md, principle 3): a customer's profile, recent history and
cooldowns are read from the store on first use and may be evicted at any time; evicting one changes no result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from recovery.engine.stats import EngineStats
from recovery.events import PROFILE_TYPE, Occurrence
from recovery.store.base import EngineState
from recovery.store.records import CaseRecord, Snooze

NO_HISTORY: dict[str, list[Occurrence]] = {}
"""Shared by every customer without recent history until its first occurrence (never written to)."""
NO_COOLDOWNS: dict[str, float] = {}
"""Shared by every customer without a cooldown until its first (never written to)."""
NO_SNOOZES: dict[str, Snooze] = {}
"""Shared by every customer without a snooze until its first (never written to)."""


class CustomerState:
    """What the engine holds about one customer; rebuilt from the store whenever it is missing.

    `history` holds the recent occurrences of the types playbooks look back to, per type, each list in time
    order; it and `cooldowns` are one shared empty mapping until the customer has any (`cooldowns` holds when each
    playbook last raised anything for the customer: for its cooldown, and for the playbooks it inhibits; under
    `<id>#withheld`, when it last matched in shadow mode or with the customer held out: for its cooldown only).

    `case` is the customer's open case (None when none is open), `snoozes` its snoozed playbooks by id (the shared
    empty mapping until its first): most customers never have either.
    """

    __slots__ = ("case", "cooldowns", "history", "profile", "profile_ts", "snoozes")

    def __init__(
        self,
        profile: dict[str, Any],
        profile_ts: float,
        history: dict[str, list[Occurrence]],
        cooldowns: dict[str, float],
        case: CaseRecord | None = None,
        snoozes: dict[str, Snooze] = NO_SNOOZES,
    ) -> None:
        self.profile = profile
        self.profile_ts = profile_ts
        self.history = history
        self.cooldowns = cooldowns
        self.case = case
        self.snoozes = snoozes

    def profile_at(self, ts: float) -> dict[str, Any]:
        """The profile as it was at `ts`: the latest version at or before it. A late event sees the profile of its
        time, whatever came since, so arrival order changes nothing (within the horizon, as far back as the
        versions are kept: `{}` when none at or before `ts` is known)."""
        if self.profile_ts <= ts:
            return self.profile
        for version in reversed(self.history.get(PROFILE_TYPE, ())):
            if version.ts <= ts:
                return version.data
        return {}


def split_by_type(occurrences: Iterable[Occurrence]) -> dict[str, list[Occurrence]]:
    """Occurrences in time order, split per type (each list keeps the order)."""
    split: dict[str, list[Occurrence]] = {}
    for occ in occurrences:
        split.setdefault(occ.type, []).append(occ)
    return split


class Customers:
    """The customers' state held in memory: at most `max_customers`, the least recently used evicted, and any
    customer missing rebuilt from the store (history back to `horizon_s` before the clock, when `keep_history`).
    Counts rebuilds and evictions in `stats`."""

    def __init__(
        self, store: EngineState, max_customers: int, horizon_s: float, keep_history: bool, stats: EngineStats
    ) -> None:
        self.store = store
        self.max_customers = max(1, max_customers)
        self.horizon_s = horizon_s
        self.keep_history = keep_history
        self.stats = stats
        self.cache: OrderedDict[str, CustomerState] = OrderedDict()

    def __len__(self) -> int:
        return len(self.cache)

    def uncached(self, customer_ids: Iterable[str]) -> list[str]:
        """Those of `customer_ids` whose state is not in memory (a rebuild would read it from the store). The others
        become the most recently used: about to be read, they are not the ones rebuilding these evicts (a region
        scanned in order with a cache a little too small would otherwise evict, at each rebuild, the next customer
        of the scan, and rebuild every one of them apart)."""
        cache = self.cache
        missing = []
        for cid in dict.fromkeys(customer_ids):
            if cid in cache:
                cache.move_to_end(cid)
            else:
                missing.append(cid)
        return missing

    def get(self, customer_id: str, clock: float) -> CustomerState:
        """A customer's state, the most recently used now; rebuilt from the store (as of `clock`) when missing."""
        state = self.cache.get(customer_id)
        if state is None:
            return self.rebuild(customer_id, clock)
        self.cache.move_to_end(customer_id)
        return state

    def rebuild(self, customer_id: str, clock: float) -> CustomerState:
        """Load a customer's state from the store into the cache (evicting the least recently used). Its case and
        snoozes too: read with the rest when the store preloaded the customer (`preload_customers`), they cost
        nothing then, where read when first needed they were a query each for a customer held across batches."""
        store = self.store
        stored = store.get_profile(customer_id)
        profile_ts, profile = stored if stored is not None else (float("-inf"), {})
        since = clock - self.horizon_s
        history = split_by_type(store.history(customer_id, since)) if self.keep_history else {}
        cooldowns = store.get_cooldowns(customer_id) or NO_COOLDOWNS
        case, snoozes = store.open_case(customer_id), store.snoozes(customer_id) or NO_SNOOZES
        state = CustomerState(profile, profile_ts, history or NO_HISTORY, cooldowns, case, snoozes)
        self.stats.rebuilds += 1
        self.cache[customer_id] = state
        if len(self.cache) > self.max_customers:
            self.cache.popitem(last=False)
            self.stats.evictions += 1
        return state

    def remember(self, state: CustomerState, occ: Occurrence, clock: float) -> None:
        """Add `occ` to the customer's history (in time order) and to the store's; drop what is older than the
        horizon."""
        by_type = state.history
        if by_type is NO_HISTORY:
            by_type = state.history = {}
        history = by_type.get(occ.type)
        if history is None:
            history = by_type[occ.type] = [occ]
        elif history[-1].ts <= occ.ts:
            history.append(occ)
        else:
            pos = len(history)
            while pos and history[pos - 1].ts > occ.ts:
                pos -= 1
            history.insert(pos, occ)
        # A late event (a handed-over outage arrives after the clock moved on) keeps what it may pair with.
        cutoff = min(clock, occ.ts) - self.horizon_s
        if history[0].ts < cutoff:
            drop = 0
            while drop < len(history) and history[drop].ts < cutoff:
                drop += 1
            del history[:drop]
        self.store.append_history(occ)
