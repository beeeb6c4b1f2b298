"""compiler: static types and located errors at load time; evaluation and null rules. Look-back windows are in
test_context.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.events import Occurrence
from recovery.exceptions import ExpressionError
from recovery.expressions.compiler import Compiler
from recovery.expressions.parser import parse
from recovery.expressions.scope import Compiled, Scope

from .conftest import AT, ContextFactory, ScopeFactory, compile_expression

DAY = 86400.0
CUSTOMER_FIELDS = "id, tier, segment, region, annual_value, name, email, phone, language"
COUNT_USAGE = (
    'an event type, a window and a condition on `it`, e.g. count("service.call", 7d) or '
    'count("service.call", 7d, it.data.reason == "billing")'
)
FUNCTIONS = (
    "count, had, sum, distinct, values, last, min, max, floor, ceil, round, abs, if, coalesce, lower, upper, seconds, "
    "minutes, hours, days"
)
HINT = ": write the number with a unit, e.g. 2h or 7d, or convert with hours(...)"


# ---------------------------------------------------------------------------------------------- evaluation


class TestEvaluate:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            # arithmetic on numbers, durations, times and strings
            ("1 + 2 * 3", 7),
            ("(1 + 2) * 3", 9),
            ("7 / 2", 3.5),
            ("10 - 4 - 3", 3),
            ("-(2 + 3)", -5),
            ("1 / 0", None),
            ("2h + 30m", 9000.0),
            ("2h - 30m", 5400.0),
            ("2h * 2", 14400.0),
            ("3 * 1h", 10800.0),
            ("2h / 4", 1800.0),
            ("3h / 1h", 3.0),
            ("2h / 0s", None),
            ("event.occurred_at + 1h", AT + 3600),
            ("event.occurred_at - 1d", AT - DAY),
            ("event.occurred_at - event.occurred_at", 0.0),
            ("'ab' + 'cd'", "abcd"),
            # comparisons
            ("2h > 90m", True),
            ("2h == 120m", True),
            ("1 == 1.0", True),
            ("1 != 2", True),
            ("3 <= 3", True),
            ("3 < 3", False),
            ("'a' < 'b'", True),
            ("'b' >= 'a'", True),
            ("true == true", True),
            ("true != false", True),
            ("null == null", True),
            ("1 != null", True),
            ("[1, 2] == [1, 2]", True),
            ("event.occurred_at > event.occurred_at - 1s", True),
            # membership
            ("'gold' in ['gold', 'platinum']", True),
            ("'silver' in ['gold', 'platinum']", False),
            ("3 not in [1, 2]", True),
            ("2 not in [1, 2]", False),
            ("'old' in 'gold'", True),
            ("1 in 'gold'", False),
            ("1 in []", False),
            ("null in [1, null]", True),
            # logic
            ("true and false", False),
            ("true or false", True),
            ("not false", True),
            ("not (1 < 2)", False),
            ("false or 1 < 2 and 'a' == 'a'", True),
            # functions
            ("min(3, 1, 2)", 1),
            ("max(1h, 3h, 2h)", 10800.0),
            ("min(null, 2)", 2),
            ("max(null)", None),
            ("floor(2.7)", 2),
            ("floor(-2.5)", -3),
            ("ceil(2.1)", 3),
            ("abs(-3)", 3),
            ("abs(-2h)", 7200.0),
            ("round(2.4)", 2.0),
            ("round(2.6)", 3.0),
            ("round(3.14159, 2)", 3.14),
            ("round(1234.5, -2)", 1200.0),
            ("seconds(2m)", 120.0),
            ("minutes(2h)", 120.0),
            ("hours(90m)", 1.5),
            ("days(36h)", 1.5),
            ("if(true, 1, 2)", 1),
            ("if(false, 1, 2)", 2),
            ("if(null, 1, 2)", 2),
            ("coalesce(null, null, 3)", 3),
            ("coalesce(null)", None),
            ("lower('AbC')", "abc"),
            ("upper('AbC')", "ABC"),
            ("lower(null)", None),
            # names
            ("customer.id", "cust-1"),
            ("event.id", "evt-1"),
            ("event.type", "x.y"),
            ("event.customer_id", "cust-1"),
            ("event.occurred_at", AT),
            ("event.data.reason", "router"),
            ("event.data.nested.level", 2),
            ("event.data.nested.missing", None),
            ("event.data.reason.deeper", None),
            ("[1, event.data.nested.level]", [1, 2]),
        ],
    )
    def test_value(self, text: str, value: Any, scope_factory: ScopeFactory, context_factory: ContextFactory) -> None:
        compiled = compile_expression(text, scope_factory("x.y"))
        ctx = context_factory({"reason": "router", "nested": {"level": 2}})
        got = compiled.fn(ctx)
        assert got == value
        assert type(got) is type(value) or isinstance(value, float)

    @pytest.mark.parametrize(
        ("text", "profile", "value"),
        [
            ("customer.tier", {}, "standard"),
            ("customer.tier", {"tier": None}, "standard"),
            ("customer.tier", {"tier": "gold"}, "gold"),
            ("customer.tier in ['gold', 'platinum']", {"tier": "platinum"}, True),
            ("customer.annual_value >= 1000", {"annual_value": 1500.0}, True),
            ("customer.annual_value >= 1000", {}, False),
            ("customer.segment == null", {}, True),
            ("customer.region", {"region": "north"}, "north"),
            ("customer.language == 'fr'", {"language": "fr"}, True),
        ],
    )
    def test_customer(
        self,
        text: str,
        profile: dict[str, Any],
        value: Any,
        scope_factory: ScopeFactory,
        context_factory: ContextFactory,
    ) -> None:
        compiled = compile_expression(text, scope_factory("x.y"))
        assert compiled.fn(context_factory(profile=profile)) == value

    def test_sequence_names(self, context_factory: ContextFactory) -> None:
        scope = Scope(
            event_types=frozenset({"complaint.resolved"}),
            first_types=frozenset({"complaint.opened"}),
            has_duration=True,
        )
        first = Occurrence("evt-0", "complaint.opened", AT - 7200, "cust-1", {"complaint_id": "K1"})
        ctx = context_factory({"complaint_id": "K1"}, event_type="complaint.resolved", first=first, duration=7200.0)
        cases = {
            "first.data.complaint_id == event.data.complaint_id": True,
            "first.type": "complaint.opened",
            "first.id": "evt-0",
            "event.occurred_at - first.occurred_at": 7200.0,
            "duration > 1h": True,
            "hours(duration)": 2.0,
        }
        got = {text: compile_expression(text, scope).fn(ctx) for text in cases}
        assert got == cases
        no_first = context_factory(event_type="complaint.resolved")
        assert compile_expression("first.data.complaint_id", scope).fn(no_first) is None
        assert compile_expression("first.occurred_at", scope).fn(no_first) is None

    def test_let_is_evaluated_once_per_context(
        self, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        calls: list[int] = []

        def counted(ctx: Any) -> int:
            calls.append(1)
            return 2

        let = Compiled(counted, "number", parse("0"), windows=frozenset({("service.call", DAY)}))
        scope = scope_factory("x.y", lets={"n": let})
        compiled = compile_expression("n * n + n", scope)
        assert compiled.type == "number"
        assert compiled.windows == frozenset({("service.call", DAY)})
        assert compiled.fn(context_factory()) == 6
        assert len(calls) == 1
        assert compiled.fn(context_factory()) == 6
        assert len(calls) == 2

    def test_windows_of_an_expression(self, scope_factory: ScopeFactory) -> None:
        text = 'count("service.call", 7d) > 1 and had("complaint.opened", 48h) or count("service.call", 7d) > 5'
        compiled = compile_expression(text, scope_factory("x.y"))
        assert compiled.windows == frozenset({("service.call", 7 * DAY), ("complaint.opened", 2 * DAY)})
        assert compile_expression("1 + 1", scope_factory("x.y")).windows == frozenset()

    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("1", "number"),
            ("'a'", "string"),
            ("true", "bool"),
            ("null", "null"),
            ("2h", "duration"),
            ("[1]", "list"),
            ("event.occurred_at", "time"),
            ("event.occurred_at - event.occurred_at", "duration"),
            ("event.data.x", "any"),
            ("event.data.x + 1", "number"),
            ("event.data.x + 2h", "duration"),
            ("event.data.x * 2h", "any"),
            ("event.data.x + event.occurred_at", "time"),
            ("event.data.x - event.occurred_at", "any"),
            ("'a' + event.data.x", "string"),
            ("event.data.x + event.data.y", "any"),
            ("null + 1", "null"),
            ("-event.data.x", "any"),
            ("customer.annual_value", "number"),
            ("customer.tier", "string"),
            ('count("service.call", 7d)', "number"),
            ('had("service.call", 7d)', "bool"),
            ("if(true, 1, null)", "number"),
            ("if(true, 1, 'a')", "any"),
            ("coalesce(null, 'a')", "string"),
            ("min(event.data.x, 2h)", "duration"),
            ("max(event.data.x)", "any"),
            ("hours(2h)", "number"),
            ("floor(2h)", "duration"),
            ("round(event.data.x)", "number"),
            ("lower(event.data.x)", "string"),
            ("event.data.x in [1]", "bool"),
        ],
    )
    def test_static_type(self, text: str, kind: str, scope_factory: ScopeFactory) -> None:
        assert compile_expression(text, scope_factory("x.y")).type == kind

    @pytest.mark.parametrize(
        ("types", "text", "kind"),
        [
            (("survey.response",), "event.data.score", "number"),
            (("customer.updated",), "event.data.annual_value", "number"),
            (("customer.updated",), "event.data.segment", "string"),
            (("outage.started",), "event.data.customer_ids", "list"),
            (("service.call",), "event.data.reason", "string"),
            (("service.call", "complaint.opened"), "event.data.reason", "string"),
            (("service.call", "complaint.opened"), "event.data.complaint_id", "string"),
            (("service.call", "x.y"), "event.data.reason", "any"),
            (("outage.started",), "event.data.customer_ids.x", "any"),
        ],
    )
    def test_static_type_of_standard_data(
        self, types: tuple[str, ...], text: str, kind: str, scope_factory: ScopeFactory
    ) -> None:
        assert compile_expression(text, scope_factory(*types)).type == kind

    def test_constants_are_marked(self, scope_factory: ScopeFactory) -> None:
        compiler = Compiler(scope_factory("x.y"))
        assert compiler.compile(parse("[1, 'a']")).constant
        assert compiler.compile(parse("2h")).constant
        assert not compiler.compile(parse("[1, event.data.x]")).constant


# ---------------------------------------------------------------------------------------------- errors


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "message", "offset"),
        [
            # durations against bare numbers get a hint
            ("2h > 5", "cannot compare duration with number" + HINT, 3),
            ("5 < 2h", "cannot compare number with duration" + HINT, 2),
            ("duration >= 30", "cannot compare duration with number" + HINT, 9),
            ("event.occurred_at > 5", "cannot compare time with number", 18),
            ("1 == 'a'", "cannot compare number with string", 2),
            ("true < false", "'<' cannot order bool values", 5),
            ("[1] < [2]", "'<' cannot order list values", 4),
            ("event.data.x >= true", "'>=' cannot order bool values", 13),
            # unknown names
            ("foo", "unknown name 'foo'", 0),
            ("evnt.type", "unknown name 'evnt' (did you mean 'event'?)", 0),
            ("first.type", "unknown name 'first' ('first' exists only for sequence and absence triggers)", 0),
            ("duraton", "unknown name 'duraton' (did you mean 'duration'?)", 0),
            ("customer", "write a customer field as customer.FIELD, e.g. customer.tier", 8),
            ("customer.tier.x", "write a customer field as customer.FIELD, e.g. customer.tier", 8),
            (
                "customer.teir",
                f"unknown customer field 'teir' (did you mean 'tier'?); known fields: {CUSTOMER_FIELDS}",
                9,
            ),
            (
                "true and customer.teir == 'x'",
                f"unknown customer field 'teir' (did you mean 'tier'?); known fields: {CUSTOMER_FIELDS}",
                18,
            ),
            ("customer.color", f"unknown customer field 'color'; known fields: {CUSTOMER_FIELDS}", 9),
            ("event", "write a field of 'event', e.g. event.data.FIELD or event.type", 0),
            ("event.data", "write a data field as event.data.FIELD", 0),
            (
                "event.tpye",
                "unknown field 'tpye' of 'event' (did you mean 'type'?); "
                "known fields: id, type, occurred_at, customer_id, data.FIELD",
                6,
            ),
            ("event.type.x", "'event.type' has no fields", 0),
            # functions
            (
                "cuont('a.b', 7d)",
                f"unknown function 'cuont' (did you mean 'count'?); functions: {FUNCTIONS}",
                0,
            ),
            ("1 + sqrt(4)", f"unknown function 'sqrt'; functions: {FUNCTIONS}", 4),
            ("floor(1, 2)", "floor() takes 1 argument(s), got 2", 0),
            ("if(true, 1)", "if() takes 3 argument(s), got 2", 0),
            ("round()", "round() takes 1 to 2 argument(s), got 0", 0),
            ("round(1, 2, 3)", "round() takes 1 to 2 argument(s), got 3", 0),
            ("min()", "min() takes 1 or more argument(s), got 0", 0),
            ("coalesce()", "coalesce() takes 1 or more argument(s), got 0", 0),
            ("hours(2h, 1h)", "hours() takes 1 argument(s), got 2", 0),
            ("lower()", "lower() takes 1 argument(s), got 0", 0),
            ("min(1, 2h)", "min() needs numbers, or durations, of one kind", 0),
            ("max('a')", "max() needs numbers, or durations, of one kind", 0),
            ("hours(5)", "hours() needs a duration, e.g. hours(duration), got number", 6),
            ("lower(1)", "lower() needs a string, got number", 6),
            ("round('a')", "round() needs a number, got string", 6),
            ("round(1, 'a')", "round() takes a number of digits, got string", 9),
            ("floor('a')", "floor() needs a number, got string", 6),
            ("if(1, 2, 3)", "if() needs a condition first, got number", 3),
            # look-back windows take literals
            ("count(event.type, 7d)", 'count() needs the event type as a quoted string, e.g. "service.call"', 6),
            ("had(1, 7d)", 'had() needs the event type as a quoted string, e.g. "service.call"', 4),
            ("count('service.call', event.data.w)", "count() needs the window as a duration, e.g. 7d or 48h", 22),
            ("count('service.call', 7)", "count() needs the window as a duration, e.g. 7d or 48h", 22),
            ("count('service.call', 1h + 1h)", "count() needs the window as a duration, e.g. 7d or 48h", 25),
            ("count('service.call')", f"count() takes {COUNT_USAGE}", 0),
            (
                "had()",
                'had() takes an event type, a window and a condition on `it`, e.g. had("complaint.opened", 14d)',
                0,
            ),
            ("count('service.call', 7d, 1)", "count() needs a condition on `it` as its third argument, got number", 26),
            ("count('service.call', 7d, true, 1)", f"count() takes {COUNT_USAGE}", 0),
            (
                "count('Service Call', 7d)",
                "'Service Call' is not an event type (dotted lowercase, e.g. service.call)",
                6,
            ),
            ("count('service.call', 0s)", "count() needs a window longer than zero", 22),
            ("count('service.call', -1h)", "count() needs a window longer than zero", 22),
            # operators
            ("not 1", "'not' needs a true/false value, got number", 4),
            ("1 and true", "'and' needs true/false values on both sides, got number", 0),
            ("true or 'a'", "'or' needs true/false values on both sides, got string", 8),
            ("-'a'", "'-' needs a number or a duration, got string", 1),
            ("1 in 2", "'in' needs a list or a string on its right, got number", 5),
            ("'a' - 'b'", "cannot apply '-' to string and string", 4),
            ("'a' * 2", "cannot apply '*' to string and number", 4),
            ("event.occurred_at * 2", "cannot apply '*' to time and number", 18),
            ("2h - event.occurred_at", "cannot apply '-' to duration and time", 3),
            ("event.data.x + [1]", "cannot apply '+' to any and list", 13),
            ("event.data.x + true", "cannot apply '+' to any and bool", 13),
            ("event.data.x - 'a'", "cannot apply '-' to any and string", 13),
        ],
    )
    def test_error(self, text: str, message: str, offset: int) -> None:
        scope = Scope(event_types=frozenset({"x.y"}), has_duration=True)
        with pytest.raises(ExpressionError) as info:
            compile_expression(text, scope)
        assert (info.value.message, info.value.offset) == (message, offset)

    @pytest.mark.parametrize(
        ("types", "text", "message", "offset"),
        [
            (
                ("service.call",),
                "event.data.reasn == 'x'",
                "unknown data field 'reasn' for service.call (did you mean 'reason'?); known fields: reason",
                11,
            ),
            (
                ("survey.response",),
                "event.data.score > 3h",
                "cannot compare number with duration" + HINT,
                17,
            ),
            (("service.call",), "event.data.reason > 3", "cannot compare string with number", 18),
            (("outage.started",), "event.data.customer_ids == 1", "cannot compare list with number", 24),
            (
                ("payment.failed",),
                "event.data.x",
                "unknown data field 'x' for payment.failed; known fields: amount, attempt, method",
                11,
            ),
            (
                ("payment.failed", "service.call"),
                "event.data.x",
                "unknown data field 'x' for payment.failed/service.call; known fields: amount, attempt, method, reason",
                11,
            ),
        ],
    )
    def test_error_for_standard_data(self, types: tuple[str, ...], text: str, message: str, offset: int) -> None:
        with pytest.raises(ExpressionError) as info:
            compile_expression(text, Scope(event_types=frozenset(types)))
        assert (info.value.message, info.value.offset) == (message, offset)

    def test_unknown_type_keeps_data_free_form(self) -> None:
        compiled = compile_expression("event.data.anything.at.all == 1", Scope(event_types=frozenset({"x.y"})))
        assert compiled.type == "bool"

    def test_duration_exists_only_for_sequences(self) -> None:
        with pytest.raises(ExpressionError) as info:
            compile_expression("duration > 1h", Scope(event_types=frozenset({"x.y"})))
        assert info.value.message == "unknown name 'duration' ('duration' exists only for sequence triggers)"

    def test_let_has_no_fields(self) -> None:
        let = Compiled(lambda ctx: 1, "number", parse("1"))
        with pytest.raises(ExpressionError) as info:
            compile_expression("calls.total > 1", Scope(event_types=frozenset({"x.y"}), lets={"calls": let}))
        assert (info.value.message, info.value.offset) == ("'calls' is a value, it has no field 'total'", 0)

    def test_suggestion_includes_lets(self) -> None:
        let = Compiled(lambda ctx: 1, "number", parse("1"))
        with pytest.raises(ExpressionError, match=r"^unknown name 'cals' \(did you mean 'calls'\?\)$"):
            compile_expression("cals > 1", Scope(event_types=frozenset({"x.y"}), lets={"calls": let}))

    @pytest.mark.parametrize("name", ["count", "had"])
    def test_windows_can_be_forbidden(self, name: str) -> None:
        scope = Scope(event_types=frozenset({"x.y"}), allow_windows=False)
        with pytest.raises(ExpressionError) as info:
            compile_expression(f"1 + {name}('service.call', 7d)", scope)
        assert (info.value.message, info.value.offset) == (f"{name}() cannot be used here", 4)

    def test_syntax_errors_pass_through(self) -> None:
        with pytest.raises(ExpressionError) as info:
            compile_expression("a ==", Scope(event_types=frozenset({"x.y"})))
        assert (info.value.message, info.value.offset) == ("unexpected end of expression", 4)


# ---------------------------------------------------------------------------------------------- null rules


@pytest.fixture(params=[{}, {"m": None}], ids=["missing", "null"])
def absent(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A data field that is either missing or null: the two must evaluate alike."""
    value: dict[str, Any] = request.param
    return value


class TestNull:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("event.data.m == null", True),
            ("event.data.m != null", False),
            ("null == event.data.m", True),
            ("event.data.m == 'x'", False),
            ("event.data.m != 'x'", True),
            ("'x' != event.data.m", True),
            ("event.data.m == 0", False),
            ("event.data.m < 1", False),
            ("event.data.m <= 1", False),
            ("event.data.m > 1", False),
            ("event.data.m >= 1", False),
            ("1 > event.data.m", False),
            ("event.data.m < null", False),
            ("event.data.m >= event.data.m", False),
            ("not (event.data.m < 1)", True),
            ("event.data.m + 1", None),
            ("1 - event.data.m", None),
            ("event.data.m * 2", None),
            ("event.data.m / 2", None),
            ("event.data.m + 1h", None),
            ("-event.data.m", None),
            ("event.data.m + 1 > 0", False),
            ("event.data.m in ['x']", False),
            ("event.data.m in ['x', null]", True),
            ("event.data.m not in ['x']", True),
            ("'x' in event.data.m", False),
            ("'x' not in event.data.m", True),
            ("not event.data.m", True),
            ("event.data.m and true", False),
            ("event.data.m or true", True),
            ("lower(event.data.m)", None),
            ("hours(event.data.m)", None),
            ("floor(event.data.m)", None),
            ("round(event.data.m)", None),
            ("abs(event.data.m)", None),
            ("min(event.data.m, 3)", 3),
            ("coalesce(event.data.m, 0)", 0),
            ("if(event.data.m, 1, 2)", 2),
            ("event.data.m.deeper", None),
        ],
    )
    def test_absent_value(
        self,
        text: str,
        value: Any,
        absent: dict[str, Any],
        scope_factory: ScopeFactory,
        context_factory: ContextFactory,
    ) -> None:
        compiled = compile_expression(text, scope_factory("x.y"))
        assert compiled.fn(context_factory(absent)) == value

    @given(
        op=st.sampled_from(["<", "<=", ">", ">="]),
        value=st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3)),
        null_on_left=st.booleans(),
    )
    def test_ordered_comparison_with_null_is_false(
        self, op: str, value: Any, null_on_left: bool, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        text = f"event.data.m {op} event.data.v" if null_on_left else f"event.data.v {op} event.data.m"
        compiled = compile_expression(text, scope_factory("x.y"))
        assert compiled.fn(context_factory({"v": value})) is False
        negated = compile_expression(f"not ({text})", scope_factory("x.y"))
        assert negated.fn(context_factory({"v": value})) is True

    @given(value=st.one_of(st.none(), st.integers(), st.booleans(), st.text(max_size=3), st.lists(st.integers())))
    def test_equality_treats_null_as_a_value(
        self, value: Any, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        ctx = context_factory({"v": value})
        assert compile_expression("event.data.v == null", scope_factory("x.y")).fn(ctx) is (value is None)
        assert compile_expression("event.data.v != event.data.m", scope_factory("x.y")).fn(ctx) is (value is not None)


# ---------------------------------------------------------------------------------------------- data problems


class TestDataProblems:
    """A running playbook only meets data problems, and those evaluate to null (or false) instead of raising."""

    @pytest.mark.parametrize(
        ("text", "data", "value"),
        [
            ("event.data.a + 1", {"a": "ab"}, None),
            ("event.data.a - 1h", {"a": "ab"}, None),
            ("'x' + event.data.a", {"a": 1}, None),
            ("event.data.a / event.data.b", {"a": 1, "b": 0}, None),
            ("floor(event.data.a)", {"a": "x"}, None),
            ("abs(event.data.a)", {"a": [1]}, None),
            ("round(event.data.a)", {"a": "x"}, None),
            ("round(event.data.a, event.data.b)", {"a": 1.25, "b": "x"}, None),
            ("min(event.data.a, event.data.b)", {"a": "x", "b": 1}, None),
            ("lower(event.data.a)", {"a": 1}, None),
            ("event.data.a < event.data.b", {"a": {}, "b": {}}, False),
            ("event.data.a < 'b'", {"a": 1}, False),
            ("'x' in event.data.a", {"a": 5}, False),
            ("event.data.a in event.data.b", {"a": [1], "b": {"k": 1}}, False),
            ("event.data.a.b", {"a": "text"}, None),
            ("event.data.a == 1", {"a": "1"}, False),
            ("event.data.a == 1", {"a": True}, False),
            ("event.data.a > 0", {"a": True}, False),
            # the following raise or break their static type today
            ("-event.data.a", {"a": "x"}, None),
            ("-event.data.a", {"a": [1]}, None),
            ("hours(event.data.a)", {"a": "x"}, None),
            ("minutes(event.data.a)", {"a": [1]}, None),
            ("event.data.a * 3", {"a": "ab"}, None),
            ("2 * event.data.a", {"a": [1]}, None),
            # numbers beyond any float, made of data a decoded event may carry (each within the float range)
            ("minutes(event.data.a * event.data.a)", {"a": 10**300}, None),
            ("hours(event.data.a * event.data.a * event.data.a)", {"a": -(10**300)}, None),
            ("event.data.a * event.data.a / 2", {"a": 10**300}, None),
            ("floor(event.data.a * event.data.a * 1.0)", {"a": 10**300}, None),
            ("event.data.a * event.data.a", {"a": 1e300}, float("inf")),
        ],
    )
    def test_evaluates_without_raising(
        self,
        text: str,
        data: dict[str, Any],
        value: Any,
        scope_factory: ScopeFactory,
        context_factory: ContextFactory,
    ) -> None:
        compiled = compile_expression(text, scope_factory("x.y"))
        assert compiled.fn(context_factory(data)) == value

    @pytest.mark.parametrize(
        ("data", "equal", "member"),
        [
            ({"a": False}, "event.data.a == 0", "event.data.a in [0]"),
            ({"a": True}, "event.data.a == 1", "event.data.a in [1, 2]"),
            ({"a": 1}, "event.data.a == true", "event.data.a in [true]"),
            ({"a": 1}, "event.data.a == '1'", "event.data.a in ['1']"),
            ({"a": None}, "event.data.a == null", "event.data.a in [null]"),
            ({"a": 2.0}, "event.data.a == 2", "event.data.a in [2]"),
        ],
    )
    def test_membership_agrees_with_equality(
        self,
        data: dict[str, Any],
        equal: str,
        member: str,
        scope_factory: ScopeFactory,
        context_factory: ContextFactory,
    ) -> None:
        scope = scope_factory("x.y")
        ctx = context_factory(data)
        assert compile_expression(member, scope).fn(ctx) is compile_expression(equal, scope).fn(ctx)
