"""The error hierarchy: one root, one subclass per area."""

from __future__ import annotations


class RecoveryError(Exception):
    """Root of every error recovery raises on purpose."""


class EventError(RecoveryError):
    """An input event is malformed or violates the envelope contract."""


class ExpressionError(RecoveryError):
    """An expression in a playbook does not parse or does not type-check.

    `offset` is the 0-based character offset inside the expression text where the problem is.
    """

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class PlaybookError(RecoveryError):
    """One or more playbooks are invalid; `problems` lists them as located messages."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Problem:
    """A located problem in a file: rendered as `FILE:LINE:COL: message` (1-based line and column)."""

    __slots__ = ("column", "file", "line", "message")

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self!s})"


class StoreError(RecoveryError):
    """The store failed to read or write."""


class BrokerError(RecoveryError):
    """The Kafka broker could not be reached, or failed or refused a request. `retriable`: trying again may succeed
    (the broker away, a timeout, a leader moving); not for a refusal for good (a message too large, a topic this
    client may not write to). `fatal`: the client itself can do nothing more (librdkafka's idempotent producer in
    its fatal state), and only a new one can try again."""

    def __init__(self, message: str, *, retriable: bool = True, fatal: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.fatal = fatal


class ReportError(RecoveryError):
    """A report that cannot be made as asked (its period, its source)."""
