"""Where the truth lives: the event ledger, customer state, deadlines and effects."""

from recovery.store.base import Deadline, Store
from recovery.store.memory import MemoryStore
from recovery.store.sqlite import SqliteStore

__all__ = ["Deadline", "MemoryStore", "SqliteStore", "Store"]
