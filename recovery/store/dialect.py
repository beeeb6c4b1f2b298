"""What a SQL backend supplies to `SqlStore`: a `Dialect` (SQLite's in sqlite.py, PostgreSQL's in postgres.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from recovery.exceptions import StoreError
from recovery.store.statements import DECLARED, SLOTS, Cursor, Params, Statement, Write, render


class Dialect(ABC):
    """What differs between SQL backends: the connection and its transaction, the schema (migrated when the dialect
    is built), how a list of ids is passed and how a group of queued rows is sent. `sql` is every declared
    statement rendered once in the dialect's placeholder and slots (see statements.py)."""

    name: str
    """The store in messages: its kind and where it is."""
    errors: type[Exception] | tuple[type[Exception], ...]
    """The driver's errors (and the dialect's own): raised as `StoreError`."""

    def __init__(self, placeholder: str, slots: Mapping[str, str]) -> None:
        if set(slots) != set(SLOTS):
            raise ValueError(f"a dialect fills in the slots {', '.join(SLOTS)}, not {', '.join(slots)}")
        self.placeholder = placeholder
        self.slots = dict(slots)
        """How this dialect writes the slots: for statements made for a call (`render` them)."""
        self.sql: dict[Statement, str] = {s: render(s.text, placeholder, slots) for s in DECLARED}

    @abstractmethod
    def ids(self, values: Sequence[str] | Sequence[int]) -> Any:
        """A list of ids (or seqs) as the parameter of the `in_ids`, `in_seqs` and `ids` slots."""

    def describe(self, exc: BaseException) -> str:
        """The driver's message, for a `StoreError`."""
        return str(exc)

    @abstractmethod
    def execute(self, sql: str, params: Params) -> Cursor: ...

    @abstractmethod
    def send(self, groups: list[tuple[Write, list[Params]]]) -> None:
        """Send queued writes, grouped (see `grouping.grouped_writes`)."""

    def send_then(self, groups: list[tuple[Write, list[Params]]], sql: str, params: Params) -> Cursor:
        """Send queued writes, then run a statement whose result is read."""
        self.send(groups)
        return self.execute(sql, params)

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None:
        """Roll the transaction back (raising `StoreError` when the store cannot be reached again)."""

    @abstractmethod
    def close(self) -> None: ...


def newer_schema(where: str, version: int, known: int) -> StoreError:
    return StoreError(
        f"the store at {where!r} has schema version {version}, newer than this recovery ({known}): upgrade recovery"
    )
