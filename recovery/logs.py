"""Log output: one JSON object per line for machines (`JsonFormatter`), or readable lines for people.

Modules log with `logger = logging.getLogger(__name__)` and structured fields in `extra` (`event_id`,
`customer_id`, `playbook`, `partition`, `offset`...); only the CLI configures handlers, through
`configure_logging`. Secrets never reach the output: a field whose name contains password, secret or token is
replaced by `***`, as is any `SecretStr`/`SecretBytes` value and the password in a URL such as
`postgresql://user:password@host/db`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from pydantic import SecretBytes, SecretStr

REDACTED: Final = "***"
SECRET_NAME = re.compile(r"password|passwd|secret|token", re.IGNORECASE)
"""A field whose name matches this is never written."""
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?=@)", re.IGNORECASE)

# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_FIELDS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_BASE_FIELDS: Final = ("time", "level", "logger", "message")
_QUIET_LOGGERS: Final = ("kafka",)
"""Chatty libraries kept at WARNING unless the level asked for is DEBUG."""
CLIENT_LOGGERS: Final = ("kafka", "recovery.consumer.librdkafka")
"""The Kafka clients' own lines (kafka-python's loggers; librdkafka's, which confluent.py logs under that name):
`Repeats` thins them out."""
REPEATS_EVERY_S: Final = 30.0
_NUMBERS = re.compile(r"\d+")


def redact_text(text: str) -> str:
    """`text` with the password of any `scheme://user:password@host` URL replaced."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)


def redact(name: str, value: Any) -> Any:
    """`value` as it may be logged under `name`: secrets replaced, containers redacted inside, other values as they
    are (JSON encoding turns what it cannot encode into its `str`)."""
    if SECRET_NAME.search(name) or isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact("", v) for v in value]
    return value


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a call passed in `extra`, redacted, in the order given."""
    return {
        name: redact(name, value)
        for name, value in record.__dict__.items()
        if name not in _RECORD_FIELDS and not name.startswith("_")
    }


def _time(created: float) -> str:
    value = datetime.fromtimestamp(created, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _default(value: Any) -> str:
    return redact_text(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time` (RFC 3339 UTC with milliseconds), `level`, `logger`, `message`, then every
    `extra` field (one named like a base field is written with a trailing `_`), then `exception` and `stack` as
    text when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for name, value in extra_fields(record).items():
            out[f"{name}_" if name in _BASE_FIELDS else name] = value
        if record.exc_info:
            out["exception"] = redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exception"] = redact_text(record.exc_text)
        if record.stack_info:
            out["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=_default)


class TextFormatter(logging.Formatter):
    """`TIME LEVEL logger: message key=value ...` for a terminal, with the same redaction as `JsonFormatter`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact_text(super().format(record))
        fields = extra_fields(record)
        if fields:
            shown = " ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=_default)}" for k, v in fields.items())
            head, sep, rest = line.partition("\n")  # after the message, before a traceback
            line = f"{head} {shown}{sep}{rest}"
        return line


class Repeats(logging.Filter):
    """Lets one line of a kind through every `every_s` seconds, for the loggers named in `loggers` (and their
    children); other records pass. A kind is a logger, a level and a text with its numbers aside. A line of a kind let
    through less than `every_s` before is dropped and counted; the next one let through carries the count in its
    field `repeated`. A broker away makes both Kafka clients log at every try to connect again: about 20 lines a
    second from librdkafka, for as long as it is away."""

    def __init__(
        self, loggers: tuple[str, ...], every_s: float = REPEATS_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.loggers = loggers
        self.every_s = every_s
        self._clock = clock
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}
        """(logger, level, text) to (when last let through, dropped since)."""
        self._lock = threading.Lock()  # kafka-python logs from threads of its own (its sender, its IO)

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == prefix or name.startswith(prefix + ".") for prefix in self.loggers):
            return True
        kind = (name, record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.every_s:
                self._kinds[kind] = (seen[0], seen[1] + 1)
                return False
            if len(self._kinds) >= 1000:  # kinds not seen for a while go, so that the table stays small
                self._kinds = {k: v for k, v in self._kinds.items() if now - v[0] < self.every_s}
            self._kinds[kind] = (now, 0)
        if seen is not None and seen[1]:
            record.repeated = seen[1]
        return True


class _Handler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (and replaces on a second call)."""


def configure_logging(level: int | str = logging.INFO, json: bool = True, stream: TextIO | None = None) -> None:
    """Send every log record at `level` or above (a number, or a name such as `info`) to `stream` (stderr), as
    JSON lines when `json`, else as readable text. Replaces the handler a previous call installed; kafka-python's
    loggers stay at WARNING, and the Kafka clients' repeated lines are thinned (`Repeats`), unless `level` is DEBUG."""
    if isinstance(level, str):
        number = logging.getLevelNamesMapping().get(level.upper())
        if number is None:
            raise ValueError(f"log level {level!r} is not one of debug, info, warning, error, critical")
    else:
        number = level
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    if number > logging.DEBUG:
        handler.addFilter(Repeats(CLIENT_LOGGERS))
    root.addHandler(handler)
    root.setLevel(number)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if number <= logging.DEBUG else max(number, logging.WARNING))
