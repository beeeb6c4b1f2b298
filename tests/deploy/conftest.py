"""Kafka fixtures of the deploy tests. The session broker (``kafka_bootstrap``, ``topic_factory``, ``consumer_group``)
and the helpers live in tests/conftest.py, shared by every test; brokers of a test's own stay here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import KafkaBroker, TopicFactory, free_ports, port_accepts

__all__ = ["KafkaBroker", "TopicFactory", "port_accepts"]


@pytest.fixture
def kafka_broker_factory(kafka_libs: Path, tmp_path: Path) -> Iterator[Callable[[], KafkaBroker]]:
    """Brokers of this test's own (free ports, data dir under tmp_path), stopped when the test ends."""
    brokers: list[KafkaBroker] = []

    def make() -> KafkaBroker:
        port, controller_port = free_ports(2)
        broker = KafkaBroker(tmp_path / f"kafka-{len(brokers)}", port, controller_port)
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.stop()
