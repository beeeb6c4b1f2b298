"""What an expression sees at run time: the evaluation `Context` of one playbook for one customer at one instant.

The engine builds a context per evaluation; a compiled expression (`compiler.py`) is a function of it (`Fn`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from recovery.events import Occurrence

Fn = Callable[["Context"], Any]
"""A compiled expression: its value in a context."""

_ts = attrgetter("ts")


class Context:
    """Everything an expression can see while a playbook is evaluated for one customer at one instant.

    `at` is the evaluation instant (epoch seconds): look-back windows end there, inclusive.
    `by_type` holds the customer's recent occurrences of the types playbooks look back to, per type, each list in
    time order (what the engine keeps, so that a window is two binary searches).
    """

    __slots__ = ("_counts", "at", "by_type", "customer_id", "duration", "event", "first", "it", "lets", "profile")

    def __init__(
        self,
        event: Occurrence,
        customer_id: str,
        profile: dict[str, Any],
        at: float,
        by_type: dict[str, list[Occurrence]],
        first: Occurrence | None = None,
        duration: float | None = None,
    ) -> None:
        self.event = event
        self.customer_id = customer_id
        self.profile = profile
        self.at = at
        self.by_type = by_type
        self.first = first
        self.duration = duration
        self.lets: dict[str, Any] = {}
        self.it: Occurrence | None = None
        """The event a look-back function is looking at, while it evaluates its arguments for it."""
        self._counts: dict[tuple[str, float], list[Occurrence]] = {}

    def window(self, event_type: str, window_s: float) -> list[Occurrence]:
        """Occurrences of `event_type` in [at - window_s, at], both ends included (memoized)."""
        key = (event_type, window_s)
        found = self._counts.get(key)
        if found is None:
            same = self.by_type.get(event_type)
            if not same:
                found = []
            else:
                at = self.at
                start = at - window_s
                lo = 0 if same[0].ts >= start else bisect_left(same, start, key=_ts)
                hi = len(same) if same[-1].ts <= at else bisect_right(same, at, key=_ts)
                found = same[lo:hi]
            self._counts[key] = found
        return found
