"""The memory store's outbox: the same claims, retries and parking as the SQL stores', in a dict."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from recovery.store.records import OutboxItem, ParkedItem


@dataclass
class _Row:
    item: OutboxItem
    claimed_by: str | None = None
    claimed_until: float = 0.0
    not_before: float = 0.0
    parked_at: float | None = None
    error: str = ""


class MemoryOutbox:
    """Messages by seq, in order."""

    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._seq = 0

    def add(self, topic: str, key: str | None, value: bytes, headers: tuple[tuple[str, bytes], ...]) -> None:
        self._seq += 1
        self._rows[self._seq] = _Row(OutboxItem(self._seq, topic, key, value, headers))

    def claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[OutboxItem]:
        claimed: list[OutboxItem] = []
        for row in self._rows.values():
            if len(claimed) >= limit:
                break
            free = row.claimed_by is None or row.claimed_by == owner or row.claimed_until < now
            if row.parked_at is None and row.not_before <= now and free:
                row.claimed_by, row.claimed_until = owner, now + lease_s
                claimed.append(row.item)
        return claimed

    def done(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._rows.pop(seq, None)

    def retry(self, seqs: list[int], not_before: float, error: str) -> None:
        for seq in seqs:
            row = self._rows.get(seq)
            if row is not None:
                row.item = dataclasses.replace(row.item, attempts=row.item.attempts + 1)
                row.claimed_by, row.not_before, row.error = None, not_before, error

    def park(self, seq: int, at: float, error: str) -> None:
        row = self._rows.get(seq)
        if row is not None:
            row.claimed_by, row.parked_at, row.error = None, at, error

    def release(self) -> int:
        claimed = [row for row in self._rows.values() if row.claimed_by is not None]
        for row in claimed:
            row.claimed_by = None
        return len(claimed)

    def size(self) -> int:
        return sum(1 for row in self._rows.values() if row.parked_at is None)

    def parked(self, limit: int) -> tuple[list[ParkedItem], int]:
        rows = [row for row in self._rows.values() if row.parked_at is not None]
        found = [
            ParkedItem(r.item.seq, r.item.topic, r.item.key, len(r.item.value), r.parked_at or 0.0, r.error)
            for r in rows[:limit]
        ]
        return found, len(rows)

    def unpark(self, seqs: list[int] | None) -> int:
        rows = [row for row in self._rows.values() if row.parked_at is not None]
        if seqs is not None:
            rows = [row for row in rows if row.item.seq in set(seqs)]
        for row in rows:
            row.parked_at, row.error, row.not_before = None, "", 0.0
            row.item = dataclasses.replace(row.item, attempts=0)
        return len(rows)
