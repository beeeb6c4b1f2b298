"""The event catalog: which event types playbooks may name, and the `data` fields of each, with their types.

The standard types (`events.STANDARD_TYPES`) are built in; a rules folder declares its own in `events.yaml`
(`playbooks/loader.py` reads it). Validation checks every type a playbook names and every `data` field it reads
against the catalog, so a misspelt `servcie.call` or `event.data.invoice_idd` is a located error with a suggestion.

Field types are the expression language's: string, number, bool, list, any.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from recovery.events import STANDARD_TYPES, data_fields

FIELD_TYPES: Final = ("string", "number", "bool", "list", "any")
"""The types a catalog may give a data field."""

_NOT_STRINGS: dict[str, dict[str, str]] = {
    "customer.updated": {"annual_value": "number", "tier": "string"},
    "customer.joined": {"annual_value": "number"},
    "customer.renewed": {"annual_value": "number"},
    "customer.lost": {"annual_value": "number"},
    "survey.response": {"score": "number"},
    "outage.started": {"customer_ids": "list"},
    "outage.resolved": {"customer_ids": "list"},
}
"""The standard types' data fields that are not strings."""

_DOCUMENTED: dict[str, dict[str, str]] = {
    "payment.failed": {"amount": "number", "method": "string", "attempt": "number"},
    "payment.succeeded": {"amount": "number", "method": "string", "attempt": "number"},
    "cancellation.requested": {"channel": "string", "reason": "string"},
    "survey.response": {"channel": "string"},
}
"""Fields of standard types that events are not checked for (optional, any value) but playbooks may read."""


def _standard() -> dict[str, dict[str, str]]:
    types: dict[str, dict[str, str]] = {}
    for name in STANDARD_TYPES:
        fields = data_fields(name) or frozenset()
        found = {f: _NOT_STRINGS.get(name, {}).get(f, "string") for f in fields} | _DOCUMENTED.get(name, {})
        types[name] = dict(sorted(found.items()))
    return types


STANDARD_FIELDS: Final[Mapping[str, Mapping[str, str]]] = _standard()
"""Every standard type's data fields and their types."""


@dataclass(frozen=True)
class EventType:
    """A declared event type: its data fields by name, with their types, and a description for people."""

    name: str
    fields: Mapping[str, str]
    description: str = ""


@dataclass(frozen=True)
class EventCatalog:
    """The standard event types and the ones a rules folder declares (`custom`, by name); `file` is where they were
    declared (None: the standard types only)."""

    custom: Mapping[str, EventType] = field(default_factory=dict)
    file: str | None = None

    def known(self, event_type: str) -> bool:
        return event_type in STANDARD_FIELDS or event_type in self.custom

    def types(self) -> list[str]:
        """Every type the catalog knows, sorted."""
        return sorted({*STANDARD_FIELDS, *self.custom})

    def fields(self, event_type: str) -> Mapping[str, str] | None:
        """The data fields of a known type and their types; None for an unknown type."""
        found = STANDARD_FIELDS.get(event_type)
        if found is not None:
            return found
        declared = self.custom.get(event_type)
        return declared.fields if declared is not None else None

    def unknown_type(self, event_type: str) -> str:
        """Why `event_type` cannot be named: the message of a validation problem, with the closest known type."""
        close = difflib.get_close_matches(event_type, self.types(), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f"the standard types or {self.file}" if self.file else "the standard types (declare it in events.yaml)"
        return f"unknown event type '{event_type}'{hint}: not in {where}"


STANDARD: Final = EventCatalog()
"""The standard types alone."""
