"""Context: what an expression sees at run time; its look-back windows over [at - window, at], both ends included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.events import Occurrence

from .conftest import AT, ContextFactory, ScopeFactory, compile_expression

DAY = 86400.0


def _occurrence(event_type: str, ts: float, data: dict[str, Any] | None = None) -> Occurrence:
    return Occurrence(f"h-{event_type}-{ts}", event_type, ts, "cust-1", data or {})


class TestWindow:
    """Context.window itself: the same list for the same window, nothing for a type without history."""

    def test_a_window_is_a_slice_of_the_history_in_time_order(self, context_factory: ContextFactory) -> None:
        history = [_occurrence("service.call", AT - h * 3600) for h in (30, 1, 5)]
        ctx = context_factory(history=history)
        assert [o.ts for o in ctx.window("service.call", DAY)] == [AT - 5 * 3600, AT - 3600]

    def test_a_window_is_computed_once_per_context(self, context_factory: ContextFactory) -> None:
        ctx = context_factory(history=[_occurrence("service.call", AT)])
        assert ctx.window("service.call", DAY) is ctx.window("service.call", DAY)
        assert ctx.window("service.call", DAY) is not ctx.window("service.call", 2 * DAY)

    def test_a_type_without_history_has_an_empty_window(self, context_factory: ContextFactory) -> None:
        assert context_factory().window("service.call", DAY) == []


_TYPES = ("service.call", "complaint.opened")


class TestWindows:
    """count() and had() look back over [at - window, at], both ends included."""

    @pytest.mark.parametrize(
        ("offset", "counted"),
        [
            (0.0, True),
            (1e-6, False),
            (-DAY, True),
            (-7 * DAY, True),
            (-7 * DAY + 1e-6, True),
            (-7 * DAY - 1e-6, False),
            (-8 * DAY, False),
        ],
        ids=["at", "after-at", "inside", "start", "after-start", "before-start", "long-before"],
    )
    def test_boundaries(
        self, offset: float, counted: bool, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        history = [_occurrence("service.call", AT + offset)]
        ctx = context_factory(history=history)
        scope = scope_factory("x.y")
        assert compile_expression('count("service.call", 7d)', scope).fn(ctx) == int(counted)
        assert compile_expression('had("service.call", 7d)', scope).fn(ctx) is counted

    def test_other_types_are_not_counted(self, scope_factory: ScopeFactory, context_factory: ContextFactory) -> None:
        history = [_occurrence("complaint.opened", AT), _occurrence("service.calls", AT)]
        ctx = context_factory(history=history)
        assert compile_expression('count("service.call", 7d)', scope_factory("x.y")).fn(ctx) == 0
        assert compile_expression('had("complaint.opened", 1s)', scope_factory("x.y")).fn(ctx) is True

    def test_windows_of_one_context_differ_by_length(
        self, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        history = [_occurrence("service.call", AT - h * 3600) for h in (1, 5, 30)]
        ctx = context_factory(history=history)
        text = '[count("service.call", 2h), count("service.call", 1d), count("service.call", 2d)]'
        assert compile_expression(text, scope_factory("x.y")).fn(ctx) == [1, 2, 3]

    @given(
        offsets=st.lists(
            st.tuples(st.sampled_from(_TYPES), st.floats(min_value=-30 * DAY, max_value=2 * DAY)), max_size=30
        ),
        window_s=st.integers(min_value=1, max_value=30 * 86400),
    )
    def test_count_matches_a_brute_force_filter(
        self,
        offsets: list[tuple[str, float]],
        window_s: int,
        scope_factory: ScopeFactory,
        context_factory: ContextFactory,
    ) -> None:
        history = sorted((_occurrence(t, AT + off) for t, off in offsets), key=lambda o: o.ts)  # as the engine keeps it
        ctx = context_factory(history=history)
        expected = sum(1 for o in history if o.type == "service.call" and AT - window_s <= o.ts <= AT)
        scope = scope_factory("x.y")
        assert compile_expression(f'count("service.call", {window_s}s)', scope).fn(ctx) == expected
        assert compile_expression(f'had("service.call", {window_s}s)', scope).fn(ctx) is (expected > 0)

    @given(
        window_s=st.integers(min_value=1, max_value=365 * 86400),
        at=st.floats(min_value=0, max_value=4e9),
    )
    def test_exact_ends(
        self, window_s: int, at: float, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        start = at - window_s
        history = [
            _occurrence("service.call", start),
            _occurrence("service.call", at),
            _occurrence("service.call", start - max(1e-6, abs(start) * 1e-15)),
            _occurrence("service.call", at + max(1e-6, abs(at) * 1e-15)),
        ]
        ctx = context_factory(history=history, at=at)
        assert compile_expression(f'count("service.call", {window_s}s)', scope_factory("x.y")).fn(ctx) == 2
