"""What the service loop reports as it goes: the metrics of what a commit made durable and of the lag, and
readiness's view of the broker."""

from __future__ import annotations

import time

from recovery.config import Settings
from recovery.consumer.evaluation import Evaluator
from recovery.consumer.ordering import Merge
from recovery.consumer.reader import Reader
from recovery.consumer.transport import Transport
from recovery.health import Health
from recovery.metrics import Metrics


class Reporting:
    """The loop's metrics (none without `metrics`) and the broker's part of `/readyz` (`health`)."""

    def __init__(
        self,
        settings: Settings,
        evaluator: Evaluator,
        merge: Merge,
        metrics: Metrics | None,
        health: Health,
    ) -> None:
        self.settings = settings
        self.evaluator = evaluator
        self.merge = merge
        self.metrics = metrics
        self.health = health

    def stored(self) -> None:
        """Metrics of what the last commit made durable."""
        stored = self.evaluator.take_stored()
        if self.metrics is not None:
            self.metrics.observe_effects(stored, time.time())
            self.metrics.observe_engine(self.evaluator.engine_stats, self.evaluator.customers_in_memory)

    def lag(self, reader: Reader) -> None:
        """Each assigned partition's records not evaluated yet: on the broker, and fetched but buffered."""
        if self.metrics is None:
            return
        for tp in reader.assigned:
            lag = reader.transport.lag(tp)
            if lag is not None:
                self.metrics.set_lag(tp.partition, lag + self.merge.buffered(tp))

    def broker(self, transport: Transport, *, waiting: bool = False) -> None:
        """Readiness: is any broker connected? (Neither client raises while it connects again by itself.) Asked once
        a step, after its polls and before it publishes (confluent-kafka's consumer tells in librdkafka's
        statistics, handed over inside a poll), and every `outbox.WAITING_EVERY_S` while the outbox waits for the
        producer's answers, up to `outbox.FLUSH_TIMEOUT_S`: where a step meets a broker outage first."""
        connected = transport.connected(waiting=waiting)
        if connected is not None:
            reachable = f"no broker reachable at {self.settings.kafka_bootstrap_servers}"
            self.health.set(broker=None if connected else reachable)
