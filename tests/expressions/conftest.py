"""Shared helpers for the expression tests: a scope, an evaluation context with defaults, and an expression
checked and compiled from its text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from recovery.events import Occurrence
from recovery.expressions.compiler import Compiler
from recovery.expressions.context import Context
from recovery.expressions.parser import parse
from recovery.expressions.scope import Compiled, Scope

AT = 1_700_000_000.0
"""The evaluation instant of the default context (epoch seconds)."""

ContextFactory = Callable[..., Context]
ScopeFactory = Callable[..., Scope]


def make_scope(*event_types: str, **kwargs: Any) -> Scope:
    return Scope(event_types=frozenset(event_types or ("x.y",)), **kwargs)


def compile_expression(text: str, scope: Scope) -> Compiled:
    """Parse and check `text` in `scope`, as the playbook compiler does each expression of a playbook."""
    return Compiler(scope).compile(parse(text))


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
    """A context at `at` whose event has `data`; `history` (any types, any order) is split per type in time order,
    as the engine keeps it."""
    event = Occurrence("evt-1", event_type, at, customer_id, dict(data or {}))
    by_type: dict[str, list[Occurrence]] = {}
    for occ in sorted(history, key=lambda o: o.ts):
        by_type.setdefault(occ.type, []).append(occ)
    return Context(
        event=event,
        customer_id=customer_id,
        profile=dict(profile or {}),
        at=at,
        by_type=by_type,
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
