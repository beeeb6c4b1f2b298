"""Where the truth lives: the event ledger, customer state, deadlines and effects."""

from recovery.store.base import Deadline, Store
from recovery.store.memory import MemoryStore

__all__ = ["Deadline", "MemoryStore", "Store"]
