"""What every transport shares: closing its clients."""

from __future__ import annotations

import logging

import pytest

from recovery.consumer.transport import close_each
from recovery.exceptions import BrokerError


def test_each_client_is_closed_and_a_described_broker_failure_is_one_warning_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A producer that no longer answers fails its close with a `BrokerError` that says so: one warning line, no
    traceback, as the loop replaces it on purpose. Anything else is unexpected and keeps its traceback. Neither
    stops the next client's close."""
    closed: list[str] = []

    def wedged() -> None:
        closed.append("producer")
        raise BrokerError("Kafka producer close failed: KafkaTimeoutError: Timeout after waiting for 5 secs.")

    def broken() -> None:
        closed.append("consumer")
        raise RuntimeError("a bug")

    with caplog.at_level(logging.WARNING, logger="recovery.consumer"):
        close_each((wedged, broken, lambda: closed.append("last")))
    assert closed == ["producer", "consumer", "last"]
    said = [(r.levelname, r.getMessage(), getattr(r, "error", None), r.exc_info is not None) for r in caplog.records]
    assert said == [
        (
            "WARNING",
            "closing a Kafka client failed",
            "Kafka producer close failed: KafkaTimeoutError: Timeout after waiting for 5 secs.",
            False,
        ),
        ("ERROR", "closing a Kafka client failed", None, True),
    ]
