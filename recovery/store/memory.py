"""An in-memory store, for `recovery replay`, playbook tests and benchmarks."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from recovery.effects import Effect
from recovery.events import Occurrence
from recovery.store.base import Deadline, OutboxItem


class MemoryStore:
    """Everything in dicts. `keep_effects=False` keeps only effect ids (enough to never raise one twice)."""

    def __init__(self, *, keep_effects: bool = True) -> None:
        self._keep_effects = keep_effects
        self._effect_ids: set[str] = set()
        self._ledger: set[str] = set()
        self._history: dict[str, list[Occurrence]] = {}
        self._profiles: dict[str, tuple[float, dict[str, Any]]] = {}
        self._regions: dict[str, set[str]] = {}
        self._cooldowns: dict[str, dict[str, float]] = {}
        self._deadlines: dict[str, Deadline] = {}
        self._scopes: dict[str, set[str]] = {}
        self._effects: dict[str, Effect] = {}
        self._outbox: list[OutboxItem] = []
        self._scope_log: dict[int, tuple[float, str]] = {}
        self._scope_applied: dict[str, set[int]] = {}
        self._watermarks: dict[str, float] = {}
        self._outbox_seq = 0

    def add_event(self, event_id: str) -> bool:
        if event_id in self._ledger:
            return False
        self._ledger.add(event_id)
        return True

    def preload_events(self, event_ids: list[str]) -> None:
        """Nothing to do: a lookup here is cheap."""

    def append_history(self, occurrence: Occurrence) -> None:
        items = self._history.setdefault(occurrence.customer_id, [])
        if items and items[-1].ts > occurrence.ts:
            bisect.insort(items, occurrence, key=lambda o: o.ts)
        else:
            items.append(occurrence)

    def history(self, customer_id: str, since: float) -> list[Occurrence]:
        items = self._history.get(customer_id, [])
        start = bisect.bisect_left(items, since, key=lambda o: o.ts)
        return items[start:]

    def prune_history(self, before: float) -> int:
        for seq in [seq for seq, (ts, _) in self._scope_log.items() if ts < before]:
            del self._scope_log[seq]
            for applied in self._scope_applied.values():
                applied.discard(seq)
        dropped = 0
        for cid in list(self._history):
            items = self._history[cid]
            cut = bisect.bisect_left(items, before, key=lambda o: o.ts)
            if cut:
                dropped += cut
                if cut == len(items):
                    del self._history[cid]
                else:
                    del items[:cut]
        return dropped

    def get_profile(self, customer_id: str) -> tuple[float, dict[str, Any]] | None:
        return self._profiles.get(customer_id)

    def put_profile(self, customer_id: str, ts: float, profile: dict[str, Any]) -> None:
        old = self._profiles.get(customer_id)
        if old is not None and old[1].get("region") is not None:
            self._regions.get(old[1]["region"], set()).discard(customer_id)
        self._profiles[customer_id] = (ts, profile)
        region = profile.get("region")
        if region is not None:
            self._regions.setdefault(str(region), set()).add(customer_id)

    def customers_in_region(self, region: str) -> Iterable[str]:
        return sorted(self._regions.get(region, ()))

    def get_cooldowns(self, customer_id: str) -> dict[str, float]:
        return dict(self._cooldowns.get(customer_id, {}))

    def set_cooldown(self, customer_id: str, playbook: str, ts: float) -> None:
        self._cooldowns.setdefault(customer_id, {})[playbook] = ts

    def add_deadline(self, deadline: Deadline) -> None:
        self._deadlines[deadline.id] = deadline

    def remove_deadline(self, deadline_id: str) -> None:
        self._deadlines.pop(deadline_id, None)

    def pending_deadlines(self) -> list[Deadline]:
        return sorted(self._deadlines.values(), key=lambda d: (d.due, d.id))

    def scope_customers(self, scope_id: str) -> set[str]:
        return set(self._scopes.get(scope_id, ()))

    def set_scope_customers(self, scope_id: str, customers: set[str]) -> None:
        if customers:
            self._scopes[scope_id] = set(customers)
        else:
            self._scopes.pop(scope_id, None)

    def scope_log_add(self, ts: float, event: str) -> int:
        seq = max(self._scope_log, default=0) + 1
        self._scope_log[seq] = (ts, event)
        return seq

    def scope_log(self, since: float) -> list[tuple[int, float, str]]:
        rows = [(seq, ts, event) for seq, (ts, event) in self._scope_log.items() if ts >= since]
        return sorted(rows, key=lambda row: (row[1], row[0]))

    def scope_applied(self, stream: str) -> set[int]:
        return set(self._scope_applied.get(stream, ()))

    def mark_scope_applied(self, stream: str, seq: int) -> None:
        self._scope_applied.setdefault(stream, set()).add(seq)

    def set_watermark(self, stream: str, ts: float) -> None:
        self._watermarks[stream] = ts

    def watermarks(self, prefix: str) -> dict[str, float]:
        return {k: v for k, v in self._watermarks.items() if k.startswith(prefix)}

    def put_effect(self, effect: Effect) -> bool:
        if effect.id in self._effect_ids:
            return False
        self._effect_ids.add(effect.id)
        if self._keep_effects:
            self._effects[effect.id] = effect
        return True

    def effects(self) -> list[Effect]:
        return list(self._effects.values())

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        self._outbox_seq += 1
        self._outbox.append(OutboxItem(self._outbox_seq, topic, key, value, headers))

    def outbox_take(self, limit: int) -> list[OutboxItem]:
        taken, self._outbox = self._outbox[:limit], self._outbox[limit:]
        return taken

    def outbox_size(self) -> int:
        return len(self._outbox)

    def commit(self) -> None:
        """Nothing to do: memory is as durable as it gets."""

    def rollback(self) -> None:
        """Not supported: memory keeps what was written (the memory store is for replay and tests)."""

    def close(self) -> None:
        """Nothing to release."""
