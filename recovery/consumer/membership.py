"""`Membership`: keeps a kafka-python 3.0.12 group member from getting stuck in a rebalance.

kafka-python runs a JoinGroup/SyncGroup round as a task on its IO thread, and a poll waits for that task for at
most the poll's own timeout. The round's result (the assignment, the end of the rebalance) is applied only by a
poll that is still waiting when the round ends. When it ends between two polls, while the loop works on a step:
- if a rejoin is still wanted, the next poll starts another round: a poll with timeout 0 after each 0.2 s step
  went through 73 generations in 15 s and never read a record;
- if the round was for a metadata change its own assignment settled (this member leads the group and the topic's
  partitions appeared or grew), nothing is wanted any more: the member stays `rebalancing` for good, its partitions
  marked pending revocation (not fetchable), its heartbeat off; 7 of 180 fresh members were stuck so, under load.

So the Kafka adapter asks this class around each poll: while the member is not stable, it polls again with at
least `JOIN_POLL_MS` (the round ends inside a poll that waits for it), for up to `JOIN_WAIT_S`; and a member left
rebalancing with no round in flight and nothing wanted for `STUCK_S` is asked to rejoin. Measured in
docs/operations.md ("A group member stuck in a rebalance").

It reads the coordinator's private state: if a kafka-python release moves it, `stable()` says True (polls as they
are) and one warning says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka.coordinator.base import MemberState

logger = logging.getLogger("recovery.consumer")

JOIN_POLL_MS = 200
"""The least a poll waits while the member is joining: longer than a join round on a busy machine."""
JOIN_WAIT_S = 10.0
"""How long one `poll` of the adapter goes on polling while the member is not stable (the loop gets control back
after that, and polls again)."""
STUCK_S = 2.0
"""How long a member may stay rebalancing with no round in flight and no rejoin wanted before it is asked to rejoin
(a round's end and the poll applying it are a few milliseconds apart)."""


class Membership:
    """Around one `KafkaConsumer`'s polls: `stable()` tells whether its group membership is settled, and asks the
    member to rejoin when it is stuck (see the module)."""

    def __init__(self, consumer: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._consumer = consumer
        self._clock = clock
        self._stuck_since: float | None = None
        self._unreadable = False
        self.rejoins = 0
        """How often the member was asked to rejoin because it was stuck rebalancing."""

    def stable(self) -> bool:
        try:
            coordinator = self._consumer._coordinator
            if coordinator.state is MemberState.STABLE:
                self._stuck_since = None
                return True
            join = coordinator._join_task
            stuck = (
                coordinator.state is MemberState.REBALANCING
                and (join is None or join.is_done)
                and not coordinator.need_rejoin()
            )
        except AttributeError as exc:  # a kafka-python release that moved its state: poll as before
            if not self._unreadable:
                self._unreadable = True
                logger.warning("cannot read the Kafka group member's state, polls are not extended", exc_info=exc)
            return True
        now = self._clock()
        if not stuck:
            self._stuck_since = None
        elif self._stuck_since is None:
            self._stuck_since = now
        elif now - self._stuck_since >= STUCK_S:
            self._stuck_since = None
            self.rejoins += 1
            logger.warning(
                "the Kafka group member was left rebalancing with nothing in flight: rejoining",
                extra={"after_s": STUCK_S, "generation": getattr(coordinator._generation, "generation_id", None)},
            )
            coordinator.request_rejoin()
        return False
