from __future__ import annotations

import io
import itertools
import json
import logging
import string
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import SecretStr

from recovery.config import Settings
from recovery.logs import (
    CLIENT_LOGGERS,
    REDACTED,
    JsonFormatter,
    Repeats,
    TextFormatter,
    configure_logging,
    redact_text,
)


@pytest.fixture
def record_factory() -> Callable[..., logging.LogRecord]:
    def make(
        message: str = "effect stored",
        level: int = logging.INFO,
        name: str = "recovery.consumer",
        args: tuple[Any, ...] = (),
        extra: dict[str, Any] | None = None,
        exc_info: Any = None,
    ) -> logging.LogRecord:
        logger = logging.getLogger(name)
        return logger.makeRecord(name, level, "consumer.py", 42, message, args, exc_info, extra=extra)

    return make


def formatted(record: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    value = json.loads(line)
    assert isinstance(value, dict)
    return value


class TestJsonFormatter:
    def test_base_fields(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        record = record_factory("batch of %d events", args=(12,), level=logging.WARNING)
        record.created = 1_795_000_000.25
        out = formatted(record)
        assert out == {
            "time": "2026-11-18T11:06:40.250Z",
            "level": "WARNING",
            "logger": "recovery.consumer",
            "message": "batch of 12 events",
        }
        assert datetime.fromisoformat(out["time"]).utcoffset() is not None

    def test_extra_fields_are_top_level(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        extra = {
            "event_id": "evt-1",
            "customer_id": "C-1001",
            "playbook": "repeat-caller",
            "partition": 3,
            "offset": 1207,
            "partitions": [0, 1],
        }
        out = formatted(record_factory(extra=extra))
        assert {k: out[k] for k in extra} == extra

    def test_an_extra_named_like_a_base_field_keeps_the_base_field(
        self, record_factory: Callable[..., logging.LogRecord]
    ) -> None:
        out = formatted(record_factory(extra={"time": 5, "level": "x"}))
        assert out["level"] == "INFO" and out["level_"] == "x" and out["time_"] == 5

    def test_values_json_cannot_encode_are_written_as_text(
        self, record_factory: Callable[..., logging.LogRecord]
    ) -> None:
        out = formatted(record_factory(extra={"at": datetime(2026, 11, 20), "ids": {"a"}}))
        assert out["at"] == "2026-11-20 00:00:00"
        assert out["ids"] == ["a"]

    def test_an_exception_is_one_string_field(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            record = record_factory("evaluation failed", level=logging.ERROR, exc_info=sys.exc_info())
        out = formatted(record)
        assert out["exception"].startswith("Traceback (most recent call last)")
        assert out["exception"].endswith("ZeroDivisionError: division by zero")

    def test_non_ascii_text_is_kept(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        assert formatted(record_factory("Zoë rappelée"))["message"] == "Zoë rappelée"


class TestSecrets:
    @pytest.mark.parametrize(
        "name", ["password", "kafka_sasl_password", "api_token", "TOKEN", "client_secret", "Secret-Key"]
    )
    def test_fields_named_like_secrets_are_redacted(
        self, record_factory: Callable[..., logging.LogRecord], name: str
    ) -> None:
        out = formatted(record_factory(extra={name: "hunter2"}))
        assert out[name] == "***"

    def test_secret_values_are_redacted_whatever_their_name(
        self, record_factory: Callable[..., logging.LogRecord]
    ) -> None:
        out = formatted(record_factory(extra={"credential": SecretStr("hunter2")}))
        assert out["credential"] == "***"

    def test_secrets_nested_in_a_mapping_are_redacted(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        settings = Settings(kafka_sasl_username="svc", kafka_sasl_password=SecretStr("hunter2"))
        out = formatted(record_factory(extra={"settings": settings.model_dump(), "config": settings.kafka_config()}))
        assert out["settings"]["kafka_sasl_password"] == REDACTED
        assert out["config"]["sasl_plain_password"] == REDACTED
        assert out["settings"]["kafka_sasl_username"] == "svc"

    def test_url_passwords_are_redacted_in_messages_fields_and_exceptions(
        self, record_factory: Callable[..., logging.LogRecord]
    ) -> None:
        url = "postgresql://recovery:hunter2@db:5432/recovery"
        try:
            raise ConnectionError(f"cannot connect to {url}")
        except ConnectionError:
            record = record_factory("store %s down", args=(url,), extra={"store_url": url}, exc_info=sys.exc_info())
        line = JsonFormatter().format(record)
        assert "hunter2" not in line
        out = json.loads(line)
        assert out["message"] == "store postgresql://recovery:***@db:5432/recovery down"
        assert out["store_url"] == "postgresql://recovery:***@db:5432/recovery"

    @pytest.mark.parametrize(
        ("text", "shown"),
        [
            ("sqlite:///recovery.db", "sqlite:///recovery.db"),
            ("postgresql://postgres@127.0.0.1:55432/recovery", "postgresql://postgres@127.0.0.1:55432/recovery"),
            ("postgresql://u:p%40ss@h/db and http://a:b@c", "postgresql://u:***@h/db and http://a:***@c"),
            ("at 10:15:00@noon", "at 10:15:00@noon"),
        ],
    )
    def test_redact_text(self, text: str, shown: str) -> None:
        assert redact_text(text) == shown


class TestTextFormatter:
    def test_message_then_fields(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        record = record_factory(extra={"event_id": "evt-1", "partition": 2, "token": "abc"})
        line = TextFormatter().format(record)
        assert line.endswith(' INFO recovery.consumer: effect stored event_id="evt-1" partition=2 token="***"')


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    kafka_level = logging.getLogger("kafka").level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(kafka_level)


@pytest.mark.usefixtures("restore_logging")
class TestConfigureLogging:
    def test_json_lines_at_the_level_asked_for(self) -> None:
        stream = io.StringIO()
        configure_logging("warning", json=True, stream=stream)
        logger = logging.getLogger("recovery.test")
        logger.info("not shown")
        logger.warning("shown", extra={"customer_id": "C1"})
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0])["customer_id"] == "C1"

    def test_a_second_call_replaces_the_handler(self) -> None:
        first, second = io.StringIO(), io.StringIO()
        configure_logging(logging.INFO, json=True, stream=first)
        configure_logging(logging.INFO, json=False, stream=second)
        logging.getLogger("recovery.test").info("once")
        assert first.getvalue() == ""
        assert second.getvalue().count("once") == 1
        assert not second.getvalue().startswith("{")

    def test_kafka_stays_quiet_unless_debugging(self) -> None:
        configure_logging("info", json=True, stream=io.StringIO())
        assert logging.getLogger("kafka").getEffectiveLevel() == logging.WARNING
        configure_logging("debug", json=True, stream=io.StringIO())
        assert logging.getLogger("kafka").getEffectiveLevel() == logging.DEBUG

    def test_an_unknown_level_is_refused(self) -> None:
        with pytest.raises(ValueError, match="verbose"):
            configure_logging("verbose", json=True)


class TestRepeats:
    """The Kafka clients' lines: one of a kind every 30 s, the next one saying how many were dropped."""

    @staticmethod
    def thinned(records: list[logging.LogRecord], times: list[float], every_s: float = 30.0) -> list[str]:
        clock = iter(times)
        repeats = Repeats(CLIENT_LOGGERS, every_s=every_s, clock=lambda: next(clock))
        return [
            f"{r.getMessage()} x{getattr(r, 'repeated', 0)}" for r in records if repeats.filter(r)
        ]  # fmt: skip

    def test_a_line_again_within_the_window_is_dropped_and_counted_on_the_next_let_through(
        self, record_factory: Callable[..., logging.LogRecord]
    ) -> None:
        name = "recovery.consumer.librdkafka"
        refused = "FAIL [rdkafka#consumer-2]: 127.0.0.1:%d/bootstrap: Connect failed (after %dms in state CONNECT)"
        records = [record_factory(refused, level=logging.ERROR, name=name, args=(39725, ms)) for ms in range(5)]
        assert self.thinned(records, [0.0, 1.0, 29.9, 30.0, 31.0]) == [
            "FAIL [rdkafka#consumer-2]: 127.0.0.1:39725/bootstrap: Connect failed (after 0ms in state CONNECT) x0",
            "FAIL [rdkafka#consumer-2]: 127.0.0.1:39725/bootstrap: Connect failed (after 3ms in state CONNECT) x2",
        ]

    def test_kinds_are_apart_by_logger_level_and_words(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        records = [
            record_factory("Connection lost: 111 ECONNREFUSED", level=logging.ERROR, name="kafka.net.connection"),
            record_factory("Connection lost: 111 ECONNREFUSED", level=logging.WARNING, name="kafka.net.connection"),
            record_factory("Connection lost: 111 ECONNREFUSED", level=logging.ERROR, name="kafka.cluster"),
            record_factory("Metadata refresh failed", level=logging.ERROR, name="kafka.cluster"),
        ]
        assert len(self.thinned(records, [0.0, 0.1, 0.2, 0.3])) == 4

    def test_other_loggers_pass_whatever_they_repeat(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        # The service's own lines differ in their fields, not their text ("task escalated", task_id=...).
        records = [
            record_factory("task escalated", name="recovery.lifecycle", extra={"task_id": f"tsk-{n}"}) for n in range(3)
        ] + [record_factory("kafkaesque", name="kafkaesque")] * 2
        assert len(self.thinned(records, [0.0, 0.1, 0.2, 0.3, 0.4])) == 5

    def test_the_table_of_kinds_stays_small(self, record_factory: Callable[..., logging.LogRecord]) -> None:
        words = ["".join(letters) for letters in itertools.product(string.ascii_lowercase, repeat=3)][:3000]
        records = [record_factory(f"topic {word} unknown", name="kafka.x") for word in words]
        clock = iter(n / 100 for n in range(len(records)))  # 100 kinds a second, each seen once
        repeats = Repeats(CLIENT_LOGGERS, every_s=1.0, clock=clock.__next__)
        assert all(repeats.filter(r) for r in records)
        assert 100 <= len(repeats._kinds) <= 1000


@pytest.mark.usefixtures("restore_logging")
class TestClientLinesInTheServiceLog:
    def test_repeats_are_thinned_unless_debugging(self) -> None:
        for level, expected in (("info", 1), ("debug", 3)):
            stream = io.StringIO()
            configure_logging(level, json=True, stream=stream)
            for _ in range(3):
                logging.getLogger("kafka.cluster").warning("No node available for metadata refresh - backoff/retry")
            assert stream.getvalue().count("No node available") == expected, level
