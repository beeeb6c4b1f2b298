"""The outbox publisher: sends what a committed batch queued (effects, hand-overs, DLQ records) to Kafka.

Messages are queued in the store in the same transaction as the writes that caused them (DESIGN.md principle 2).
`send()` takes them (the take deletes them in the store's open transaction) and hands them to the producer
without waiting; `confirm()` waits until the broker has them all, and must come before the store's next commit,
which makes the take final. So the service loop goes on with the next batch while the broker acknowledges the
last one's messages. A crash, or a broker failure (raised by `confirm()`; the caller rolls back, which puts the
taken messages back), sends them again: a published effect may repeat, with the same id, but never goes missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from recovery.exceptions import BrokerError
from recovery.store.base import OutboxStore
from recovery.store.records import OutboxItem

logger = logging.getLogger(__name__)

TAKE_LIMIT = 500
FLUSH_TIMEOUT_S = 30.0


class Ack(Protocol):
    """A request the broker answers later (a kafka-python future): `get` waits for the answer, raising
    `BrokerError` when it is a refusal."""

    @property
    def is_done(self) -> bool: ...

    @property
    def exception(self) -> BaseException | None: ...

    def failed(self) -> bool: ...

    def get(self, timeout: float | None = None) -> Any: ...


class Producer(Protocol):
    """What the publisher needs of a Kafka producer."""

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> Ack: ...

    def flush(self, timeout_s: float) -> None: ...


class OutboxPublisher:
    """Publishes the store's outbox through a producer. One per service loop (not thread-safe)."""

    def __init__(self, store: OutboxStore, producer: Producer) -> None:
        self.store = store
        self.producer = producer
        self._in_flight: list[tuple[OutboxItem, Ack]] = []

    def send(self) -> int:
        """Take everything queued and hand it to the producer; returns how many. Nothing is final until
        `confirm()` and the store's commit."""
        total = 0
        while True:
            items = self.store.outbox_take(TAKE_LIMIT)
            if not items:
                return total
            for item in items:
                key = None if item.key is None else item.key.encode()
                self._in_flight.append((item, self.producer.send(item.topic, key, item.value, item.headers)))
            total += len(items)

    def confirm(self) -> int:
        """Wait until the broker has every message sent; returns how many. Raises BrokerError when one failed: the
        caller must then roll the store back (the taken messages return to the outbox)."""
        in_flight, self._in_flight = self._in_flight, []
        if not in_flight:
            return 0
        self.producer.flush(FLUSH_TIMEOUT_S)
        for _, ack in in_flight:
            ack.get(timeout=FLUSH_TIMEOUT_S)
        return len(in_flight)

    def forget(self) -> None:
        """After a rollback: what was in flight is back in the outbox and is sent again."""
        self._in_flight = []

    def publish(self) -> int:
        """Send everything queued, wait for the broker and commit the take; returns how many were sent. On a broker
        failure nothing is lost: the store is rolled back and the error propagates to the caller's retry."""
        try:
            self.send()
            total = self.confirm()
        except BrokerError:
            self.forget()
            self.store.rollback()
            raise
        self.store.commit()
        return total
