"""The store suite's `store_factory` (memory, SQLite, PostgreSQL), shared with the other store test modules."""

from tests.store.test_stores import store_factory  # noqa: F401
