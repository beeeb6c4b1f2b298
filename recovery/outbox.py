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
from collections import Counter
from typing import Any

from kafka.errors import KafkaError

from recovery.store.base import OutboxStore
from recovery.store.records import OutboxItem

logger = logging.getLogger(__name__)

TAKE_LIMIT = 500
FLUSH_TIMEOUT_S = 30.0


class OutboxPublisher:
    """Publishes the store's outbox through a kafka-python producer. One per service loop (not thread-safe)."""

    def __init__(self, store: OutboxStore, producer: Any) -> None:
        self.store = store
        self.producer = producer
        self.sent: Counter[str] = Counter()
        self.failures = 0
        self._in_flight: list[tuple[OutboxItem, Any]] = []

    @property
    def in_flight(self) -> int:
        """Messages sent and not confirmed yet."""
        return len(self._in_flight)

    def send(self) -> int:
        """Take everything queued and hand it to the producer; returns how many. Nothing is final until
        `confirm()` and the store's commit."""
        total = 0
        while True:
            items = self.store.outbox_take(TAKE_LIMIT)
            if not items:
                return total
            try:
                for item in items:
                    future = self.producer.send(
                        item.topic,
                        key=None if item.key is None else item.key.encode(),
                        value=item.value,
                        headers=list(item.headers),
                    )
                    self._in_flight.append((item, future))
            except KafkaError:
                self.failures += 1
                raise
            total += len(items)

    def confirm(self) -> int:
        """Wait until the broker has every message sent; returns how many. Raises KafkaError when one failed:
        the caller must then roll the store back (the taken messages return to the outbox)."""
        in_flight, self._in_flight = self._in_flight, []
        if not in_flight:
            return 0
        try:
            self.producer.flush(timeout=FLUSH_TIMEOUT_S)
            for _, future in in_flight:
                future.get(timeout=FLUSH_TIMEOUT_S)
        except KafkaError:
            self.failures += 1
            raise
        for item, _ in in_flight:
            self.sent[item.topic] += 1
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
        except KafkaError:
            self.forget()
            self.store.rollback()
            raise
        self.store.commit()
        return total
