"""The outbox in SQL: messages queued with the writes that caused them, claimed by a publisher, settled (published,
tried again after a backoff, or parked for good). See recovery/outbox.py for the publisher."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from recovery.store.codec import dumps
from recovery.store.records import OutboxItem, ParkedItem
from recovery.store.statements import (
    OUTBOX_ADD,
    OUTBOX_CLAIM,
    OUTBOX_DONE,
    OUTBOX_PARK,
    OUTBOX_PARKED,
    OUTBOX_PARKED_COUNT,
    OUTBOX_RELEASE,
    OUTBOX_RETRY,
    OUTBOX_SIZE,
    OUTBOX_UNPARK,
    OUTBOX_UNPARK_ALL,
    Cursor,
    Params,
    Statement,
    Write,
)


class SqlOutbox(ABC):
    """The outbox's methods of a SQL store, run by the store (`_run`, `_write`); `_ids` passes a list of ids."""

    @abstractmethod
    def _run(self, statement: Statement, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def _write(self, write: Write, params: Params) -> None: ...

    @abstractmethod
    def _ids(self, values: list[str] | list[int]) -> Any: ...

    def outbox_add(
        self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        encoded = dumps([[name, raw.decode("latin-1")] for name, raw in headers]) if headers else "[]"
        self._write(OUTBOX_ADD, (topic, key, value, encoded))

    def outbox_claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[OutboxItem]:
        rows = self._run(OUTBOX_CLAIM, (owner, now + lease_s, now, owner, now, limit)).fetchall()
        items = [
            OutboxItem(
                int(seq),
                topic,
                key,
                bytes(value),
                () if headers == "[]" else tuple((n, v.encode("latin-1")) for n, v in json.loads(headers)),
                int(attempts),
            )
            for seq, topic, key, value, headers, attempts in rows
        ]
        return sorted(items, key=lambda item: item.seq)

    def outbox_done(self, seqs: list[int]) -> None:
        if seqs:
            self._write(OUTBOX_DONE, (self._ids(seqs),))

    def outbox_retry(self, seqs: list[int], not_before: float, error: str) -> None:
        if seqs:
            self._write(OUTBOX_RETRY, (not_before, error, self._ids(seqs)))

    def outbox_park(self, seq: int, at: float, error: str) -> None:
        self._write(OUTBOX_PARK, (at, error, seq))

    def outbox_release(self) -> int:
        return self._run(OUTBOX_RELEASE).rowcount

    def outbox_size(self) -> int:
        row = self._run(OUTBOX_SIZE).fetchone()
        return int(row[0]) if row else 0

    def outbox_parked(self, limit: int) -> tuple[list[ParkedItem], int]:
        rows = self._run(OUTBOX_PARKED, (limit,)).fetchall()
        row = self._run(OUTBOX_PARKED_COUNT).fetchone()
        parked = [
            ParkedItem(int(seq), topic, key, int(size), float(at), str(error))
            for seq, topic, key, size, at, error in rows
        ]
        return parked, int(row[0]) if row else 0

    def outbox_unpark(self, seqs: list[int] | None) -> int:
        if seqs is None:
            return self._run(OUTBOX_UNPARK_ALL).rowcount
        return self._run(OUTBOX_UNPARK, (self._ids(seqs),)).rowcount if seqs else 0
