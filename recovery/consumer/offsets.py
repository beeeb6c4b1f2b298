"""The consumer group's offsets: committed only after the store has what they acknowledge (DESIGN.md principle 2)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from recovery.consumer.records import ServiceStats
from recovery.consumer.transport import Ack, TopicPartition, Transport, describe
from recovery.exceptions import BrokerError

logger = logging.getLogger("recovery.consumer")


class Offsets:
    """The offsets after the last record processed (and stored) per partition, and their commits to the group.

    Commits are asynchronous with one in flight at a time (kafka-python refuses more than a connection's in-flight
    limit): offsets processed meanwhile wait for the next `send`, and a commit that failed is sent again unless
    newer offsets replaced it. A lost commit only redelivers events the ledger knows. The last offsets are committed
    synchronously on closing (`commit_now`)."""

    def __init__(self, stats: ServiceStats) -> None:
        self.stats = stats
        self.processed: dict[TopicPartition, int] = {}
        """The offset after the last processed record of each partition (what `commit_now` commits)."""
        self._to_commit: dict[TopicPartition, int] = {}
        """Processed offsets not sent in a commit yet."""
        self._sent: dict[TopicPartition, int] = {}
        self._in_flight: Ack | None = None
        """The asynchronous commit in flight (of `_sent`), if any."""

    def stored(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The store has committed everything up to these offsets (of the next record to read): they may be
        committed to the group."""
        self.processed.update(offsets)
        self._to_commit.update(offsets)

    def send(self, transport: Transport, assigned: Iterable[TopicPartition]) -> None:
        """Commit what is stored and not committed yet, asynchronously, unless a commit is in flight. Called after
        every batch and every loop step, so the last offsets are committed although no batch follows."""
        in_flight = self._in_flight
        if in_flight is not None:
            if not in_flight.is_done:
                return
            self._in_flight = None
            if in_flight.failed():
                self._failed(in_flight.exception)
                owned = set(assigned)
                for tp, offset in self._sent.items():
                    if tp in owned:
                        self._to_commit.setdefault(tp, offset)
        if not self._to_commit:
            return
        offsets, self._to_commit = self._to_commit, {}
        self._sent = offsets
        try:
            self._in_flight = transport.commit_async(offsets)
        except BrokerError as exc:
            self._failed(exc)
            for tp, offset in offsets.items():
                self._to_commit.setdefault(tp, offset)

    def commit_now(self, transport: Transport, assigned: Iterable[TopicPartition]) -> None:
        """Commit the processed offsets of the partitions still ours, and wait (on closing: nothing processed comes
        again)."""
        offsets, self.processed, self._to_commit = self.processed, {}, {}
        owned = set(assigned)
        mine = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if mine:
            transport.commit(mine)

    def forget(self) -> None:
        """The partitions were taken away: the next owners commit from here on (a commit in flight is left to
        itself)."""
        self.processed, self._to_commit, self._sent, self._in_flight = {}, {}, {}, None

    def _failed(self, exc: BaseException | None) -> None:
        self.stats.commit_failures += 1
        logger.warning("offset commit failed; it is sent again", extra={"error": describe(exc) if exc else "unknown"})
