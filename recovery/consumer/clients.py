"""The Kafka clients `recovery serve` runs on, as its settings choose them."""

from __future__ import annotations

from recovery.config import Settings
from recovery.consumer.records import POLL_RECORDS
from recovery.consumer.transport import Transport


def kafka_transport(settings: Settings) -> Transport:
    """The real transport: the clients `settings.kafka_consumer` names, kafka-python's or confluent-kafka's (topics
    created when missing)."""
    if settings.kafka_consumer == "confluent-kafka":
        from recovery.consumer.confluent_transport import ConfluentTransport

        return ConfluentTransport(settings, poll_records=POLL_RECORDS)
    from recovery.consumer.kafka import KafkaTransport

    return KafkaTransport(settings, poll_records=POLL_RECORDS)
