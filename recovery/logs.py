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
from collections.abc import Mapping
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


class _Handler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (and replaces on a second call)."""


def configure_logging(level: int | str = logging.INFO, json: bool = True, stream: TextIO | None = None) -> None:
    """Send every log record at `level` or above (a number, or a name such as `info`) to `stream` (stderr), as
    JSON lines when `json`, else as readable text. Replaces the handler a previous call installed; kafka-python's
    loggers stay at WARNING unless `level` is DEBUG."""
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
    root.addHandler(handler)
    root.setLevel(number)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if number <= logging.DEBUG else max(number, logging.WARNING))
