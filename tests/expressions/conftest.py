"""Shared helpers for the expression tests: a scope and an evaluation context with defaults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from recovery.events import Occurrence
from recovery.expressions.context import Context
from recovery.expressions.scope import Scope

AT = 1_700_000_000.0
"""The evaluation instant of the default context (epoch seconds)."""

ContextFactory = Callable[..., Context]
ScopeFactory = Callable[..., Scope]


def make_scope(*event_types: str, **kwargs: Any) -> Scope:
    return Scope(event_types=frozenset(event_types or ("x.y",)), **kwargs)


def make_context(
    data: dict[str, Any] | None = None,
    *,
    event_type: str = "x.y",
    profile: dict[str, Any] | None = None,
    at: float = AT,
    history: Sequence[Occurrence] = (),
    first: Occurrence | None = None,
    duration: float | None = None,
    customer_id: str = "cust-1",
) -> Context:
    event = Occurrence("evt-1", event_type, at, customer_id, dict(data or {}))
    return Context(
        event=event,
        customer_id=customer_id,
        profile=dict(profile or {}),
        at=at,
        history=history,
        first=first,
        duration=duration,
    )


@pytest.fixture(scope="session")
def scope_factory() -> ScopeFactory:
    """`scope_factory("service.call", has_duration=True)`; with no types, the free-form type `x.y`."""
    return make_scope


@pytest.fixture(scope="session")
def context_factory() -> ContextFactory:
    """`context_factory({"reason": "billing"}, event_type="service.call", profile={"tier": "gold"})`."""
    return make_context
