"""`StallWatch`: tells when a consumer has stopped fetching although records wait for it.

kafka-python 3.0.12 can leave a member's partitions unfetchable after a rebalance (assigned, not paused, a valid
position, but still marked pending revocation: measured in 4 of 20 drains of a backlog, docs/operations.md), so
every poll comes back empty for good while the group looks healthy. The Kafka adapter asks this watch after each
empty poll and rejoins the group when it says so; the loop sees that as any other rebalance.
"""

from __future__ import annotations

import time
from collections.abc import Callable

STALL_S = 30.0
"""How long polls may come back empty, with records waiting, before the member rejoins."""
STALL_POLLS = 10
"""And how many empty polls in a row at the least (a loop that polls rarely, during a long step, is not stuck)."""


class StallWatch:
    """Counts the empty polls since the last one that returned records. `stuck(backlog)` is True at most once per
    `after_s`: when polls have been empty for that long (and `polls` of them at least) and `backlog()` says
    records wait on partitions this member fetches (it is asked only then: it may ask the broker)."""

    def __init__(
        self, after_s: float = STALL_S, polls: int = STALL_POLLS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.after_s = after_s
        self.polls = polls
        self._clock = clock
        self._since = clock()
        self._empty = 0

    def polled(self, records: int) -> None:
        if records:
            self._since = self._clock()
            self._empty = 0
        else:
            self._empty += 1

    def stuck(self, backlog: Callable[[], bool]) -> bool:
        now = self._clock()
        if self._empty < self.polls or now - self._since < self.after_s:
            return False
        self._since, self._empty = now, 0  # look again only after as long again
        return backlog()
