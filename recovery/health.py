"""What `/readyz` reports: the service loop sets each check, the HTTP side reads them (DESIGN.md, HTTP)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

READY_STALE_S = 60.0
"""A check not refreshed for this long counts as failed (the loop that refreshes it is stuck)."""


@dataclass
class Health:
    """The service's checks; None is healthy, a string says what is wrong. Thread-safe enough: plain assignments."""

    broker: str | None = "not connected yet"
    store: str | None = None
    playbooks: str | None = "not loaded yet"
    loop: str | None = None
    """The service loop's last step failed (for another reason than the broker or the store)."""
    checked_at: float = field(default_factory=time.monotonic)

    def set(
        self, *, broker: str | bool | None = False, store: str | bool | None = False, loop: str | bool | None = False
    ) -> None:
        """None means healthy, a string says what is wrong; False leaves a check as it is."""
        if broker is not False:
            self.broker = broker if isinstance(broker, str) or broker is None else None
        if store is not False:
            self.store = store if isinstance(store, str) or store is None else None
        if loop is not False:
            self.loop = loop if isinstance(loop, str) or loop is None else None
        self.checked_at = time.monotonic()

    def problems(self) -> dict[str, str]:
        found = {name: value for name in ("broker", "store", "playbooks", "loop") if (value := getattr(self, name))}
        stale = time.monotonic() - self.checked_at
        if stale > READY_STALE_S:
            found["loop"] = f"the service loop has not reported for {stale:.0f}s"
        return found
