"""The outbox publisher: sends what a committed batch queued (effects, hand-overs, DLQ records) to Kafka.

Messages are queued in the store in the same transaction as the writes that caused them (DESIGN.md principle 2),
then taken here, sent, flushed, and only then removed for good (the take is committed). A crash or a broker
failure in between sends them again: a published effect may repeat, with the same id, but never goes missing.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from kafka.errors import KafkaError

from recovery.store.base import Store

logger = logging.getLogger(__name__)

TAKE_LIMIT = 500
FLUSH_TIMEOUT_S = 30.0


class OutboxPublisher:
    """Publishes the store's outbox through a kafka-python producer. One per service loop (not thread-safe)."""

    def __init__(self, store: Store, producer: Any) -> None:
        self.store = store
        self.producer = producer
        self.sent: Counter[str] = Counter()
        self.failures = 0

    def publish(self) -> int:
        """Send everything queued; returns how many were sent. On a broker failure nothing is lost: the taken
        messages go back to the outbox (rollback) and the error propagates to the caller's retry."""
        total = 0
        while True:
            items = self.store.outbox_take(TAKE_LIMIT)
            if not items:
                return total
            try:
                futures = [
                    self.producer.send(
                        item.topic,
                        key=None if item.key is None else item.key.encode(),
                        value=item.value,
                        headers=list(item.headers),
                    )
                    for item in items
                ]
                self.producer.flush(timeout=FLUSH_TIMEOUT_S)
                for future in futures:
                    future.get(timeout=FLUSH_TIMEOUT_S)
            except KafkaError:
                self.failures += 1
                self.store.rollback()
                raise
            self.store.commit()
            for item in items:
                self.sent[item.topic] += 1
            total += len(items)
