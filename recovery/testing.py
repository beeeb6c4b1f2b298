"""Playbook unit tests (`recovery test`), in the spirit of `promtool test rules`: each case is replayed
(`replay.py`) through an engine of its playbook (and the playbooks that inhibit it, whose own effects are not
compared), on an in-memory store.

A test file (`NAME.test.yaml`, next to the playbooks) names one playbook and lists cases: events at times
relative to a start, the effects expected (all of them, in any order, each matched on the fields given) and
effect patterns that must not appear. An expectation names fields of the effect models (`effects.py`), and
`FIELD_contains` for their text fields: any other key is a located problem. A failing case says, for each expectation
not met, how the nearest effect raised differs from it. See docs/playbooks.md.
"""

from __future__ import annotations

import io
import json
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recovery.effects import Effect, Gesture, Task
from recovery.engine import Engine
from recovery.engine.cases import WITHHELD
from recovery.events import EVENT_TYPE_PATTERN, Event
from recovery.exceptions import EventError, PlaybookError, Problem
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import find_files, load_document, load_playbooks, unknown_key, validation_problems
from recovery.playbooks.source import Document, Loc
from recovery.replay import replay
from recovery.store import MemoryStore
from recovery.times import DURATION_RE, END_TS, FIRST_TS, format_time, parse_duration, parse_time

DEFAULT_START = "2026-01-05T09:00:00Z"
_TIME_FIELDS = ("due_at", "created_at")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TestEvent(_Strict):
    at: str = Field(description="A duration after the start (e.g. 7d, 2h30m) or an RFC 3339 time")
    type: Annotated[str, Field(pattern=EVENT_TYPE_PATTERN)]
    customer_id: str | None = None
    id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Expectation(_Strict):
    task: dict[str, Any] | None = None
    gesture: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        if (self.task is None) == (self.gesture is None):
            raise ValueError("an expectation is either a task or a gesture")
        return self

    @property
    def kind(self) -> Literal["task", "gesture"]:
        return "task" if self.task is not None else "gesture"

    @property
    def fields(self) -> dict[str, Any]:
        return self.task if self.task is not None else (self.gesture or {})


class TestCase(_Strict):
    name: str = Field(min_length=1)
    events: list[TestEvent] = Field(default_factory=list)
    until: str | None = None
    expect: list[Expectation] = Field(default_factory=list)
    absent: list[Expectation] = Field(default_factory=list)
    withheld: list[Expectation] | None = Field(
        default=None,
        description="The effects kept, not raised (shadow mode, a customer held out): when given, all of them",
    )


class TestFile(_Strict):
    playbook: str
    start: str = DEFAULT_START
    tests: list[TestCase] = Field(min_length=1)


@dataclass
class CaseResult:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _time(text: str) -> float:
    """An RFC 3339 time as epoch seconds; a ValueError saying why it is not one, or not one RFC 3339 writes in UTC."""
    ts = parse_time(text)
    if not FIRST_TS <= ts < END_TS:
        raise ValueError(f"'{text}' is not within the years 0001 to 9999 in UTC")
    return ts


def _instant(value: str, start: float) -> float:
    """`value` as epoch seconds: a duration after `start`, or an RFC 3339 time; a ValueError saying why not."""
    text = str(value).strip()
    if not DURATION_RE.match(text.lstrip("+")):
        return _time(text)
    ts = start + parse_duration(text.lstrip("+"))
    if not ts < END_TS:
        raise ValueError(f"'{text}' is not within the years 0001 to 9999 in UTC")
    return ts


def _time_problems(doc: Document, spec: TestFile) -> list[Problem]:
    """Every time of a test file that is not one (the start, events' `at`, `until`, expected `due_at`...), located."""
    try:
        start = _time(spec.start)
    except ValueError as exc:
        return [doc.problem(("start",), str(exc))]
    problems: list[Problem] = []

    def check(value: str, loc: Loc) -> None:
        try:
            _instant(value, start)
        except ValueError as exc:
            problems.append(doc.problem(loc, str(exc)))

    for i, case in enumerate(spec.tests):
        for j, ev in enumerate(case.events):
            check(ev.at, ("tests", i, "events", j, "at"))
        if case.until is not None:
            check(case.until, ("tests", i, "until"))
        for group, expectations in (
            ("expect", case.expect),
            ("absent", case.absent),
            ("withheld", case.withheld or []),
        ):
            for k, exp in enumerate(expectations):
                for key in _TIME_FIELDS:
                    want = exp.fields.get(key)
                    if isinstance(want, str):
                        check(want, ("tests", i, group, k, exp.kind, key))
    return problems


def _is_text(annotation: Any) -> bool:
    """Whether a field's type holds text (`str`, a `Literal` of strings, `str | None`)."""
    origin = typing.get_origin(annotation)
    options = typing.get_args(annotation) if origin in (Literal, typing.Union, types.UnionType) else (annotation,)
    return any(option is str or isinstance(option, str) for option in options)


def _keys(model: type[BaseModel]) -> list[str]:
    """The keys an expectation of `model` may name: its fields, then FIELD_contains for its text fields."""
    text = [name for name, info in model.model_fields.items() if _is_text(info.annotation)]
    return [*model.model_fields, *(f"{name}_contains" for name in text)]


EXPECTATION_KEYS: dict[str, list[str]] = {"task": _keys(Task), "gesture": _keys(Gesture)}


def _key_problems(doc: Document, spec: TestFile) -> list[Problem]:
    """Every key of an expectation (in `expect` or `absent`) that names nothing of its effect, located at the key: a
    misspelt key would otherwise make an `absent` entry match nothing, and the case pass."""
    problems = []
    for i, case in enumerate(spec.tests):
        for group, expectations in (
            ("expect", case.expect),
            ("absent", case.absent),
            ("withheld", case.withheld or []),
        ):
            for k, exp in enumerate(expectations):
                for key in exp.fields:
                    if key not in EXPECTATION_KEYS[exp.kind]:
                        loc = ("tests", i, group, k, exp.kind, key)
                        problems.append(doc.problem(loc, _unknown(key, exp.kind), key=True))
    return problems


def _unknown(key: str, kind: str) -> str:
    """What is wrong with `key`, which an expectation of `kind` does not know."""
    other = "gesture" if kind == "task" else "task"
    if key in EXPECTATION_KEYS[other]:
        return f"unknown key '{key}': a field of a {other}, not of a {kind}"
    name = key.removesuffix("_contains")
    if name != key and name in EXPECTATION_KEYS[kind]:
        return f"unknown key '{key}': '{name}' is not text (FIELD_contains is for text fields): check '{name}' itself"
    return unknown_key(key, EXPECTATION_KEYS[kind])


def _differences(effect: Effect, exp: Expectation, start: float) -> list[str]:
    """How `effect` differs from the expectation, one `FIELD: expected X, got Y` per field not met (none: a match)."""
    data = effect.model_dump(mode="json")
    found = []
    for key, want in exp.fields.items():
        if key not in data and key.endswith("_contains"):
            name = key.removesuffix("_contains")
            got = data.get(name)
            if not isinstance(got, str) or str(want) not in got:
                found.append(f"{name}: expected to contain {_show(str(want))}, got {_show(got)}")
            continue
        if key not in data:
            found.append(f"{key}: not a field of a {effect.kind}")
            continue
        got, written = data[key], ""
        if key in _TIME_FIELDS and isinstance(want, str):
            written, want = f" ({want})", format_time(_instant(want, start))
        if isinstance(got, float) and isinstance(want, int | float):
            if abs(got - want) > 1e-9:
                found.append(f"{key}: expected {_show(want)}, got {_show(got)}")
        elif got != want:
            found.append(f"{key}: expected {_show(want)}{written}, got {_show(got)}")
    return found


def _matches(effect: Effect, exp: Expectation, start: float) -> bool:
    return effect.kind == exp.kind and not _differences(effect, exp, start)


_BARE = re.compile(r"[\w.:@+-]+")


def _show(value: Any) -> str:
    """A value in a failure: a word as it is (`P1`), anything else as JSON (`"3 calls"`, `["c1", "c2"]`, `null`)."""
    if isinstance(value, str) and _BARE.fullmatch(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _not_raised(exp: Expectation, effects: list[Effect], remaining: list[Effect], start: float) -> str:
    """The failure of an expectation no effect met: what differs in the nearest one raised (the fewest fields; the
    first raised of those), among those no other expectation took."""
    message = f"expected {_describe(exp)}: not raised"
    candidates = [e for e in remaining if e.kind == exp.kind]
    if not candidates:
        if any(e.kind == exp.kind for e in effects):
            return f"{message} (every {exp.kind} raised met another expectation)"
        return f"{message} (no {exp.kind} was raised)"
    nearest = min((_differences(e, exp, start) for e in candidates), key=len)
    return "\n  ".join([f"{message}; the nearest {exp.kind} raised differs in:", *nearest])


def _describe(exp: Expectation) -> str:
    return f"{exp.kind} {exp.fields}"


def _short(effect: Effect) -> str:
    keys = ("customer_id", "queue", "priority", "due_at", "type", "amount", "status")
    data = effect.model_dump(mode="json")
    return f"{effect.kind} " + str({k: data[k] for k in keys if k in data})


def run_case(
    pb: CompiledPlaybook, case: TestCase, start: float, file: str, inhibitors: Sequence[CompiledPlaybook] = ()
) -> CaseResult:
    """One case: its events through an engine of `pb` and the playbooks that inhibit it (their own effects are not
    compared: they are tested in their own files)."""
    result = CaseResult(file, case.name)
    lines = []
    for i, ev in enumerate(case.events, start=1):
        raw: dict[str, Any] = {
            "id": ev.id or f"e{i}",
            "type": ev.type,
            "occurred_at": format_time(_instant(ev.at, start)),
            "data": ev.data,
        }
        if ev.customer_id is not None:
            raw["customer_id"] = ev.customer_id
        try:
            lines.append(Event.from_dict(raw).model_dump_json())
        except (EventError, ValueError) as exc:
            result.failures.append(f"event {i}: {exc}")
    if result.failures:
        return result
    store = MemoryStore()
    engine = Engine([pb, *inhibitors], store)
    out, err = io.StringIO(), io.StringIO()
    until = _instant(case.until, start) if case.until else None
    replay(lines, engine, out, err, until=until)
    effects = [e for e in store.effects() if e.playbook == pb.id]
    remaining = list(effects)
    for exp in case.expect:
        found = next((e for e in remaining if _matches(e, exp, start)), None)
        if found is None:
            result.failures.append(_not_raised(exp, effects, remaining, start))
        else:
            remaining.remove(found)
    for extra in remaining:
        result.failures.append(f"unexpected {_short(extra)}")
    for exp in case.absent:
        for e in effects:
            if _matches(e, exp, start):
                result.failures.append(f"raised {_short(e)}, which matches absent {_describe(exp)}")
    if case.withheld is not None:
        _withheld(result, pb, case.withheld, store, start)
    if result.failures:
        result.failures.extend(_withheld_hints(pb, case.expect, effects, start))
    pending = [d.due for d in store.pending_deadlines() if d.playbook == pb.id]
    if result.failures and pending and case.until is None:
        due = min(pending)
        result.failures.append(
            f"hint: the deadline at {format_time(due)} is after the last event, so the clock never passed it: add "
            f"`until:` after it (e.g. `until: {format_time(due + 1)}`)"
        )
    return result


def _withheld(
    result: CaseResult, pb: CompiledPlaybook, expected: list[Expectation], store: MemoryStore, start: float
) -> None:
    """Each expectation of `withheld` matches one effect `pb` kept in shadow mode or for a held-out customer (in
    any order), and every such effect one expectation."""
    kept = store.muted(None, -math.inf, math.inf, 1_000_000)
    remaining = [m.effect for m in kept if m.effect.playbook == pb.id and m.reason in WITHHELD]
    for exp in expected:
        found = next((e for e in remaining if _matches(e, exp, start)), None)
        if found is None:
            result.failures.append(f"expected {_describe(exp)}: not withheld")
        else:
            remaining.remove(found)
    for extra in remaining:
        result.failures.append(f"unexpected {_short(extra)} (withheld)")


def _withheld_hints(pb: CompiledPlaybook, expect: list[Expectation], effects: list[Effect], start: float) -> list[str]:
    """Why an expected effect was not raised, when the playbook is in shadow mode or its customer held out."""
    missing = [exp for exp in expect if not any(_matches(e, exp, start) for e in effects)]
    if not missing:
        return []
    if pb.mode == "shadow":
        return ["hint: the playbook is in shadow mode: its effects are kept, not raised; list them under `withheld:`"]
    held = sorted({c for exp in missing if isinstance(c := exp.fields.get("customer_id"), str) and pb.held_out(c)})
    return [f"hint: {c} is in the playbook's holdout: its effects are kept, not raised (see `withheld:`)" for c in held]


def load_test_file(path: Path) -> tuple[Document, TestFile]:
    """Read and validate a test file's structure and times; raises PlaybookError with located problems."""
    doc = load_document(path)
    try:
        spec = TestFile.model_validate(doc.data)
    except ValidationError as exc:
        raise PlaybookError(validation_problems(doc, exc, TestFile)) from None
    problems = _time_problems(doc, spec) + _key_problems(doc, spec)
    if problems:
        raise PlaybookError(sorted(problems, key=lambda p: (p.line, p.column)))
    return doc, spec


def run_test_file(path: Path, playbooks: dict[str, CompiledPlaybook] | None = None) -> list[CaseResult]:
    """Run every case of one test file; raises PlaybookError when the file itself is invalid."""
    doc, spec = load_test_file(path)
    if playbooks is None:
        found, problems = load_playbooks([path.parent])
        if problems:
            raise PlaybookError(problems)
        playbooks = {pb.id: pb for pb in found}
    pb = playbooks.get(spec.playbook)
    if pb is None:
        raise PlaybookError([doc.problem(("playbook",), f"no playbook '{spec.playbook}' in {path.parent}")])
    start = parse_time(spec.start)  # checked by load_test_file, as every time of the file
    inhibitors = [playbooks[other] for other, _ in pb.inhibited_by if other in playbooks]
    return [run_case(pb, case, start, str(path), inhibitors) for case in spec.tests]


def run_tests(paths: list[str]) -> tuple[list[CaseResult], list[Problem]]:
    files, problems = find_files(paths, tests=True)
    results: list[CaseResult] = []
    if not files and not problems:
        problems.extend(Problem(p, 1, 1, "no test files (*.test.yaml) found here") for p in paths)
    for path in files:
        try:
            results.extend(run_test_file(path))
        except PlaybookError as exc:
            problems.extend(exc.problems)
    return results, problems
