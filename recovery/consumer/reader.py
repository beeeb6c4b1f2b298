"""Reading: records polled from the transport, decoded and buffered in the merge, partition by partition."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from recovery.consumer.evaluation import decode
from recovery.consumer.ordering import Floor, Merge
from recovery.consumer.records import FETCH_STALL_S, PAUSE_ABOVE, POLL_RECORDS, POLLS_PER_STEP, RESUME_BELOW
from recovery.consumer.transport import Rebalance, TopicPartition, Transport
from recovery.exceptions import BrokerError


class Reader:
    """Polls the transport into `merge`: everything the fetcher holds at each step (it fetches every partition
    ahead, so the merge sees them all), pausing a partition whose buffer is full until it drains."""

    def __init__(
        self, transport: Transport, merge: Merge, window: Callable[[], tuple[float, float]] | None = None
    ) -> None:
        self.transport = transport
        self.merge = merge
        self.window = window or (lambda: (float("-inf"), float("inf")))
        """The event times accepted now, (earliest, latest): the others go to the DLQ."""
        self.assigned: frozenset[TopicPartition] = frozenset()
        self.paused: set[TopicPartition] = set()
        self._idle_since: float | None = None

    def read(self, timeout_ms: int) -> tuple[int, Rebalance | None]:
        """Poll until the fetcher has nothing more (the first poll waits up to `timeout_ms`); returns how many records
        were buffered, and the rebalance that happened, if any (the records of that poll are dropped: positions go
        back to the committed offsets)."""
        transport, merge = self.transport, self.merge
        earliest, latest = self.window()
        read = 0
        for _ in range(POLLS_PER_STEP):
            polled = transport.poll(timeout_ms, POLL_RECORDS)
            timeout_ms = 0
            rebalance = transport.rebalance()
            if rebalance is not None:
                return read, rebalance
            if not polled:
                break
            for tp, records in polled.items():
                tp = TopicPartition(tp.topic, tp.partition)
                read += len(records)
                if (
                    merge.add(tp, [decode(r, earliest, latest) for r in records]) > PAUSE_ABOVE
                    and tp not in self.paused
                ):
                    transport.pause(tp)
                    self.paused.add(tp)
        return read, None

    def stuck(self, read: int, now: float) -> str | None:
        """Why the Kafka client is taken as stuck, once polls (`read` records this step) have brought nothing for
        `FETCH_STALL_S` while the broker holds records for a partition nobody paused; else None. `now`: monotonic
        seconds."""
        waiting = 0 if read else sum(max(self.transport.lag(tp) or 0, 0) for tp in self.assigned - self.paused)
        if not waiting:
            self._idle_since = None
            return None
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < FETCH_STALL_S:
            return None
        return (
            f"the Kafka client fetched nothing for {FETCH_STALL_S:g} s with {waiting:,} records waiting on the broker: "
            "connecting again"
        )

    def resume_drained(self) -> None:
        """Fetch again from paused partitions whose buffer has drained."""
        for tp in list(self.paused):
            if self.merge.buffered(tp) < RESUME_BELOW:
                self.transport.resume(tp)
                self.paused.discard(tp)

    def resume_holding(self, floors: Mapping[TopicPartition, Floor]) -> None:
        """After a step that could take nothing: fetch again from the paused partition whose watermark is the
        floor that holds the others back, however full its buffer. Its newest record fetched (a late one) is older
        than their heads, and only a fetch moves it: else no partition goes on and none fetches, for good."""
        if not self.paused or not floors:
            return
        marks = {tp: self.merge.watermark(tp, self.lagging(tp)) for tp in self.assigned}
        holding = min(marks, key=marks.__getitem__)
        if holding in self.paused and marks[holding] <= min(f.ts for f in floors.values()):  # not another's partition
            self.transport.resume(holding)
            self.paused.discard(holding)

    def revoked(self) -> None:
        """The partitions were taken away: what is buffered is fetched again, by us or their next owner."""
        self.assigned = frozenset()
        self.paused.clear()

    def rewind(self, assigned: frozenset[TopicPartition] | None = None) -> None:
        """Forget what is buffered and fetch every assigned partition again from its committed offset (kafka-python
        keeps the fetch position of a partition it keeps across a rebalance, past records buffered here but not
        processed)."""
        if assigned is not None:
            self.assigned = assigned
        for tp in self.assigned:
            self.transport.resume(tp)
        self.paused.clear()
        for tp in self.assigned:
            self.transport.seek(tp, self.transport.committed(tp))
        self.merge.reset(self.assigned)

    def partitions(self) -> int:
        """How many partitions the events topic has, as the client's metadata says: a count that does not cover an
        assigned partition (metadata not read yet) fails as the broker would (each engine would take every
        customer of a topic of one partition for its own)."""
        partitions = self.transport.partitions()
        beyond = sorted(tp for tp in self.assigned if tp.partition >= partitions)
        if beyond:
            tp = beyond[0]
            raise BrokerError(
                f"{tp.topic}/{tp.partition} is assigned; its topic's metadata has {partitions} partitions"
            )
        return partitions

    def lagging(self, tp: TopicPartition) -> bool:
        return self.transport.lagging(tp)

    def caught_up(self) -> bool:
        """Every assigned partition is read to its end and processed."""
        return bool(self.assigned) and all(
            not self.merge.buffered(tp) and not self.transport.lagging(tp) for tp in self.assigned
        )
