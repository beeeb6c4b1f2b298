"""Text to syntax tree, with lark (LALR). Nothing here evaluates anything."""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from recovery.exceptions import ExpressionError
from recovery.expressions.nodes import Binary, Call, ListExpr, Literal, Node, Path, Unary
from recovery.times import parse_duration

MAX_LENGTH = 2000
MAX_DEPTH = 64
"""Levels of operators, calls and lists in one expression (parentheses do not count). Compiling and evaluating
recurse through the levels: the bound keeps an expression, let values included (`compiler.py`), well within
Python's recursion limit."""
TOO_DEEP = f"expression nests too deeply: at most {MAX_DEPTH} levels"
MAX_INTEGER = 2**53
"""The largest whole number a playbook writes, either way: every 64-bit float reader (JSON anywhere, durable-rules'
messages) holds it exactly, and it compares exactly with the floats of event data."""
TOO_LARGE = f"whole number too large: at most {MAX_INTEGER} (2**53) either way"
NOT_FINITE = "not a finite number"


def number_problem(value: int | float) -> str | None:
    """Why `value` is not a number a playbook may write (finite, and exact when whole), or None."""
    if isinstance(value, int):
        return None if -MAX_INTEGER <= value <= MAX_INTEGER else TOO_LARGE
    return None if math.isfinite(value) else NOT_FINITE


_TOKEN_NAMES = {
    "COMP_OP": "a comparison",
    "ADD_OP": "+ or -",
    "MUL_OP": "* or /",
    "NUMBER": "a number",
    "DURATION": "a duration",
    "STRING": "a string",
    "NAME": "a name",
    "LPAR": "(",
    "RPAR": ")",
    "LSQB": "[",
    "RSQB": "]",
    "COMMA": ",",
    "DOT": ".",
    "MINUS": "-",
    "$END": "the end",
}


@cache
def _parser() -> Lark:
    grammar = resources.files("recovery.expressions").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _unescape(text: str, pos: int) -> str:
    body = text[1:-1]
    out: list[str] = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in escapes:
                raise ExpressionError(f"unknown escape '\\{nxt}' in string", pos + i + 1)
            out.append(escapes[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _pos(item: Any) -> int:
    if isinstance(item, Token):
        return item.start_pos or 0
    if isinstance(item, Node):
        return item.pos
    return 0


@v_args(meta=True)
class _ToAst(Transformer[Token, Node]):
    def number(self, meta: Any, children: list[Token]) -> Node:
        tok = children[0]
        text = str(tok)
        value: float | int = float(text) if "." in text else int(text) if len(text) <= 20 else MAX_INTEGER + 1
        problem = number_problem(value)
        if problem is not None:
            raise ExpressionError(problem, _pos(tok))
        return Literal(_pos(tok), value, "number")

    def duration(self, meta: Any, children: list[Token]) -> Node:
        tok = children[0]
        try:
            seconds = parse_duration(str(tok))
        except ValueError as exc:  # longer than the longest duration
            raise ExpressionError(str(exc), _pos(tok)) from None
        return Literal(_pos(tok), seconds, "duration")

    def string(self, meta: Any, children: list[Token]) -> Node:
        tok = children[0]
        return Literal(_pos(tok), _unescape(str(tok), _pos(tok)), "string")

    def true(self, meta: Any, children: list[Any]) -> Node:
        return Literal(meta.start_pos, True, "bool")

    def false(self, meta: Any, children: list[Any]) -> Node:
        return Literal(meta.start_pos, False, "bool")

    def null(self, meta: Any, children: list[Any]) -> Node:
        return Literal(meta.start_pos, None, "null")

    def path(self, meta: Any, children: list[Token]) -> Node:
        return Path(_pos(children[0]), tuple(str(c) for c in children))

    def arglist(self, meta: Any, children: list[Node | None]) -> tuple[Node, ...]:
        return tuple(c for c in children if c is not None)

    def call(self, meta: Any, children: list[Any]) -> Node:
        name, args = children
        return Call(_pos(name), str(name), args or ())

    def list_(self, meta: Any, children: list[Any]) -> Node:
        return ListExpr(meta.start_pos, children[0] or ())

    def neg(self, meta: Any, children: list[Node]) -> Node:
        operand = children[0]
        if isinstance(operand, Literal) and operand.kind in ("number", "duration"):
            return Literal(meta.start_pos, -operand.value, operand.kind)
        return Unary(meta.start_pos, "-", operand)

    def not_(self, meta: Any, children: list[Node]) -> Node:
        return Unary(meta.start_pos, "not", children[0])

    def binop(self, meta: Any, children: list[Any]) -> Node:
        left, op, right = children
        return Binary(_pos(op), str(op), left, right)

    def compare(self, meta: Any, children: list[Any]) -> Node:
        left, op, right = children
        return Binary(_pos(op), str(op), left, right)

    def in_(self, meta: Any, children: list[Node]) -> Node:
        left, right = children
        return Binary(left.pos, "in", left, right)

    def not_in(self, meta: Any, children: list[Node]) -> Node:
        left, right = children
        return Binary(left.pos, "not in", left, right)

    def and_(self, meta: Any, children: list[Node]) -> Node:
        return Binary(children[0].pos, "and", children[0], children[1])

    def or_(self, meta: Any, children: list[Node]) -> Node:
        return Binary(children[0].pos, "or", children[0], children[1])


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_TOKEN_NAMES.get(e, e.strip('"').lower()) for e in expected if not e.startswith("__")})
    if not names:
        return ""
    if len(names) > 6:
        return ""
    return " (expected " + ", ".join(names) + ")"


_CLOSERS = {"(": ")", "[": "]"}


def _unclosed(text: str) -> str | None:
    """The bracket that the end of `text` leaves open, if any (strings are skipped)."""
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in _CLOSERS:
            stack.append(ch)
        elif ch in ")]" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _check_depth(tree: Tree[Token]) -> None:
    """Raise ExpressionError where `tree` first (in reading order) nests more than MAX_DEPTH levels; iterative, as
    the tree may be far deeper than Python's recursion limit allows to walk."""
    stack: list[tuple[Tree[Token], int]] = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            raise ExpressionError(TOO_DEEP, getattr(node.meta, "start_pos", 0))
        below: list[tuple[Tree[Token], int]] = []
        for child in node.children:
            if not isinstance(child, Tree):
                continue
            if child.data == "arglist":  # a call's or a list's arguments: one level below it, not two
                below.extend((arg, level + 1) for arg in child.children if isinstance(arg, Tree))
            else:
                below.append((child, level + 1))
        stack.extend(reversed(below))


def _end_message(text: str, expected: set[str]) -> str:
    opener = _unclosed(text)
    if opener is not None:
        return f"unexpected end of expression: '{_CLOSERS[opener]}' is missing"
    return "unexpected end of expression" + _describe_expected(expected)


def parse(text: str) -> Node:
    """Parse an expression; raises ExpressionError with the offset of the first problem."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression as text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError("empty expression")
    try:
        tree = _parser().parse(text)
        _check_depth(tree)
        node = _ToAst().transform(tree)
    except RecursionError:  # pragma: no cover - _check_depth keeps the transformer well within the limit
        raise ExpressionError(TOO_DEEP) from None
    except UnexpectedCharacters as exc:
        at = exc.pos_in_stream or 0
        raise ExpressionError(f"unexpected character {text[at]!r}", at) from None
    except UnexpectedEOF as exc:
        raise ExpressionError(_end_message(text, set(exc.expected)), len(text)) from None
    except UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            raise ExpressionError(_end_message(text, set(exc.expected)), len(text)) from None
        raise ExpressionError(
            f"unexpected {str(tok)!r}" + _describe_expected(exc.expected), tok.start_pos or 0
        ) from None
    except UnexpectedInput as exc:  # pragma: no cover - the cases above are exhaustive for LALR
        raise ExpressionError("syntax error", getattr(exc, "pos_in_stream", 0) or 0) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, RecursionError):  # pragma: no cover - as above
            raise ExpressionError(TOO_DEEP) from None
        if isinstance(exc.orig_exc, ExpressionError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, ValueError):
            raise ExpressionError(str(exc.orig_exc)) from None
        raise
    if not isinstance(node, Node):  # pragma: no cover - the grammar always yields a node
        raise ExpressionError("syntax error")
    return node


def top_level_parts(text: str) -> tuple[str | None, list[str]]:
    """A valid expression split at its loosest operator outside brackets: `("or", parts)` when it has a top-level
    `or`, else `("and", parts)` for a top-level `and`, else `(None, [text])`. Brackets around the whole are looked
    through. The parts are the source's own text, stripped (for `recovery explain`, which evaluates each)."""
    text = text.strip()
    tokens = list(_parser().lex(text))
    while len(tokens) > 2 and tokens[0].type == "LPAR" and _closing(tokens) == len(tokens) - 1:
        inner_start, inner_end = tokens[1].start_pos or 0, tokens[-2].end_pos or len(text)
        text = text[inner_start:inner_end]
        tokens = list(_parser().lex(text))
    depth = 0
    cuts: dict[str, list[Token]] = {"OR": [], "AND": []}
    for tok in tokens:
        if tok.type in ("LPAR", "LSQB"):
            depth += 1
        elif tok.type in ("RPAR", "RSQB"):
            depth -= 1
        elif depth == 0 and tok.type in cuts:
            cuts[tok.type].append(tok)
    op = "OR" if cuts["OR"] else "AND" if cuts["AND"] else None
    if op is None:
        return None, [text]
    parts, start = [], 0
    for tok in cuts[op]:
        parts.append(text[start : tok.start_pos].strip())
        start = tok.end_pos or start
    parts.append(text[start:].strip())
    return op.lower(), parts


def _closing(tokens: list[Token]) -> int:
    """The index of the token closing the bracket `tokens[0]` opens (-1 when none does)."""
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.type in ("LPAR", "LSQB"):
            depth += 1
        elif tok.type in ("RPAR", "RSQB"):
            depth -= 1
            if depth == 0:
                return i
    return -1
