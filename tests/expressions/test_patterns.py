"""patterns.to_pattern: durable-rules must decide a condition exactly as the reference evaluator does.

durable-rules runs in a worker process: its C engine holds the GIL, so a pattern that makes it spin forever
would freeze the test run. The worker answers each post within POST_TIMEOUT_S or is replaced.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.expressions.compiler import Compiler
from recovery.expressions.parser import parse
from recovery.expressions.patterns import ALWAYS, NEVER, to_pattern

from .conftest import ContextFactory, ScopeFactory, make_context, make_scope

POST_TIMEOUT_S = 2.0
BUILD_TIMEOUT_S = 20.0
MATCHERS_PER_WORKER = 100  # every durable-rules Host keeps two timer threads alive: recycle the worker

_WORKER = r"""
import json, os, sys
out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # anything durable-rules prints goes to stderr, not into the protocol
from recovery.engine.matcher import Matcher
out.write("ready\n")
for line in sys.stdin:
    request = json.loads(line)
    try:
        matcher = Matcher((f"c{i}", p) for i, p in enumerate(request["patterns"]))
    except Exception as exc:
        out.write(json.dumps({"error": str(exc)}) + "\n")
        continue
    out.write(json.dumps({"built": True}) + "\n")
    for i, message in request["posts"]:
        try:
            out.write(json.dumps({"match": matcher.matches_json(f"c{i}", message)}) + "\n")
        except Exception as exc:
            out.write(json.dumps({"error": str(exc)}) + "\n")
"""

HUNG = "hung"


class _Process:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        self.buffer = b""
        self.ready = False
        self.matchers = 0

    def line(self, timeout_s: float) -> str | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the durable-rules worker exited with {self.proc.wait()}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def send(self, request: dict[str, Any]) -> None:
        if not self.ready:
            assert self.line(BUILD_TIMEOUT_S) == "ready", "the durable-rules worker did not start"
            self.ready = True
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


class DurableWorker:
    """Builds one Matcher per `run` in a child process; a post that does not answer in time reads HUNG."""

    def __init__(self) -> None:
        self._current = _Process()
        self._spare = _Process()  # imports durable-rules in the background, ready to replace a hung worker

    def _replace(self) -> None:
        self._current.close()
        self._current, self._spare = self._spare, _Process()

    def run(self, patterns: list[dict[str, Any]], posts: list[tuple[int, str]]) -> list[bool | str]:
        """One answer per post (pattern index, message as JSON text): True/False, HUNG, or the error durable-rules
        raised (as text)."""
        if self._current.matchers >= MATCHERS_PER_WORKER:
            self._replace()
        worker = self._current
        worker.matchers += 1
        worker.send({"patterns": patterns, "posts": posts})
        built = worker.line(BUILD_TIMEOUT_S)
        assert built is not None, "durable-rules did not build the rulesets in time"
        assert json.loads(built) == {"built": True}, f"durable-rules refused {patterns}: {built}"
        results: list[bool | str] = []
        for _ in posts:
            answer = worker.line(POST_TIMEOUT_S)
            if answer is None:
                self._replace()
                return [*results, HUNG]
            reply = json.loads(answer)
            results.append(reply["match"] if "match" in reply else f"error: {reply['error']}")
        return results

    def close(self) -> None:
        self._current.close()
        self._spare.close()


@pytest.fixture(scope="module")
def durable() -> Iterator[DurableWorker]:
    worker = DurableWorker()
    yield worker
    worker.close()


def _agree(text: str, data: dict[str, Any], expected: bool, got: bool | str, pattern: Any, message: Any) -> None:
    where = f"{text!r} with data {data}: {pattern} on {message}"
    assert got != HUNG, f"durable-rules hung: {where}"
    assert not isinstance(got, str), f"durable-rules failed ({got}): {where}"
    assert got == expected, f"reference {expected}, durable-rules {got}: {where}"


def _check(durable: DurableWorker, text: str, datas: list[dict[str, Any]]) -> None:
    """Assert that the pattern of `text` and the reference evaluator agree for each data dict, in order."""
    compiler = Compiler(make_scope("x.y"))
    node = parse(text)
    reference = compiler.compile(node)
    pattern = to_pattern(node, compiler)
    contexts = [make_context(data) for data in datas]
    posts = [(0, pattern.message_json(ctx)) for ctx in contexts]
    got = durable.run([pattern.pattern], posts)
    for data, ctx, (_, message), result in zip(datas, contexts, posts, got, strict=False):
        _agree(text, data, bool(reference.fn(ctx)), result, pattern.pattern, message)


# ---------------------------------------------------------------------------------------------- shapes


class TestShape:
    """The pattern's form: what durable-rules is asked to test, and which features recovery computes."""

    @pytest.mark.parametrize(
        ("text", "pattern"),
        [
            ("true", ALWAYS),
            ("false", NEVER),
            ("not true", NEVER),
            ("event.data.a == 3", {"f0n": 3}),
            ("3 == event.data.a", {"f0n": 3}),
            ("event.data.a >= 3", {"$gte": {"f0n": 3}}),
            ("3 < event.data.a", {"$gt": {"f0n": 3}}),
            ("event.data.a < 2h", {"$lt": {"f0n": 7200.0}}),
            ("event.data.a != 'x'", {"$or": [{"$neq": {"f0t": "s"}}, {"$neq": {"f0s": "x"}}]}),
            ("not event.data.a > 1", {"$or": [{"$neq": {"f0t": "n"}}, {"$lte": {"f0n": 1}}]}),
            ("event.data.a == null", {"f0t": "z"}),
            ("event.data.a != null", {"$neq": {"f0t": "z"}}),
            ("event.data.a < null", NEVER),
            ("not event.data.a < null", ALWAYS),
            ("event.data.a in ['x', 'y']", {"$or": [{"f0s": "x"}, {"f0s": "y"}]}),
            ("event.data.a in ['x']", {"f0s": "x"}),
            ("event.data.a in []", NEVER),
            ("event.data.a not in []", ALWAYS),
            (
                "event.data.a not in ['x', null]",
                {"$and": [{"$or": [{"$neq": {"f0t": "s"}}, {"$neq": {"f0s": "x"}}]}, {"$neq": {"f0t": "z"}}]},
            ),
            ("event.data.a == event.data.b", {"f0": True}),
            ("not event.data.a == event.data.b", {"f0": False}),
            ("1 < 2", {"f0": True}),
            ("event.data.a in [event.data.b]", {"f0": True}),
            ("event.data.a not in [event.data.b]", {"f0": True}),
            ("not event.data.a not in [event.data.b]", {"f0": False}),
            ("'x' in ['x']", {"f0": True}),
            ("event.data.a in event.data.b", {"f0": True}),
            ("event.data.a and not event.data.b", {"$and": [{"f0": True}, {"f1": False}]}),
            (
                "not (event.data.a == 1 or event.data.b == 2)",
                {
                    "$and": [
                        {"$or": [{"$neq": {"f0t": "n"}}, {"$neq": {"f0n": 1}}]},
                        {"$or": [{"$neq": {"f1t": "n"}}, {"$neq": {"f1n": 2}}]},
                    ]
                },
            ),
            ("event.data.a + 1 > 2", {"$gt": {"f0n": 2}}),
        ],
    )
    def test_pattern(self, text: str, pattern: dict[str, Any], scope_factory: ScopeFactory) -> None:
        assert to_pattern(parse(text), Compiler(scope_factory("x.y"))).pattern == pattern

    @pytest.mark.parametrize(
        ("text", "data", "message"),
        [
            ("event.data.a == 3", {"a": 3}, {"sid": "0", "k": 1, "f0t": "n", "f0n": 3}),
            ("event.data.a == 3", {}, {"sid": "0", "k": 1, "f0t": "z"}),
            ("event.data.a == 3", {"a": None}, {"sid": "0", "k": 1, "f0t": "z"}),
            ("event.data.a + 1 > 2", {"a": 4}, {"sid": "0", "k": 1, "f0t": "n", "f0n": 5}),
            ("event.data.a + 1 > 2", {"a": "x"}, {"sid": "0", "k": 1, "f0t": "z"}),
            ("event.data.a == event.data.b", {}, {"sid": "0", "k": 1, "f0": True}),
            ("event.data.a", {"a": "yes"}, {"sid": "0", "k": 1, "f0": True}),
            ("event.data.a", {"a": 0}, {"sid": "0", "k": 1, "f0": False}),
            ("true", {"a": 1}, {"sid": "0", "k": 1}),
            ("event.data.a == true", {"a": False}, {"sid": "0", "k": 1, "f0t": "b", "f0b": False}),
            ("event.data.a == 3", {"a": 2.5}, {"sid": "0", "k": 1, "f0t": "n", "f0n": 2.5}),
            ("event.data.a == 3", {"a": 10**20}, {"sid": "0", "k": 1, "f0t": "n", "f0n": 5e14}),
            ("event.data.a == 3", {"a": -1e300}, {"sid": "0", "k": 1, "f0t": "n", "f0n": -5e14}),
            ("event.data.a == 3", {"a": 1e-9}, {"sid": "0", "k": 1, "f0t": "n", "f0n": 0.0005}),
            ("event.data.a == 3", {"a": float("nan")}, {"sid": "0", "k": 1, "f0t": "o"}),
            ("event.data.a == 3", {"a": [1]}, {"sid": "0", "k": 1, "f0t": "o"}),
            ("event.data.a == 3", {"a": 'q"\\\nü'}, {"sid": "0", "k": 1, "f0t": "s", "f0s": 'q"\\\nü'}),
        ],
    )
    def test_message(
        self,
        text: str,
        data: dict[str, Any],
        message: dict[str, Any],
        scope_factory: ScopeFactory,
        context_factory: ContextFactory,
    ) -> None:
        pattern = to_pattern(parse(text), Compiler(scope_factory("x.y")))
        assert json.loads(pattern.message_json(context_factory(data))) == message
        # The text posted is compact JSON of exactly this, in this order, as json.dumps would write it.
        expected = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        assert pattern.message_json(context_factory(data)) == expected

    def test_a_condition_too_large_for_durable_rules_is_decided_by_recovery(
        self, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        text = " and ".join(f"event.data.a != {i}" for i in range(8))  # 8 $or and 7 $and: 15
        shown = str(to_pattern(parse(text), Compiler(scope_factory("x.y"))).pattern)
        assert shown.count("'$and'") + shown.count("'$or'") == 15  # at the limit: left to durable-rules
        pattern = to_pattern(parse(text + " and event.data.b"), Compiler(scope_factory("x.y")))
        assert pattern.pattern == {"f0": True}
        assert json.loads(pattern.message_json(context_factory({"a": 9, "b": 1}))) == {"sid": "0", "k": 1, "f0": True}
        assert json.loads(pattern.message_json(context_factory({"a": 7, "b": 1})))["f0"] is False
        assert json.loads(pattern.message_json(context_factory({"a": 9, "b": 0})))["f0"] is False

    def test_features_are_computed_by_the_compiler(
        self, scope_factory: ScopeFactory, context_factory: ContextFactory
    ) -> None:
        scope = scope_factory("x.y")
        pattern = to_pattern(parse('count("service.call", 7d) >= 3 and customer.tier in ["gold"]'), Compiler(scope))
        assert pattern.pattern == {"$and": [{"$gte": {"f0n": 3}}, {"f1s": "gold"}]}
        assert json.loads(pattern.message_json(context_factory(profile={"tier": "gold"}))) == {
            "sid": "0",
            "k": 1,
            "f0t": "n",
            "f0n": 0,
            "f1t": "s",
            "f1s": "gold",
        }


# ---------------------------------------------------------------------------------------------- agreement

FIELDS = ("event.data.a", "event.data.b", "event.data.c")
MISSING = object()

_ints = st.integers(-3, 3)
_strings = st.text(alphabet="ab1", max_size=2)
_values = st.one_of(st.just(MISSING), st.none(), _ints, _strings)
_data = st.fixed_dictionaries({"a": _values, "b": _values, "c": _values}).map(
    lambda d: {k: v for k, v in d.items() if v is not MISSING}
)
_constants = st.one_of(_ints, st.sampled_from([1.5, -0.5]), _strings, st.none())


def _lit(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


_fields = st.sampled_from(FIELDS)
_free = st.one_of(_fields, _fields.map(lambda f: f"coalesce({f}, 0)"))  # static type any
_sums = _fields.map(lambda f: f"({f} + 1)")  # static type number: compared with numbers only
_numbers = st.one_of(_ints, st.sampled_from([1.5, -0.5]), st.none())
_comparison_ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


@st.composite
def _sides(draw: st.DrawFn) -> tuple[str, str]:
    """A non-constant side and a constant it may be compared with."""
    if draw(st.booleans()):
        return draw(_free), _lit(draw(_constants))
    return draw(_sums), _lit(draw(_numbers))


@st.composite
def _atoms(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["left", "right", "two", "in", "in-mixed", "const", "bare", "bool"]))
    op = draw(_comparison_ops)
    side, constant = draw(_sides())
    if kind == "left":
        return f"{side} {op} {constant}"
    if kind == "right":
        return f"{constant} {op} {side}"
    if kind == "two":
        return f"{side} {op} {draw(st.one_of(_free, _sums))}"
    negation = draw(st.sampled_from(["", "not "]))
    if kind == "in":
        items = ", ".join(_lit(v) for v in draw(st.lists(_constants, max_size=3)))
        return f"{side} {negation}in [{items}]"
    if kind == "in-mixed":
        items = [_lit(v) for v in draw(st.lists(_constants, max_size=2))] + [draw(_fields)]
        return f"{constant} {negation}in [{', '.join(items)}]"
    if kind == "const":
        return f"{draw(_ints)} {op} {draw(_ints)}"
    if kind == "bare":
        return draw(_fields)
    return draw(st.sampled_from(["true", "false"]))


_conditions = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        inner.map(lambda c: f"not ({c})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
    ),
    max_leaves=4,
)


class TestAgreement:
    """The key property: a condition matches in durable-rules exactly when the reference evaluator says true."""

    @settings(max_examples=150, deadline=None)
    @given(conditions=st.lists(_conditions, min_size=1, max_size=3), datas=st.lists(_data, min_size=1, max_size=4))
    def test_random_conditions(
        self, durable: DurableWorker, conditions: list[str], datas: list[dict[str, Any]]
    ) -> None:
        compiler = Compiler(make_scope("x.y"))
        compiled = []
        for text in conditions:
            node = parse(text)
            compiled.append((text, compiler.compile(node), to_pattern(node, compiler)))
        contexts = [make_context(data) for data in datas]
        posts = [(i, p.message_json(ctx)) for i, (_, _, p) in enumerate(compiled) for ctx in contexts]
        got = durable.run([p.pattern for _, _, p in compiled], posts)
        cases = [
            (text, ref, p, data, ctx) for text, ref, p in compiled for data, ctx in zip(datas, contexts, strict=True)
        ]
        for (text, reference, pattern, data, ctx), result in zip(cases, got, strict=False):
            _agree(text, data, bool(reference.fn(ctx)), result, pattern.pattern, pattern.message_json(ctx))

    @pytest.mark.parametrize(
        ("text", "datas"),
        [
            ("event.data.a == 1", [{"a": 1}, {"a": 2}, {"a": 1.0}, {}]),
            ("event.data.a != 'x'", [{"a": "x"}, {"a": "y"}, {}]),
            ("event.data.a > 1", [{"a": 2}, {"a": 1}, {}]),
            ("not event.data.a > 1", [{"a": 1}, {"a": 2}, {}]),
            ("1 >= event.data.a", [{"a": 1}, {"a": 2}, {"a": None}]),
            ("event.data.a in ['x', 'y']", [{"a": "y"}, {"a": "z"}, {}]),
            ("event.data.a not in ['x', 'y']", [{"a": "y"}, {"a": "z"}, {}]),
            ("event.data.a == event.data.b", [{"a": None}, {"a": 1, "b": 1}, {"a": 1, "b": "1"}]),
            ("event.data.a == 1 and event.data.b == null", [{"a": 1}, {"a": 1, "b": 2}]),
            ("event.data.a == null or event.data.b == 1", [{"a": 2, "b": 1}, {"a": 2}, {}]),
            ("not (event.data.a != null)", [{"a": None}, {}, {"a": 0}]),
            ("event.data.a in [null, 1]", [{}, {"a": 1}, {"a": 2}]),
        ],
    )
    def test_known_cases(self, durable: DurableWorker, text: str, datas: list[dict[str, Any]]) -> None:
        _check(durable, text, datas)

    @pytest.mark.parametrize(
        ("text", "datas"),
        [
            ("event.data.a == null", [{}]),
            ("event.data.a in [null]", [{}]),
            ("not event.data.a != null", [{"a": None}]),
            ("event.data.a != 'x'", [{}, {"a": "y"}]),
            ("not event.data.a > 1", [{}, {"a": 1}]),
            ("event.data.a not in ['x', 'y']", [{}, {"a": "z"}]),
            ("event.data.a == null or event.data.b == 1", [{"a": 2, "b": 1}]),
        ],
    )
    def test_absent_fields_do_not_hang(self, durable: DurableWorker, text: str, datas: list[dict[str, Any]]) -> None:
        # durable-rules 2.0.28 spins forever (holding the GIL) on a rule that fires with a $nex-only branch
        _check(durable, text, datas)

    @pytest.mark.parametrize(
        ("text", "datas"),
        [
            # durable-rules 2.0.28 itself coerces "1" to 1, compares strings with numbers, and may reuse the
            # number of the previous message for a string
            ("event.data.a == 1", [{"a": 1}, {"a": "1"}, {"a": ""}]),
            ("event.data.a != 1", [{"a": 1}, {"a": "1"}]),
            ("event.data.a < 'b'", [{"a": "a"}, {"a": 1}]),
            ("event.data.a > 1", [{"a": 2}, {"a": "b"}]),
            ("not event.data.a > 1", [{"a": 2}, {"a": "b"}]),
            ("event.data.a in [1]", [{"a": 1}, {"a": "1"}]),
            ("event.data.a == 'x'", [{"a": ["x"]}, {"a": {"x": 1}}]),
        ],
    )
    def test_values_of_another_type(self, durable: DurableWorker, text: str, datas: list[dict[str, Any]]) -> None:
        _check(durable, text, datas)

    @pytest.mark.parametrize(
        ("text", "datas"),
        [
            ("event.data.a == 1", [{"a": True}]),
            ("event.data.a != 0", [{"a": False}]),
            ("event.data.a in [0]", [{"a": False}]),
            ("event.data.a > 0", [{"a": True}]),
            ("event.data.a == true", [{"a": 1}, {"a": True}]),
        ],
    )
    def test_bools_against_numbers(self, durable: DurableWorker, text: str, datas: list[dict[str, Any]]) -> None:
        _check(durable, text, datas)

    def test_empty_string_ordering(self, durable: DurableWorker) -> None:
        # Python orders "" before " " and "!"; durable-rules 2.0.28 orders "" as if it were '"'
        _check(durable, "event.data.a < ' '", [{"a": ""}])
        _check(durable, "event.data.a < '!'", [{"a": ""}])

    @pytest.mark.parametrize(
        "text",
        [
            " and ".join(["event.data.a > 0"] * 17),
            " or ".join(f"event.data.a == {i}" for i in range(17)),
            " and ".join(f"event.data.a != {i}" for i in range(9)),
            "event.data.a > 0 and (" * 8 + "event.data.b > 0 or (" * 8 + "true" + ")" * 16,
        ],
        ids=["17-and", "17-or", "9-not-equal", "nested"],
    )
    def test_conditions_beyond_durable_rules_limits(self, durable: DurableWorker, text: str) -> None:
        # durable-rules 2.0.28 refuses a pattern of more than 15 $and/$or (error 113, "expression limit")
        datas = [{"a": 1, "b": 1}, {"a": 20, "b": 0}, {"a": 0, "b": 1}, {"a": 10}, {}, {"a": "x"}]
        _check(durable, text, datas)

    @pytest.mark.parametrize(
        ("text", "datas"),
        [
            ("event.data.a > 0", [{"a": 1e16}]),  # json.dumps writes 1e+16: durable-rules refuses the event
            ("event.data.a > 0", [{"a": 0.0000001}]),  # 1e-07
            ("event.data.a / 1000 > 0", [{"a": 0.001}]),  # a feature of 1e-06
            ("event.data.a < 0.0000001", [{"a": 0}]),  # a constant of 1e-07: durable-rules refuses the ruleset
            ("event.data.a == 9007199254740992", [{"a": 100000000000000000000}, {"a": 2**53}]),  # data beyond int64
        ],
    )
    def test_number_edges(self, durable: DurableWorker, text: str, datas: list[dict[str, Any]]) -> None:
        _check(durable, text, datas)
