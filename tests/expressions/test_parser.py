"""parser.parse: text to syntax tree, precedence, and the located errors a playbook author sees."""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.exceptions import ExpressionError
from recovery.expressions.nodes import Binary, Call, ListExpr, Literal, Node, Path, Unary
from recovery.expressions.parser import MAX_DEPTH, MAX_LENGTH, parse, top_level_parts
from recovery.times import parse_duration


def show(node: Node) -> str:
    """A position-free rendering with every operator parenthesised: the tree's shape at a glance."""
    if isinstance(node, Literal):
        if node.kind == "duration":
            return f"{node.value!r}s"
        if node.kind in ("bool", "null"):
            return {True: "true", False: "false", None: "null"}[node.value]
        return repr(node.value)
    if isinstance(node, Path):
        return node.dotted
    if isinstance(node, Call):
        return f"{node.name}({', '.join(show(a) for a in node.args)})"
    if isinstance(node, ListExpr):
        return f"[{', '.join(show(i) for i in node.items)}]"
    if isinstance(node, Unary):
        return f"({node.op} {show(node.operand)})"
    if isinstance(node, Binary):
        return f"({show(node.left)} {node.op} {show(node.right)})"
    raise TypeError(node)


def without_pos(value: Any) -> Any:
    """The same tree with every `pos` set to 0."""
    if isinstance(value, tuple):
        return tuple(without_pos(v) for v in value)
    if is_dataclass(value) and isinstance(value, Node):
        changes = {f.name: without_pos(getattr(value, f.name)) for f in fields(value) if f.name != "pos"}
        return replace(value, pos=0, **changes)
    return value


# ---------------------------------------------------------------------------------------------- valid


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        # precedence, loosest first: or, and, not, comparisons, + -, * /, unary -
        ("a or b and c", "(a or (b and c))"),
        ("a and b or c", "((a and b) or c)"),
        ("a or b or c", "((a or b) or c)"),
        ("a and b and c", "((a and b) and c)"),
        ("not a and b", "((not a) and b)"),
        ("not a or not b", "((not a) or (not b))"),
        ("not not a", "(not (not a))"),
        ("not a == b", "(not (a == b))"),
        ("a == b and c != d", "((a == b) and (c != d))"),
        ("a + b == c * d", "((a + b) == (c * d))"),
        ("a < b + 1", "(a < (b + 1))"),
        ("a <= b", "(a <= b)"),
        ("a >= b", "(a >= b)"),
        ("a > b", "(a > b)"),
        ("1 + 2 * 3", "(1 + (2 * 3))"),
        ("(1 + 2) * 3", "((1 + 2) * 3)"),
        ("1 - 2 - 3", "((1 - 2) - 3)"),
        ("1 / 2 / 3", "((1 / 2) / 3)"),
        ("a * b / c", "((a * b) / c)"),
        ("a - b + c", "((a - b) + c)"),
        ("-a * b", "((- a) * b)"),
        ("-a.b", "(- a.b)"),
        ("- - a", "(- (- a))"),
        ("2 * -3", "(2 * -3)"),
        ("1 - -1", "(1 - -1)"),
        ("-(1)", "-1"),
        ("--1", "1"),
        ("-'a'", "(- 'a')"),
        ("-true", "(- true)"),
        # membership binds like a comparison
        ("x in [1, 2]", "(x in [1, 2])"),
        ("x not in [1, 2]", "(x not in [1, 2])"),
        ("not x in y", "(not (x in y))"),
        ("not x not in y", "(not (x not in y))"),
        ("a + 1 in b", "((a + 1) in b)"),
        ("x in y and z", "((x in y) and z)"),
        ("(1 in [1]) == true", "((1 in [1]) == true)"),
        # literals
        ("0", "0"),
        ("42", "42"),
        ("1.5", "1.5"),
        ("007", "7"),
        ("true", "true"),
        ("false", "false"),
        ("null", "null"),
        ("90s", "90.0s"),
        ("45m", "2700.0s"),
        ("2h30m", "9000.0s"),
        ("1.5h", "5400.0s"),
        ("7d", "604800.0s"),
        ("2w", "1209600.0s"),
        ("250ms", "0.25s"),
        ("1d2h3m4s", "93784.0s"),
        ("-2h", "-7200.0s"),
        ("- 2h", "-7200.0s"),
        ("-(2h)", "-7200.0s"),
        ("2h * 3", "(7200.0s * 3)"),
        ('"plain"', "'plain'"),
        ("'single'", "'single'"),
        ('""', "''"),
        (r'"tab\there"', r"'tab\there'"),
        (r'"a\nb"', r"'a\nb'"),
        (r'"q\"q"', "'q\"q'"),
        (r"'it\'s'", '"it\'s"'),
        (r'"back\\slash"', r"'back\\slash'"),
        ('"it\'s"', '"it\'s"'),
        ("'say \"hi\"'", "'say \"hi\"'"),
        ('"é ☃ 𝄞"', "'é ☃ 𝄞'"),
        # names, lists, calls
        ("customer.tier", "customer.tier"),
        ("event.data.reason", "event.data.reason"),
        ("a . b", "a.b"),
        ("order", "order"),
        ("notice", "notice"),
        ("android", "android"),
        ("true_", "true_"),
        ("nullable", "nullable"),
        ("[]", "[]"),
        ("[1]", "[1]"),
        ("[1, 'a', null,]", "[1, 'a', null]"),
        ("[[1], []]", "[[1], []]"),
        ("f()", "f()"),
        ("f(1, 2,)", "f(1, 2)"),
        ('count("service.call", 7d)', "count('service.call', 604800.0s)"),
        ("max(a, b + 1) >= 3", "(max(a, (b + 1)) >= 3)"),
        ("if(a, [b], c)", "if(a, [b], c)"),
        ("  a\n and\tb  ", "(a and b)"),
    ],
)
def test_shape(text: str, shape: str) -> None:
    assert show(parse(text)) == shape


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("1", Literal(0, 1, "number")),
        ("  1.25", Literal(2, 1.25, "number")),
        ("2h", Literal(0, 7200.0, "duration")),
        ("x  ==  'y'", Binary(3, "==", Path(0, ("x",)), Literal(7, "y", "string"))),
        ("a + b", Binary(2, "+", Path(0, ("a",)), Path(4, ("b",)))),
        ("a and b", Binary(0, "and", Path(0, ("a",)), Path(6, ("b",)))),
        ("(a) or b", Binary(1, "or", Path(1, ("a",)), Path(7, ("b",)))),
        ("x in [1]", Binary(0, "in", Path(0, ("x",)), ListExpr(5, (Literal(6, 1, "number"),)))),
        ("x not in y", Binary(0, "not in", Path(0, ("x",)), Path(9, ("y",)))),
        ("not x", Unary(0, "not", Path(4, ("x",)))),
        (" -x", Unary(1, "-", Path(2, ("x",)))),
        ("-5", Literal(0, -5, "number")),
        ("f( 1 )", Call(0, "f", (Literal(3, 1, "number"),))),
        ("event.data.x", Path(0, ("event", "data", "x"))),
        ("null", Literal(0, None, "null")),
        ("true", Literal(0, True, "bool")),
    ],
)
def test_nodes_and_offsets(text: str, node: Node) -> None:
    assert parse(text) == node


@pytest.mark.parametrize(("text", "kind"), [("3", int), ("3.0", float), ("-3", int), ("3h", float)])
def test_number_types(text: str, kind: type) -> None:
    assert type(parse(text).value) is kind  # type: ignore[attr-defined]


def test_the_largest_numbers() -> None:
    assert parse("9007199254740992") == Literal(0, 2**53, "number")
    assert parse("-9007199254740992") == Literal(0, -(2**53), "number")
    assert parse("1" * 300 + ".5") == Literal(0, float("1" * 300), "number")


def test_longest_accepted_expression() -> None:
    text = "x" * MAX_LENGTH
    assert parse(text) == Path(0, (text,))


# ---------------------------------------------------------------------------------------------- invalid


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("", "empty expression", 0),
        (" \t\n", "empty expression", 0),
        ("x" * (MAX_LENGTH + 1), f"expression is longer than {MAX_LENGTH} characters", 0),
        ("1 +", "unexpected end of expression", 3),
        ("a ==", "unexpected end of expression", 4),
        ("x and", "unexpected end of expression", 5),
        ("x in", "unexpected end of expression", 4),
        ("not", "unexpected end of expression", 3),
        ("- ", "unexpected end of expression", 2),
        ("(1", "unexpected end of expression: ')' is missing", 2),
        ("a.", "unexpected end of expression (expected a name)", 2),
        ("1)", "unexpected ')' (expected the end)", 1),
        ("1 2", "unexpected '2'", 2),
        ("@", "unexpected character '@'", 0),
        ("a #", "unexpected character '#'", 2),
        ("$x", "unexpected character '$'", 0),
        ("a = b", "unexpected character '='", 2),
        ("a ! b", "unexpected character '!'", 2),
        ("a && b", "unexpected character '&'", 2),
        ("a ≠ b", "unexpected character '≠'", 2),
        # comparisons do not chain
        ("a < b < c", "unexpected '<'", 6),
        ("a == b == c", "unexpected '=='", 7),
        ("a in b in c", "unexpected 'in'", 7),
        # durations are one token with a known unit
        ("2h 30m", "unexpected '30m'", 3),
        ("5 m", "unexpected 'm'", 2),
        ("10min", "unexpected 'min'", 2),
        ("3mo", "unexpected 'mo'", 1),
        ("2hx", "unexpected 'hx'", 1),
        ("1e5", "unexpected 'e5'", 1),
        ("x > 36526d", "'36526d' is longer than 100 years (36525d)", 4),
        # numbers: finite 64-bit floats, whole numbers exactly so
        ("x > 9007199254740993", "whole number too large: at most 9007199254740992 (2**53) either way", 4),
        ("-9007199254740993 < x", "whole number too large: at most 9007199254740992 (2**53) either way", 1),
        ("x > " + "1" * 1500, "whole number too large: at most 9007199254740992 (2**53) either way", 4),
        ("x > " + "1" * 400 + ".5", "not a finite number", 4),
        ('count("a.b", 3000000d)', "'3000000d' is longer than 100 years (36525d)", 13),
        # strings
        ('"abc', "unexpected character '\"'", 0),
        ("'abc", 'unexpected character "\'"', 0),
        ('"a\nb"', "unexpected character '\"'", 0),
        (r'"\x"', r"unknown escape '\x' in string", 1),
        (r'"a\qb"', r"unknown escape '\q' in string", 2),
        (r'x == "ab\u00e9"', r"unknown escape '\u' in string", 8),
        # names, calls, lists
        ("x.1", "unexpected '1' (expected a name)", 2),
        ("a..b", "unexpected '.' (expected a name)", 2),
        (".a", "unexpected '.'", 0),
        ("true.x", "unexpected '.'", 4),
        ("true()", "unexpected '('", 4),
        ("a.b(1)", "unexpected '('", 3),
        ("(a)(b)", "unexpected '('", 3),
        ("[1][0]", "unexpected '['", 3),
        ("f(,)", "unexpected ','", 2),
        ("[,]", "unexpected ','", 1),
        ('count("a" 7d)', "unexpected '7d'", 10),
        ("1 */ 2", "unexpected '/'", 3),
        # keywords are not names
        ("in", "unexpected 'in'", 0),
        ("or x", "unexpected 'or'", 0),
        ("x or or", "unexpected 'or'", 5),
        ("not in x", "unexpected 'in'", 4),
        ("x.in", "unexpected 'in' (expected a name)", 2),
        ("x.true", "unexpected 'true' (expected a name)", 2),
        ("a not b", "unexpected 'b' (expected in)", 6),
    ],
)
def test_error(text: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert (info.value.message, info.value.offset) == (message, offset)
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "construct"), [("f(1", "a call"), ("[1, 2", "a list")])
def test_unclosed_argument_list_names_only_its_closer(text: str, construct: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.offset == len(text)
    closer, other = (")", "]") if construct == "a call" else ("]", ")")
    assert closer in info.value.message
    assert other not in info.value.message, f"{construct} cannot be closed by {other!r}: {info.value.message!r}"


@pytest.mark.parametrize("value", [None, 12, b"x == 1", ["x"]])
def test_error_for_non_text(value: Any) -> None:
    with pytest.raises(ExpressionError, match=f"^expected an expression as text, got {type(value).__name__}$"):
        parse(value)


@pytest.mark.parametrize(
    "text",
    [
        "-" * 1000 + "x",
        "not " * 499 + "x",
        "[" * 600 + "]" * 600,
        "f(" * 500 + ")" * 500,
        "+".join(["x"] * 900),
        "(" * 999 + "x" + ")" * 999,
    ],
    ids=["minus", "not", "lists", "calls", "sum", "parentheses"],
)
def test_deep_nesting_within_the_length_limit(text: str) -> None:
    # within MAX_LENGTH an expression either parses or fails with a located ExpressionError, never RecursionError
    assert len(text) <= MAX_LENGTH
    try:
        parse(text)
    except ExpressionError:
        pass


# (an expression at MAX_DEPTH levels, the same one level deeper, the offset where that level starts)
_NESTINGS = {
    "minus": (lambda n: "-" * (n - 1) + "x", lambda n: n - 1),
    "not": (lambda n: "not " * (n - 1) + "x", lambda n: 4 * (n - 1)),
    "lists": (lambda n: "[" * n + "]" * n, lambda n: n - 1),
    "calls": (lambda n: "f(" * (n - 1) + "x" + ")" * (n - 1), lambda n: 2 * (n - 1)),
    "sum": (lambda n: "+".join(["x"] * n), lambda n: 0),
    "parenthesised sum": (lambda n: "x + (" * (n - 1) + "x" + ")" * (n - 1), lambda n: 5 * (n - 2)),
}


@pytest.mark.parametrize("kind", list(_NESTINGS))
def test_nesting_is_bounded_where_it_goes_too_deep(kind: str) -> None:
    text, offset = _NESTINGS[kind]
    parse(text(MAX_DEPTH))
    with pytest.raises(ExpressionError) as info:
        parse(text(MAX_DEPTH + 1))
    assert (info.value.message, info.value.offset) == (
        f"expression nests too deeply: at most {MAX_DEPTH} levels",
        offset(MAX_DEPTH + 1),
    )


def test_parentheses_alone_do_not_nest() -> None:
    assert parse("(" * 500 + "x" + ")" * 500) == Path(500, ("x",))


# ---------------------------------------------------------------------------------------------- properties

_NAMES = ("event.data.x", "event.data.reason", "customer.tier", "first.type", "calls", "duration")
_FUNCTIONS = ("count", "had", "min", "max", "lower", "coalesce", "f")
_BINARY = ("or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "+", "-", "*", "/")
_UNITS = ("w", "d", "h", "m", "s", "ms")

_naturals = st.integers(0, 10**9)
_decimals = st.builds(lambda i, f: float(f"{i}.{f}"), st.integers(0, 10**6), st.from_regex(r"\A[0-9]{1,4}\Z"))
_durations = st.lists(st.tuples(st.integers(0, 1000), st.sampled_from(_UNITS)), min_size=1, max_size=3).map(
    lambda parts: parse_duration("".join(f"{n}{u}" for n, u in parts))
)


def _signed(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.tuples(values, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])


_leaves = st.one_of(
    st.builds(Literal, st.just(0), _signed(st.one_of(_naturals, _decimals)), st.just("number")),
    st.builds(Literal, st.just(0), _signed(_durations), st.just("duration")),
    st.builds(Literal, st.just(0), st.text(st.characters(exclude_categories=("Cs",)), max_size=8), st.just("string")),
    st.sampled_from([Literal(0, True, "bool"), Literal(0, False, "bool"), Literal(0, None, "null")]),
    st.sampled_from(_NAMES).map(lambda name: Path(0, tuple(name.split(".")))),
)


def _negatable(node: Node) -> bool:
    # the parser folds '-' into a number or duration literal, so Unary('-', literal) has no text of its own
    return not (isinstance(node, Literal) and node.kind in ("number", "duration"))


def _extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Binary, st.just(0), st.sampled_from(_BINARY), inner, inner),
        st.builds(Unary, st.just(0), st.just("not"), inner),
        st.builds(Unary, st.just(0), st.just("-"), inner.filter(_negatable)),
        st.builds(Call, st.just(0), st.sampled_from(_FUNCTIONS), st.lists(inner, max_size=3).map(tuple)),
        st.builds(ListExpr, st.just(0), st.lists(inner, max_size=3).map(tuple)),
    )


_trees = st.recursive(_leaves, _extend, max_leaves=12)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def to_text(node: Node) -> str:
    """Print a tree as expression text, with parentheses around every operator."""
    if isinstance(node, Literal):
        if node.kind == "string":
            return _quote(node.value)
        if node.kind == "duration":
            return f"({node.value!r}s)"
        if node.kind == "number":
            return f"({node.value!r})"
        return show(node)
    if isinstance(node, Path):
        return node.dotted
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_text(a) for a in node.args)})"
    if isinstance(node, ListExpr):
        return f"[{', '.join(to_text(i) for i in node.items)}]"
    if isinstance(node, Unary):
        return f"(not {to_text(node.operand)})" if node.op == "not" else f"(-{to_text(node.operand)})"
    if isinstance(node, Binary):
        return f"({to_text(node.left)} {node.op} {to_text(node.right)})"
    raise TypeError(node)


@settings(max_examples=300)
@given(_trees)
def test_printed_tree_parses_back_to_itself(tree: Node) -> None:
    text = to_text(tree)
    assert without_pos(parse(text)) == tree, text


@given(_trees)
def test_positions_point_into_the_text(tree: Node) -> None:
    text = to_text(tree)
    node = parse(text)
    stack = [node]
    while stack:
        n = stack.pop()
        assert 0 <= n.pos < len(text)
        if isinstance(n, Path):
            assert text[n.pos :].startswith(n.parts[0])
        elif isinstance(n, Call):
            assert text[n.pos :].startswith(n.name + "(")
        elif isinstance(n, Binary) and n.op in ("+", "*", "/", "==", "!=", "<", "<=", ">", ">="):
            assert text[n.pos :].startswith(n.op)
        stack.extend(v for f in fields(n) for v in _children(getattr(n, f.name)))


def _children(value: Any) -> list[Node]:
    if isinstance(value, Node):
        return [value]
    if isinstance(value, tuple):
        return [v for v in value if isinstance(v, Node)]
    return []


@settings(max_examples=500)
@given(st.text())
def test_arbitrary_text_raises_only_expression_error(text: str) -> None:
    try:
        parse(text)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(text)


_TOKENS = ("(", ")", "[", "]", ",", ".", "-", "+", "*", "/", "==", "<", ">=", "not", "and", "or", "in", "true",
           "null", "1", "2.5", "2h", "x", "f", '"s"', "'t'", "\\", '"', " ")  # fmt: skip


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_TOKENS), max_size=30).map(" ".join))
def test_token_soup_raises_only_expression_error(text: str) -> None:
    try:
        parse(text)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(text)


@pytest.mark.parametrize(
    ("text", "op", "parts"),
    [
        ("calls >= 3", None, ["calls >= 3"]),
        ("a and b and c", "and", ["a", "b", "c"]),
        ("a and b or c", "or", ["a and b", "c"]),
        ("(a or b) and c", "and", ["(a or b)", "c"]),
        (" ((a and b)) ", "and", ["a", "b"]),
        ('x in ["and", "or"] and count("s", 7d) >= 3', "and", ['x in ["and", "or"]', 'count("s", 7d) >= 3']),
        ("not (a and b)", None, ["not (a and b)"]),
        ("f(a and b, c or d)", None, ["f(a and b, c or d)"]),
    ],
)
def test_top_level_parts_split_at_the_loosest_operator_outside_brackets(
    text: str, op: str | None, parts: list[str]
) -> None:
    assert top_level_parts(text) == (op, parts)
