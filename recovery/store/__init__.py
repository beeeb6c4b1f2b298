"""Where the truth lives: the event ledger, customer state, deadlines, effects and the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from recovery.exceptions import StoreError
from recovery.store.base import Store
from recovery.store.memory import MemoryStore
from recovery.store.records import Deadline, OutboxItem
from recovery.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from recovery.config import Settings

__all__ = ["Deadline", "MemoryStore", "OutboxItem", "SqliteStore", "Store", "open_service_store", "open_store"]


def open_store(url: str, *, checkpoint_every_s: float | None = None, cache_mb: int = 0) -> Store:
    """The store a `RECOVERY_STORE_URL` names: `sqlite:///relative.db`, `sqlite:////abs/path.db`, `memory://`
    or `postgresql://user:password@host:port/db`. `checkpoint_every_s` and `cache_mb` are for a SQLite store only
    (see SqliteStore)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreError(f"store URL {url!r}: a SQLite URL is sqlite:///FILE (relative) or sqlite:////FILE")
        return SqliteStore(path, checkpoint_every_s=checkpoint_every_s, cache_mb=cache_mb)
    if scheme == "memory":
        return MemoryStore(keep_effects=False)
    if scheme in ("postgresql", "postgres"):
        from recovery.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(f"store URL {url!r}: unknown scheme {scheme!r} (use sqlite:///FILE or postgresql://...)")


def open_service_store(settings: Settings) -> Store:
    """The store of `recovery serve`'s loop: long-lived, committing once per batch (SQLite checkpoints from a thread
    of its own, every `sqlite_checkpoint_every_s`, with a page cache of `sqlite_cache_mb`), and rolling a failed
    batch back: not the memory store."""
    if urlsplit(settings.store_url).scheme == "memory":
        raise StoreError(
            f"store_url (RECOVERY_STORE_URL) is {settings.store_url!r}: the memory store cannot roll back a failed "
            "batch and keeps nothing across a restart; recovery serve needs sqlite:///FILE or postgresql://..."
        )
    checkpoint_every_s = settings.sqlite_checkpoint_every_s or None
    return open_store(settings.store_url, checkpoint_every_s=checkpoint_every_s, cache_mb=settings.sqlite_cache_mb)
