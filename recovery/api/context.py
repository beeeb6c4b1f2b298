"""What the API and the task page are given."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from recovery.config import Settings
from recovery.lifecycle import Catalog
from recovery.metrics import Metrics
from recovery.store.base import Store


@dataclass
class ApiContext:
    """`open_store` opens a connection of the API's own (the service loop keeps its own on its thread); each
    request opens one, commits on success, rolls back on failure and closes it. `clock` is epoch seconds.
    `csrf_secret` keys the task page's CSRF tokens: the process's own, so a form from before a restart is refused
    (the page shown with the refusal carries a fresh token)."""

    settings: Settings
    open_store: Callable[[], Store]
    catalog: Catalog
    metrics: Metrics | None = None
    clock: Callable[[], float] = field(default=time.time)
    csrf_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @contextmanager
    def session(self) -> Iterator[Store]:
        store = self.open_store()
        try:
            try:
                yield store
            except BaseException:
                store.rollback()
                raise
            store.commit()
        finally:
            store.close()  # also when the commit or the rollback fails: the connection is not left open
