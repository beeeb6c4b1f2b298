"""Absence deadlines: an absence playbook's `first` event sets one, the awaited event answers it in time, and the
clock passing it unanswered fires the playbook.

Deadlines are written to the store as they are set, answered or fired, so that an engine built later (a restart, a
rebalance) takes up the pending ones (`EngineState.pending_deadlines`).
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

from recovery.events import Occurrence
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.base import EngineState
from recovery.store.records import Deadline

logger = logging.getLogger(__name__)


def _key(pb: CompiledPlaybook, occ: Occurrence) -> Any:
    """What pairs `occ` with the other events of an absence: its key field's value, or "" (any event of the
    customer) for a playbook without a key. None: the event lacks the key field."""
    return occ.data.get(pb.key) if pb.key is not None else ""


class Deadlines:
    """The pending deadlines, by id, by (playbook, customer, key) to be answered, and by time to fire.

    `heap` holds (due, deadline id), the earliest first; the entry of a deadline answered in time stays there
    until its time comes, and is then skipped.
    """

    def __init__(self, store: EngineState) -> None:
        self.store = store
        self.heap: list[tuple[float, str]] = []
        self._by_id: dict[str, Deadline] = {}
        self._by_key: dict[tuple[str, str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def schedule(self, deadline: Deadline) -> None:
        """Hold `deadline` (already in the store) until it is answered or fires."""
        self._by_id[deadline.id] = deadline
        self._by_key.setdefault((deadline.playbook, deadline.customer_id, deadline.key), set()).add(deadline.id)
        heapq.heappush(self.heap, (deadline.due, deadline.id))

    def wait_for(self, pb: CompiledPlaybook, cid: str, occ: Occurrence) -> None:
        """`occ` is the `first` event of the absence playbook `pb`: set its deadline (once per event)."""
        value = _key(pb, occ)
        if value is None:
            logger.warning(
                "absence start without key",
                extra={"playbook": pb.id, "event_id": occ.id, "customer_id": cid, "key": pb.key},
            )
            return
        deadline = Deadline(
            id=f"{pb.id}|{cid}|{occ.id}",
            due=occ.ts + pb.within_s,
            playbook=pb.id,
            customer_id=cid,
            key=str(value),
            first=occ,
        )
        if deadline.id in self._by_id:
            return
        self.store.add_deadline(deadline)
        self.schedule(deadline)

    def answer(self, pb: CompiledPlaybook, cid: str, occ: Occurrence) -> None:
        """`occ` is the awaited event: cancel the deadlines it answers in time (at the deadline counts)."""
        value = _key(pb, occ)
        if value is None:
            return
        for deadline_id in sorted(self._by_key.get((pb.id, cid, str(value)), ())):
            deadline = self._by_id[deadline_id]
            if deadline.first.ts <= occ.ts <= deadline.due:
                del self._by_id[deadline_id]
                self._unindex(deadline)
                self.store.remove_deadline(deadline_id)

    def pop_due(self, ts: float) -> tuple[float, Deadline] | None:
        """The earliest pending deadline due strictly before `ts` with its time, taken out (of the store too); None
        when there is none."""
        heap = self.heap
        while heap and heap[0][0] < ts:
            due, deadline_id = heapq.heappop(heap)
            deadline = self._by_id.pop(deadline_id, None)
            if deadline is None:  # answered in time and cancelled
                continue
            self._unindex(deadline)
            self.store.remove_deadline(deadline_id)
            return due, deadline
        return None

    def _unindex(self, deadline: Deadline) -> None:
        index_key = (deadline.playbook, deadline.customer_id, deadline.key)
        ids = self._by_key.get(index_key)
        if ids is not None:
            ids.discard(deadline.id)
            if not ids:
                del self._by_key[index_key]
