"""The outbox's producer on confluent-kafka (librdkafka, in C), chosen with `kafka_producer: confluent-kafka`
(RECOVERY_KAFKA_PRODUCER); kafka-python's stays the default. The loop's consumer on it is confluent_transport.py
(`kafka_consumer`); this module also has what both share: the broker settings and errors.

Why it exists: kafka-python's `send` is pure Python (its partitioner, batch accumulator and a wake-up of its sender
thread per new batch), about 46 µs per message on the 2-core bench machine: 4.6 s for the 100,000 credits of an
outage over a region of 100,000 customers, on the loop's thread. librdkafka's `produce` takes the message into
its own queue and threads: 0.6 s for the same 100,000, delivered (docs/operations.md, "Capacity").

What stays the same as with kafka-python's producer:
- Keys go to the partition Java's client (and kafka-python's) gives them: librdkafka's default partitioner is
  another hash, so `murmur2_random` is set. A hand-over to the customer's own partition of the events topic
  depends on it.
- acks=all; a message is answered within the outbox's wait (delivered, or given up after `DELIVERY_TIMEOUT_S`), and
  one given up on is tried again by the outbox (with the same content and effect id), never lost.
- A refusal for good (too large, an unknown or forbidden topic) parks the message; anything else is tried again.
- The producer is idempotent: the broker drops a batch sent again after its answer was lost. librdkafka's fatal
  state (an error its idempotence cannot recover from) fails every send after it; the loop then replaces the
  clients, and the next producer sends what this one held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from recovery.config import ConfigError, Settings
from recovery.consumer.transport import describe
from recovery.exceptions import BrokerError
from recovery.outbox import DELIVERY_TIMEOUT_S

try:
    from confluent_kafka import KafkaError, KafkaException, Producer

    INSTALLED = True
except ImportError:  # an optional dependency: said when it is asked for (ConfluentOutput)
    INSTALLED = False

librdkafka_logger = logging.getLogger("recovery.consumer.librdkafka")
"""librdkafka's own lines (recovery.logs.CLIENT_LOGGERS: the service's log thins out their repeats)."""

LINGER_MS = 5
CLOSE_TIMEOUT_S = 5.0
"""Bound on closing: sending what the producer holds (as kafka.CLOSE_TIMEOUT_S)."""
MAX_MESSAGE_BYTES = 1024 * 1024
QUEUE_FULL_WAIT_S = 10.0
"""How long a send waits for room in librdkafka's queue (100,000 messages) before it fails, to be tried again."""


def _refused_for_good() -> frozenset[int]:
    if not INSTALLED:
        return frozenset()
    names = (
        "MSG_SIZE_TOO_LARGE",
        "RECORD_LIST_TOO_LARGE",
        "INVALID_RECORD",
        "CORRUPT_MESSAGE",
        "INVALID_TIMESTAMP",
        "POLICY_VIOLATION",
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        "TOPIC_EXCEPTION",
        "TOPIC_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "_INVALID_ARG",
        "_UNKNOWN_TOPIC",
    )
    return frozenset(getattr(KafkaError, name) for name in names if hasattr(KafkaError, name))


REFUSED_FOR_GOOD = _refused_for_good()
"""librdkafka's error codes that sending the same message again cannot change (as kafka.REFUSED_FOR_GOOD)."""


def client_config(settings: Settings, setting: str) -> dict[str, Any]:
    """librdkafka's broker and security settings of `settings`, for the client that `setting` chose."""
    if settings.kafka_sasl_mechanism == "OAUTHBEARER":
        raise ConfigError(
            f"setting '{setting}' (RECOVERY_{setting.upper()}) has value 'confluent-kafka': SASL OAUTHBEARER is not "
            "supported with it; use kafka-python's"
        )
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol.lower(),
        "logger": librdkafka_logger,  # its log lines through the service's logging (served in poll and flush)
    }
    if settings.kafka_sasl_mechanism is not None:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username is not None:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile is not None:
        config["ssl.ca.location"] = settings.kafka_ssl_cafile
    return config


def producer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's settings for the outbox producer: the broker and security settings of `settings`."""
    return {
        **client_config(settings, "kafka_producer"),
        "acks": "all",
        "linger.ms": LINGER_MS,
        "partitioner": "murmur2_random",
        "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000),  # answered within the outbox's wait
        # A retry after a lost answer is not written twice (kafka-python's producer is idempotent by default too).
        # The few errors it cannot recover from leave the producer in a fatal state: the loop replaces it.
        "enable.idempotence": True,
        # kafka-python's limit (its max_request_size), the broker's default about the same: librdkafka's own is
        # 1,000,000 bytes, and a message between the two (a DLQ copy of a large event) was parked with this producer.
        "message.max.bytes": MAX_MESSAGE_BYTES,
    }


def not_installed(setting: str) -> ConfigError:
    return ConfigError(
        f"setting '{setting}' (RECOVERY_{setting.upper()}) has value 'confluent-kafka', but the package "
        "confluent-kafka is not installed: pip install 'recovery[confluent]'"
    )


def broker_error(what: str, error: Any) -> BrokerError:
    """A librdkafka error (`KafkaError`) as a `BrokerError`, retriable unless it is a refusal for good, and fatal when
    the client can do nothing more (a send to a producer in that state fails with `_FATAL`): a fatal error is the
    producer's, never a reason to park the message."""
    fatal = error.fatal() or error.code() == KafkaError._FATAL
    return BrokerError(
        f"Kafka {what} failed: {error.name()}: {error.str()}",
        retriable=fatal or error.code() not in REFUSED_FOR_GOOD,
        fatal=fatal,
    )


class Answer:
    """A request librdkafka answers through a callback (`settle`, served by the client's `poll`)."""

    __slots__ = ("_what", "error", "is_done")

    def __init__(self, what: str) -> None:
        self._what = what
        self.is_done = False
        self.error: BrokerError | None = None

    def settle(self, error: Any, _what: Any) -> None:
        """librdkafka's report: a delivery report (the message), or an offset commit's (the partitions)."""
        self.is_done = True
        if error is not None:
            self.error = broker_error(self._what, error)

    @property
    def exception(self) -> BrokerError | None:
        return self.error

    def failed(self) -> bool:
        return self.error is not None


class ConfluentAck(Answer):
    """A message handed to librdkafka, as an `Ack`: settled by its delivery report (served in `flush` and `send`)."""

    __slots__ = ("_output",)

    def __init__(self, output: ConfluentOutput, what: str) -> None:
        super().__init__(what)
        self._output = output

    def settle(self, error: Any, what: Any) -> None:
        super().settle(error, what)
        if error is None:
            self._output.brokers_down = False  # a broker took it

    def get(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_done:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise BrokerError(f"Kafka {self._what} failed: no answer within {timeout:g} s", retriable=True)
            self._output.serve(min(left, 1.0))
        if self.error is not None:
            raise self.error


class ConfluentOutput:
    """A confluent-kafka producer as the outbox's `Producer`. One thread uses it (the service loop's)."""

    def __init__(self, settings: Settings) -> None:
        if not INSTALLED:
            raise not_installed("kafka_producer")
        self.brokers_down = False
        """librdkafka said all its broker connections were down, and no message was delivered since."""
        try:
            self._producer = Producer({**producer_config(settings), "error_cb": self._error})
        except KafkaException as exc:
            raise BrokerError(f"Kafka producer start failed: {describe(exc)}", retriable=False) from exc

    def _error(self, error: Any) -> None:
        """librdkafka's client errors, served inside its flush and poll (with a callback, librdkafka no longer logs
        them itself: logged here, among its own lines, whose repeats the service's log thins out)."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.brokers_down = True
        librdkafka_logger.warning("Kafka producer error", extra={"error": f"{error.name()}: {error.str()}"})

    def connected(self) -> bool | None:
        """False while it holds messages and librdkafka said all its broker connections were down, none delivered
        since; otherwise None (cannot tell: librdkafka connects to a broker when it has something for it)."""
        return False if self.brokers_down and len(self._producer) else None

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> ConfluentAck:
        what = f"send to {topic}"
        ack = ConfluentAck(self, what)
        give_up = time.monotonic() + QUEUE_FULL_WAIT_S
        while True:
            try:
                self._producer.produce(topic, value, key, headers=list(headers) or None, on_delivery=ack.settle)
                return ack
            except BufferError:  # librdkafka's queue is full: serve delivery reports, which make room
                if time.monotonic() > give_up:
                    raise BrokerError(
                        f"Kafka {what} failed: the producer's queue stayed full", retriable=True
                    ) from None
                self.serve(0.1)
            except KafkaException as exc:  # refused before it left (too large for the producer, say)
                raise broker_error(what, exc.args[0]) from exc

    def serve(self, timeout_s: float) -> None:
        """Serve the delivery reports that came (waiting up to `timeout_s` for one)."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            raise BrokerError(
                f"Kafka flush failed: {left} message(s) not answered within {timeout_s:g} s", retriable=True
            )

    def close(self) -> None:
        self._producer.flush(CLOSE_TIMEOUT_S)
