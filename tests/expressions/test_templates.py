"""templates: `{{ expression }}` placeholders rendered for a frontline agent, and located template errors."""

from __future__ import annotations

from typing import Any

import pytest

from recovery.events import Occurrence
from recovery.exceptions import ExpressionError
from recovery.expressions.scope import Scope
from recovery.expressions.templates import compile_template, render_value

from .conftest import AT, ContextFactory, ScopeFactory

AT_TEXT = "2023-11-14T22:13:20Z"


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (None, "number", "unknown"),
        (None, "duration", "unknown"),
        (None, "string", "unknown"),
        (12600.0, "duration", "3h 30m"),
        (90, "duration", "1m 30s"),
        (93784.0, "duration", "1d 2h"),
        (0.0, "duration", "0s"),
        (-5400.0, "duration", "-1h 30m"),
        (AT, "time", AT_TEXT),
        (AT + 0.25, "time", "2023-11-14T22:13:20.250Z"),
        (True, "bool", "yes"),
        (False, "any", "no"),
        (7, "number", "7"),
        (3.0, "number", "3"),
        (-2.0, "number", "-2"),
        (12.5, "number", "12.5"),
        (-1.5, "number", "-1.5"),
        (2 / 3, "number", "0.67"),
        (1.25, "number", "1.25"),
        (1.10, "number", "1.1"),
        # rounded to two decimals, a float that lands on a whole number prints as one
        (2.999, "number", "3"),
        (1.001, "number", "1"),
        (0.001, "number", "0"),
        ("billing", "string", "billing"),
        ("", "string", ""),
        ([1, 2.5, None, "a", True], "list", "1, 2.5, unknown, a, yes"),
        ([], "list", ""),
        # what RFC 3339 cannot write, and what is no number, is unknown (never a crash)
        (1e300, "time", "unknown"),
        (-1e300, "time", "unknown"),
        (float("nan"), "time", "unknown"),
        (float("inf"), "duration", "unknown"),
        (float("nan"), "duration", "unknown"),
        (float("inf"), "number", "unknown"),
        (float("-inf"), "any", "unknown"),
        (float("nan"), "number", "unknown"),
        ([float("nan"), 1], "list", "unknown, 1"),
        (10**400, "number", "unknown"),
        (-(10**400), "time", "unknown"),
        (10**400, "duration", "unknown"),
        (10**300, "number", "1" + "0" * 300),
    ],
)
def test_render_value(value: Any, kind: str, text: str) -> None:
    assert render_value(value, kind) == text


class TestRender:
    @pytest.mark.parametrize(
        ("template", "text"),
        [
            ("no placeholders", "no placeholders"),
            ("", ""),
            ("{{ 1 + 1 }}", "2"),
            ("{{1+1}}{{2*2}}", "24"),
            ("Waited {{ 3h + 30m }} so far", "Waited 3h 30m so far"),
            ("Score {{ event.data.score }}/10", "Score 7/10"),
            ("Reason: {{ event.data.missing }}", "Reason: unknown"),
            ("Average {{ 7 / 2 }}", "Average 3.5"),
            ("{{ 2 / 3 }}", "0.67"),
            ("{{ 4 / 2 }}", "2"),
            ("at {{ event.occurred_at }}", f"at {AT_TEXT}"),
            ("vip: {{ customer.tier in ['gold', 'platinum'] }}", "vip: yes"),
            ("{{ customer.tier }} customer", "gold customer"),
            ("{{ customer.annual_value }}", "unknown"),
            ("tags: {{ event.data.tags }}", "tags: a, b"),
            ("{{ upper(event.data.tags) }}", "unknown"),
            ("{ single } and }} stay", "{ single } and }} stay"),
            ("line one\n{{\n  1 + 1\n}}\nline three", "line one\n2\nline three"),
            ("{{ '}' }}", "}"),
        ],
    )
    def test_text(self, template: str, text: str, scope_factory: ScopeFactory, context_factory: ContextFactory) -> None:
        compiled = compile_template(template, scope_factory("x.y"))
        ctx = context_factory({"score": 7, "tags": ["a", "b"]}, profile={"tier": "gold"})
        assert compiled.render(ctx) == text

    def test_duration_of_a_sequence(self, context_factory: ContextFactory) -> None:
        scope = Scope(event_types=frozenset({"x.y"}), first_types=frozenset({"x.y"}), has_duration=True)
        compiled = compile_template("resolved after {{ duration }} ({{ hours(duration) }} h)", scope)
        assert compiled.render(context_factory(duration=12600.0)) == "resolved after 3h 30m (3.5 h)"
        assert compiled.render(context_factory(duration=None)) == "resolved after unknown (unknown h)"

    def test_count_in_a_window(self, scope_factory: ScopeFactory, context_factory: ContextFactory) -> None:
        compiled = compile_template('{{ count("service.call", 7d) }} calls this week', scope_factory("x.y"))
        history = [Occurrence(f"h{i}", "service.call", AT - i * 86400, "cust-1", {}) for i in range(3)]
        assert compiled.render(context_factory(history=history)) == "3 calls this week"
        assert compiled.windows == frozenset({("service.call", 7 * 86400.0)})

    def test_windows_of_every_placeholder(self, scope_factory: ScopeFactory) -> None:
        compiled = compile_template(
            '{{ count("service.call", 7d) }} / {{ had("complaint.opened", 2d) }} / {{ 1 }}', scope_factory("x.y")
        )
        assert compiled.windows == frozenset({("service.call", 604800.0), ("complaint.opened", 172800.0)})
        assert compile_template("plain", scope_factory("x.y")).windows == frozenset()

    def test_parts(self, scope_factory: ScopeFactory) -> None:
        compiled = compile_template("a {{ 1 }} b {{ 2 }}", scope_factory("x.y"))
        assert [p if isinstance(p, str) else p.type for p in compiled.parts] == ["a ", "number", " b ", "number"]
        assert compiled.constant is None
        plain = compile_template("plain } text", scope_factory("x.y"))
        assert (plain.constant, plain.parts) == ("plain } text", ("plain } text",))


class TestErrors:
    @pytest.mark.parametrize(
        ("template", "message", "at"),
        [
            ("Hello {{ customer.teir }}", "unknown customer field 'teir'", "teir }}"),
            ("Hi {{ 1 + }} there", "unexpected end of expression", "}} there"),
            ("a {{ }} b", "empty expression", " }} b"),
            ("{{ x }}", "unknown name 'x'", "x }}"),
            ("ok {{ 1 }} then {{ cuont('a.b', 1d) }}", "unknown function 'cuont'", "cuont("),
            ("{{ 'a' == 1 }}", "cannot compare string with number", "== 1 }}"),
            ("line\n{{ event.data.score >\n 3h }}", "cannot compare number with duration", ">\n 3h }}"),
            (r"{{ '\q' }}", r"unknown escape '\q' in string", r"\q' }}"),
            ("{{ 2h > 5 }} and more", "cannot compare duration with number: write the number with a unit", "> 5 }}"),
            ("text {{ 1 + 1 and more", "'{{' without a closing '}}'", "{{ 1 + 1 and more"),
            ("{{ 1 }} text {{ open", "'{{' without a closing '}}'", "{{ open"),
            ("{{ {{ 1 }} }}", "unexpected character '{'", "{{ 1 }} }}"),
        ],
    )
    def test_error_offset_points_at_the_culprit(self, template: str, message: str, at: str) -> None:
        scope = Scope(event_types=frozenset({"survey.response"}))
        with pytest.raises(ExpressionError) as info:
            compile_template(template, scope)
        assert info.value.message.startswith(message)
        assert template[info.value.offset :].startswith(at), (info.value.offset, template[info.value.offset :])
