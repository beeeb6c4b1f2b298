"""The outbox publisher: sends what committed transactions queued (effects, hand-overs, DLQ records, the API's
`task.completed` and gesture decisions) to Kafka.

Messages are queued in the store in the same transaction as the writes that caused them (DESIGN.md principle 2).
The publisher works in short transactions of its own, never the service loop's, so that neither a slow broker nor
a refusal holds the loop or the frontline's writes back:
1. `send()` claims the oldest waiting messages (a claim names the publisher and runs out after `LEASE_S`, should it
   die: then whoever claims next publishes them) and hands them to the producer without waiting.
2. `confirm()` waits for the broker's answers and settles each message: published ones leave the outbox; one the
   broker refuses for good (too large, a topic it may not write to) is parked, kept and counted, and the rest go
   through; one that failed otherwise is tried again after a backoff that doubles with each attempt.
A crash between the two publishes the claimed messages again: a message may repeat (with the same content and
effect id), it never goes missing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from recovery.exceptions import BrokerError
from recovery.metrics import Metrics
from recovery.store.base import OutboxStore
from recovery.store.records import OutboxItem

logger = logging.getLogger(__name__)

CLAIM_LIMIT = 500
"""Messages claimed at a time."""
DELIVERY_TIMEOUT_S = 15.0
"""How long a producer tries to deliver a message, its own retries included, before it reports a failure (both
producers are opened with it)."""
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_S + 5.0
"""How long `confirm()` waits for the broker: longer than the producer tries, so that every message has its answer
by then. A message is sent again only once its producer has given up on it; sent again while the producer still
held it, both copies went out when the broker came back."""
LEASE_S = 2 * FLUSH_TIMEOUT_S
"""How long a claim lasts: longer than a publisher waits for the broker."""
MAX_BACKOFF_S = 60.0
WAITING_EVERY_S = 1.0
"""While `confirm()` waits for the broker's answers, how often it calls its `waiting` hook (the service loop's
readiness check: a wait meets a broker outage first, and lasts up to `FLUSH_TIMEOUT_S`)."""
PARKED_EVERY_S = 10.0
"""How often the publisher counts the parked messages for the metrics."""


class Ack(Protocol):
    """A request the broker answers later (a kafka-python future): `exception` is a `BrokerError` once it is a
    refusal; `get` waits for the answer, raising that error."""

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


@dataclass
class Settled:
    """What one `confirm()` did with the messages in flight."""

    published: int = 0
    retried: int = 0
    parked: int = 0
    unanswered: int = 0
    """Of those retried: not answered by the producer within the wait (with `FLUSH_TIMEOUT_S`, longer than the
    producer's own bound, a producer that no longer works: seen with kafka-python's after a broker stop)."""
    broken: str = ""
    """Of those retried: why the producer can send nothing more (an error of librdkafka's fatal state), or ""."""
    more: bool = False
    """(`cycle()`) A full claim was sent: more messages may wait."""


Answer = tuple[OutboxItem, BrokerError | None]
"""The broker's answer to a message sent: None (published) or why not."""


class OutboxPublisher:
    """Publishes the outbox of `store` (a connection for the publisher alone, or one whose transactions are over
    when it is called) through `producer`, as `owner` (unique among the publishers of one outbox). Not
    thread-safe. `backoff_s` is the first retry's delay; `clock` is epoch seconds; `waiting` is called every
    `WAITING_EVERY_S` while it waits for the broker's answers."""

    def __init__(
        self,
        store: OutboxStore,
        producer: Producer,
        *,
        owner: str,
        backoff_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        waiting: Callable[[], None] | None = None,
        answered: Sequence[Answer] = (),
    ) -> None:
        self.store = store
        self.producer = producer
        self.owner = owner
        self.backoff_s = backoff_s
        self.clock = clock
        self.metrics = metrics
        self.waiting = waiting
        self._in_flight: list[tuple[OutboxItem, Ack]] = []
        self.answered: list[Answer] = list(answered)
        """The broker's answers not stored yet (a publisher before this one's too, when the store failed as that
        one's clients were dropped)."""
        self._parked_counted = float("-inf")

    def send(self) -> int:
        """Claim waiting messages and hand them to the producer without waiting; returns how many. Nothing is
        claimed while messages are in flight or their answers are not stored (`confirm()` first)."""
        if self._in_flight or self.answered:
            return 0
        items = self.store.outbox_claim(self.owner, CLAIM_LIMIT, self.clock(), LEASE_S)
        self.store.commit()
        for item in items:
            key = None if item.key is None else item.key.encode()
            try:
                self._in_flight.append((item, self.producer.send(item.topic, key, item.value, item.headers)))
            except BrokerError as exc:  # refused before it left (too large for the producer, say)
                self.answered.append((item, exc))
        return len(items)

    def confirm(self, timeout_s: float = FLUSH_TIMEOUT_S) -> Settled:
        """Wait for the broker's answers (at most `timeout_s`) and settle every message sent (one transaction):
        published ones leave the outbox, those refused for good are parked, the others wait for a retry. Should the
        store fail, the answers are kept and stored by the next call: sent again, the messages would repeat."""
        in_flight, self._in_flight = self._in_flight, []
        unanswered = 0
        if in_flight:
            timeout = self._wait(timeout_s)
            for item, ack in in_flight:
                if not ack.is_done:
                    unanswered += 1
                    self.answered.append((item, timeout or BrokerError("no answer from the broker")))
                elif ack.failed():
                    self.answered.append((item, _broker_error(ack.exception) or BrokerError("refused")))
                else:
                    self.answered.append((item, None))
        if not self.answered:
            self._count_parked()
            return Settled()
        settled = self._settle()
        settled.unanswered = unanswered
        return settled

    def _wait(self, timeout_s: float) -> BrokerError | None:
        """Wait up to `timeout_s` for the answers to what the producer holds, in waits of `WAITING_EVERY_S` at most
        with a call of `waiting` between two; why some are not answered, if so."""
        if self.waiting is None:
            try:
                self.producer.flush(timeout_s)
            except BrokerError as exc:
                return exc
            return None
        waits = max(1, math.ceil(timeout_s / WAITING_EVERY_S))
        for n in range(waits):
            if n:
                self.waiting()
            try:
                self.producer.flush(timeout_s / waits)
                return None
            except BrokerError as exc:
                error = exc
        return BrokerError(f"no answer from the broker within {timeout_s:g} s ({error})")

    def _settle(self) -> Settled:
        settled = Settled()
        now = self.clock()
        self.store.outbox_done([item.seq for item, error in self.answered if error is None])
        parked: list[tuple[OutboxItem, BrokerError]] = []
        for item, error in self.answered:
            if error is None:
                settled.published += 1
            elif error.retriable:
                delay = min(self.backoff_s * 2**item.attempts, MAX_BACKOFF_S)
                self.store.outbox_retry([item.seq], now + delay, str(error))
                settled.retried += 1
                if error.fatal and not settled.broken:
                    settled.broken = str(error)
            else:
                self.store.outbox_park(item.seq, now, str(error))
                parked.append((item, error))
        self.store.commit()
        self.answered = []
        settled.parked = len(parked)
        for item, error in parked:
            logger.error(
                "message parked: the broker refuses it for good",
                extra={"seq": item.seq, "topic": item.topic, "key": item.key, "error": str(error)},
            )
        if settled.retried:
            logger.warning("messages not published; tried again later", extra={"count": settled.retried})
        self._observe(settled)
        return settled

    def cycle(self) -> Settled:
        """Settle what was sent, then send what waits (once per loop step, and between two batches of a step: the
        broker answers meanwhile)."""
        settled = self.confirm()
        settled.more = not settled.unanswered and not settled.broken and self.send() >= CLAIM_LIMIT
        return settled

    def settle_answered(self) -> Settled:
        """Before the producer is closed: settle what the broker answered (without waiting); the rest is sent again
        with the next `send()`, by this owner's next publisher (their claims are this owner's)."""
        with contextlib.suppress(BrokerError):  # some not answered: those are sent again
            self.producer.flush(0.0)  # serves the answers that came (librdkafka's are served by its calls)
        self._in_flight = [(item, ack) for item, ack in self._in_flight if ack.is_done]
        return self.confirm(0.0)

    def forget(self) -> None:
        """After a failure: the messages in flight are settled no more here (their claims are this owner's, so they
        are sent again with the next `send()`); the answers `confirm()` took are still stored by the next one."""
        self._in_flight = []

    def publish(self, timeout_s: float = FLUSH_TIMEOUT_S) -> int:
        """Send and settle until nothing waits (or `timeout_s` has passed, or nothing can be published now);
        returns how many were published."""
        deadline = time.monotonic() + timeout_s
        published = self.confirm(timeout_s).published
        while time.monotonic() < deadline:
            if not self.send():
                break
            settled = self.confirm(max(deadline - time.monotonic(), 0.0))
            published += settled.published
            if not settled.published:
                break
        return published

    def _observe(self, settled: Settled) -> None:
        if self.metrics is None:
            return
        self.metrics.observe_published(settled.published)
        self.metrics.observe_outbox_retries(settled.retried)
        self._count_parked(force=bool(settled.parked))

    def _count_parked(self, *, force: bool = False) -> None:
        if self.metrics is None:
            return
        now = time.monotonic()
        if force or now - self._parked_counted >= PARKED_EVERY_S:
            self._parked_counted = now
            self.metrics.set_outbox_parked(self.store.outbox_parked(0)[1])
            self.store.commit()


def _broker_error(error: BaseException | None) -> BrokerError | None:
    if error is None or isinstance(error, BrokerError):
        return error
    return BrokerError(f"{type(error).__name__}: {error}")
