"""Fencing: a step commits only while its instance still owns its partitions. An instance that stops for longer
than the group session (a long pause of the process or its machine) is dropped from the group and its partitions
go to another; when it goes on, the step it was in would commit what it evaluated from a state the new owner has
moved on from (a deadline set again that the new owner had cleared, a case opened twice). Each assignment claims
its partitions in the store (their epoch goes up), and each step, in its transaction, checks that no one claimed
them since (PostgreSQL locks the rows until the commit, so a claim waits for a step in flight): a step that lost
them fails and is rolled back, and the loop goes on as the group tells it."""

from __future__ import annotations

from collections.abc import Iterable

from recovery.consumer.transport import TopicPartition
from recovery.exceptions import StoreError
from recovery.store.base import Store


class Fenced(StoreError):
    """Another instance claimed partitions of this one since its assignment."""


class Fence:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.epochs: dict[str, int] = {}
        """The owned partitions' epochs as claimed."""
        self._unclaimed: list[str] | None = None
        """Partitions assigned and not claimed yet (the claim failed: it is made again before the next step)."""

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """A new assignment: its partitions are to be claimed (`claim`), the ones before dropped."""
        self.epochs = {}
        self._unclaimed = sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)

    def claim(self) -> None:
        """Claim what the last assignment gave, if not done yet; committed at once."""
        if self._unclaimed is None:
            return
        epochs = self.store.claim_streams(self._unclaimed)
        self.store.commit()  # a failure leaves it to the loop's rollback, and to the next try
        self.epochs, self._unclaimed = epochs, None

    def revoked(self) -> None:
        self.epochs, self._unclaimed = {}, None

    def check(self) -> None:
        """Fail (`Fenced`) when another instance claimed an owned partition since: before a step's commit."""
        if not self.epochs:
            return
        lost = self.store.fenced(self.epochs)
        if lost:
            raise Fenced(f"partitions {', '.join(lost)} were assigned to another instance: the step is not committed")
