"""`recovery validate` as an ops person meets it: exit code 1 and exact `FILE:LINE:COL: message` lines.

Every fixture under fixtures/invalid/ holds one kind of mistake. The CLI runs in a subprocess from the
repository root, so the file names in the expected lines are relative to it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "invalid"
RULES = ROOT / "rules"

_FUNCTIONS = (
    "count, had, sum, distinct, values, last, min, max, floor, ceil, round, abs, if, coalesce, lower, upper, seconds, "
    "minutes, hours, days"
)
_CUSTOMER_FIELDS = "id, tier, segment, region, annual_value, name, email, phone, language"


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: from another folder, `recovery` would be whichever checkout the virtualenv has installed
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# fixture (file, or folder) -> the lines `recovery validate` must print, each without its "FILE:" prefix.
# `{dir}` stands for the fixture folder, relative to the repository root.
CASES: list[Any] = [
    pytest.param(
        "unknown_key.yaml",
        [
            "10:7: missing required key 'queue'",
            "10:7: unknown key 'qeue' (did you mean 'queue'?)",
        ],
        id="unknown-key",
    ),
    # recovery prints `actions.0.task.priority.0.then: ...`: `.0.then` is the internal form of `priority: P5`,
    # which the author never wrote.
    pytest.param(
        "wrong_type_priority.yaml",
        ["11:17: actions.0.task.priority: Input should be 'P1', 'P2', 'P3' or 'P4' (got 'P5')"],
        id="wrong-type-priority",
    ),
    pytest.param(
        "wrong_type_due_in.yaml",
        ["12:15: actions.0.task.due_in: a duration is written with a unit, e.g. 48h, 7d or 2h30m (got 24)"],
        id="wrong-type-due-in",
    ),
    pytest.param(
        "bad_duration.yaml",
        [
            "8:13: trigger.absence.within: '2 days' is not a duration: write a number and a unit "
            "(ms, s, m, h, d, w), e.g. 48h, 7d, 2h30m (got '2 days')"
        ],
        id="bad-duration",
    ),
    pytest.param(
        "unknown_function.yaml",
        [f"5:7: unknown function 'cuont' (did you mean 'count'?); functions: {_FUNCTIONS}"],
        id="unknown-function",
    ),
    pytest.param(
        "unknown_field.yaml",
        [
            "7:33: unknown data field 'resaon' for service.call (did you mean 'reason'?); known fields: reason",
            f"12:26: unknown customer field 'teir' (did you mean 'tier'?); known fields: {_CUSTOMER_FIELDS}",
        ],
        id="unknown-field",
    ),
    pytest.param(
        "duration_vs_number.yaml",
        [
            "9:16: cannot compare duration with number: write the number with a unit, e.g. 2h or 7d, "
            "or convert with hours(...)"
        ],
        id="duration-vs-number",
    ),
    pytest.param(
        "expression_syntax.yaml",
        ["7:36: unexpected character '='"],
        id="expression-syntax",
    ),
    # recovery prints `7:26: unexpected 'customer'`: the grammar lets the second `and` be read as a name, so
    # the error lands one word too late.
    pytest.param(
        "expression_keyword_as_name.yaml",
        ["7:22: unexpected 'and'"],
        id="expression-keyword-as-name",
    ),
    # recovery prints column 60: it counts the two characters of each '' escape as one.
    pytest.param(
        "expression_column_after_escape.yaml",
        [f"7:62: unknown customer field 'teir' (did you mean 'tier'?); known fields: {_CUSTOMER_FIELDS}"],
        id="expression-column-after-escape",
    ),
    # recovery also prints `unknown name 'calls'` at 7:7, 13:33 and 14:52: the let exists, it only failed.
    pytest.param(
        "let_error_cascade.yaml",
        [f"6:10: unknown function 'cuont' (did you mean 'count'?); functions: {_FUNCTIONS}"],
        id="let-error-cascade",
    ),
    pytest.param(
        "template_error.yaml",
        ["13:33: unknown name 'cals' (did you mean 'calls'?)"],
        id="template-error",
    ),
    # recovery prints `13:26: invalid YAML: expected <block end>, but found '<scalar>'`.
    pytest.param(
        "template_unquoted.yaml",
        ["13:14: a value that starts with '{{' must be quoted (YAML reads '{' as the start of a mapping)"],
        id="template-unquoted",
    ),
    pytest.param(
        "unsafe_tag.yaml",
        ["3:14: YAML tag '!!python/object/apply:os.system' is not allowed: playbooks are plain data"],
        id="unsafe-tag",
    ),
    pytest.param(
        "duplicate_key.yaml",
        ["14:7: duplicate key 'due_in' (first at line 12)"],
        id="duplicate-key",
    ),
    pytest.param(
        "missing_required_key.yaml",
        ["10:7: missing required key 'due_in'"],
        id="missing-required-key",
    ),
    pytest.param(
        "trigger_both.yaml",
        ["4:3: trigger: a trigger names exactly one of: event, sequence, absence (got event, sequence)"],
        id="trigger-both",
    ),
    # recovery prints `invalid YAML: but found another document` (PyYAML's context is dropped).
    pytest.param(
        "multi_document.yaml",
        ["7:1: invalid YAML: expected a single document in the stream, but found another document"],
        id="multi-document",
    ),
    pytest.param(
        "duplicate_ids",
        ["2:5: duplicate playbook id 'repeat-caller' (also in {dir}/a.yaml)"],
        id="duplicate-ids",
    ),
]


def _expected(fixture: str, lines: list[str]) -> list[str]:
    target = FIXTURES / fixture
    prefix = rel(target / "b.yaml") if target.is_dir() else rel(target)
    return [f"{prefix}:{line.replace('{dir}', rel(target))}" for line in lines]


@pytest.mark.parametrize(("fixture", "lines"), CASES)
def test_invalid_fixture_prints_exact_problems(fixture: str, lines: list[str]) -> None:
    result = run_cli("validate", rel(FIXTURES / fixture))
    assert result.stdout.splitlines() == _expected(fixture, lines)
    assert result.returncode == 1


def test_every_fixture_has_a_case() -> None:
    covered = {case.values[0] for case in CASES}
    present = {p.name for p in FIXTURES.iterdir() if p.suffix == ".yaml" or p.is_dir()}
    assert present == covered


def test_problems_of_several_files_are_all_printed() -> None:
    files = ["wrong_type_due_in.yaml", "template_error.yaml"]
    result = run_cli("validate", *(rel(FIXTURES / f) for f in files))
    assert result.stdout.splitlines() == [
        f"{rel(FIXTURES / 'wrong_type_due_in.yaml')}:12:15: actions.0.task.due_in: a duration is written with a "
        "unit, e.g. 48h, 7d or 2h30m (got 24)",
        f"{rel(FIXTURES / 'template_error.yaml')}:13:33: unknown name 'cals' (did you mean 'calls'?)",
    ]
    assert result.returncode == 1


def test_paths_are_printed_as_given() -> None:
    result = run_cli("validate", "invalid/duplicate_key.yaml", cwd=FIXTURES.parent)
    assert result.stdout == "invalid/duplicate_key.yaml:14:7: duplicate key 'due_in' (first at line 12)\n"
    assert result.returncode == 1


def test_missing_path_is_a_problem() -> None:
    result = run_cli("validate", "no/such/dir")
    assert result.stdout == "no/such/dir:1:1: no such file or directory\n"
    assert result.returncode == 1


def test_shipped_rules_are_valid() -> None:
    result = run_cli("validate", "rules")
    playbooks = [p for p in RULES.glob("*.yaml") if not p.name.endswith(".test.yaml")]
    assert result.stdout == ""
    assert result.stderr == f"{len(playbooks)} playbook(s) valid\n"
    assert result.returncode == 0


# ------------------------------------------------------------------------------------------ nothing runs

_UNSAFE = """\
id: repeat-caller
trigger:
  event: service.call
description: {tag} ["touch {marker}"]
actions:
  - task: {{queue: care-callback, priority: P2, due_in: 24h, title: t, reason: r}}
"""


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/object/apply:subprocess.call",
    ],
)
def test_unsafe_tag_executes_nothing(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "unsafe.yaml").write_text(_UNSAFE.format(tag=tag, marker=marker), encoding="utf-8")
    result = run_cli("validate", "unsafe.yaml", cwd=tmp_path)
    assert result.stdout == f"unsafe.yaml:4:14: YAML tag '{tag}' is not allowed: playbooks are plain data\n"
    assert result.returncode == 1
    assert not marker.exists()


def test_unsafe_tag_fixture_executes_nothing() -> None:
    fixture = FIXTURES / "unsafe_tag.yaml"
    found = re.search(r'"touch ([^"]+)"', fixture.read_text(encoding="utf-8"))
    assert found is not None
    marker = Path(found.group(1))
    marker.unlink(missing_ok=True)
    for command in ("validate", "test"):
        result = run_cli(command, rel(FIXTURES / "unsafe_tag.yaml"))
        assert result.returncode == 1
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ schema


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def schema_errors(root: dict[str, Any], node: dict[str, Any], value: Any, where: str = "") -> list[str]:
    """The subset of JSON Schema that `recovery schema` uses: enough to tell whether a playbook fits."""
    node = _resolve(root, node)
    if "anyOf" in node:
        branches = [schema_errors(root, branch, value, where) for branch in node["anyOf"]]
        if any(not errors for errors in branches):
            return []
        return [f"{where or '/'}: matches no anyOf branch ({'; '.join(e[0] for e in branches)})"]
    errors: list[str] = []
    if "type" in node and not _type_ok(node["type"], value):
        shown = repr(value) if len(repr(value)) <= 40 else type(value).__name__
        return [f"{where or '/'}: expected {node['type']}, got {shown}"]
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{where}: {value!r} not in {node['enum']}")
    if isinstance(value, str):
        if "pattern" in node and not re.search(node["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {node['pattern']}")
        if len(value) < node.get("minLength", 0) or len(value) > node.get("maxLength", len(value)):
            errors.append(f"{where}: length of {value!r} out of bounds")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < node.get("minimum", value):
        errors.append(f"{where}: {value!r} below {node['minimum']}")
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0):
            errors.append(f"{where}: fewer than {node['minItems']} items")
        for i, item in enumerate(value):
            errors.extend(schema_errors(root, node.get("items", {}), item, f"{where}/{i}"))
    if isinstance(value, dict):
        errors.extend(f"{where}/{key}: required" for key in node.get("required", []) if key not in value)
        for key, item in value.items():
            if key in node.get("properties", {}):
                errors.extend(schema_errors(root, node["properties"][key], item, f"{where}/{key}"))
                continue
            pattern = next((p for p in node.get("patternProperties", {}) if re.search(p, key)), None)
            if pattern is not None:
                errors.extend(schema_errors(root, node["patternProperties"][pattern], item, f"{where}/{key}"))
            elif node.get("additionalProperties") is False:
                errors.append(f"{where}/{key}: not allowed")
    return errors


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = run_cli("schema")
    assert result.returncode == 0
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_schema_describes_the_top_level_keys(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == [
        "id",
        "version",
        "description",
        "enabled",
        "customers",
        "trigger",
        "let",
        "when",
        "cooldown",
        "inhibited_by",
        "mode",
        "holdout",
        "holdout_salt",
        "actions",
    ]
    assert schema["required"] == ["id", "trigger", "actions"]


def test_schema_catches_mistakes(schema: dict[str, Any]) -> None:
    doc = yaml.safe_load((FIXTURES / "unknown_key.yaml").read_text(encoding="utf-8"))
    errors = schema_errors(schema, schema, doc)
    assert len(errors) == 1
    assert "/actions/0/task/queue: required" in errors[0]


@pytest.mark.parametrize(
    "path", sorted(p for p in RULES.glob("*.yaml") if not p.name.endswith(".test.yaml")), ids=lambda p: p.name
)
def test_schema_accepts_the_shipped_playbooks(schema: dict[str, Any], path: Path) -> None:
    # `priority: P1` is valid for recovery (a shorthand for one case), so the schema must accept it too.
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert schema_errors(schema, schema, doc) == []


# ------------------------------------------------------------------------------------------ bounded input

# Playbooks that `validate` once accepted, or the tools crashed on (issue 15): each is one located problem, the
# same from `validate`, `test` and `replay`, and never a traceback.
_HOSTILE = """\
id: hostile
version: {version}
description: {description}
trigger:
  event: service.call
let:
  calls: count("service.call", {window})
{lets}when: {when}
actions:
  - task:
      queue: q
      priority: P2
      due_in: {due_in}
      title: "{{{{ calls }}}} calls"
      reason: r
  - gesture:
      type: apology
      amount: {amount}
      cap: {cap}
      reason: r
"""
_HOSTILE_FIELDS = {
    "version": "1",
    "description": "d",
    "window": "7d",
    "lets": "",
    "when": "calls > 0",
    "due_in": "24h",
    "amount": "5",
    "cap": "10",
}
_HOSTILE_TEST = """\
playbook: hostile
tests:
  - name: a call
    events: [{at: 0s, type: service.call, customer_id: C1}]
    expect: [{task: {queue: q}}, {gesture: {amount: 5}}]
"""
_CALL = '{"id": "c1", "type": "service.call", "occurred_at": "2026-11-02T09:00:00Z", "customer_id": "C1"}\n'
TOO_DEEP = "nested too deeply: at most 64 levels of mappings and lists"

HOSTILE_CASES: list[Any] = [
    pytest.param({"description": "[" * 500 + "x" + "]" * 500}, f"3:{14 + 63}: {TOO_DEEP}", id="nested-500-deep"),
    pytest.param(
        {"when": "-" * 64 + "calls > 0"},
        "8:70: expression nests too deeply: at most 64 levels",
        id="expression-65-deep",
    ),
    # calls is 1 level deep, v0 2, vK 2K + 2: v32 names v31, 64 levels deep, one level down
    pytest.param(
        {"lets": "  v0: calls\n" + "".join(f"  v{k}: v{k - 1} + 1\n" for k in range(1, 40)), "when": "v39 > 0"},
        "40:8: expression nests too deeply with the let values it uses ('v31' adds 64 levels): at most 64 levels "
        "in all",
        id="chain-of-40-lets",
    ),
    pytest.param(
        {"due_in": "3000000d"},
        "13:15: actions.0.task.due_in: '3000000d' is longer than 100 years (36525d) (got '3000000d')",
        id="due-in-3000000d",
    ),
    pytest.param(
        {"due_in": "9" * 400 + "h"},
        f"13:15: actions.0.task.due_in: '{'9' * 400}h' is longer than 100 years (36525d) (got '{'9' * 400}h')",
        id="due-in-400-digits",
    ),
    pytest.param(
        {"when": "calls > " + "1" * 1500},
        "8:15: whole number too large: at most 9007199254740992 (2**53) either way",
        id="literal-of-1500-digits",
    ),
    pytest.param(
        {"amount": "calls * 1" + "0" * 1500},
        "18:23: whole number too large: at most 9007199254740992 (2**53) either way",
        id="amount-of-1500-digits",
    ),
    pytest.param(
        {"version": "1" * 1500},
        "2:10: whole number too large: at most 9007199254740992 (2**53) either way",
        id="version-of-1500-digits",
    ),
    pytest.param({"cap": "1.0e+999"}, "19:12: not a finite number", id="cap-1e999"),
    pytest.param(
        {"window": "3000000d"},
        "7:32: '3000000d' is longer than 100 years (36525d)",
        id="window-3000000d",
    ),
]


def _hostile_folder(tmp_path: Path, fields: dict[str, str]) -> Path:
    (tmp_path / "hostile.yaml").write_text(_HOSTILE.format(**{**_HOSTILE_FIELDS, **fields}), encoding="utf-8")
    (tmp_path / "hostile.test.yaml").write_text(_HOSTILE_TEST, encoding="utf-8")
    (tmp_path / "events.jsonl").write_text(_CALL, encoding="utf-8")
    return tmp_path


def test_the_hostile_playbook_as_such_is_valid(tmp_path: Path) -> None:
    folder = _hostile_folder(tmp_path, {})
    assert run_cli("validate", ".", cwd=folder).returncode == 0
    test = run_cli("test", ".", cwd=folder)
    assert (test.stdout, test.returncode) == ("1 passed, 0 failed\n", 0)
    replay = run_cli("replay", "--rules", "hostile.yaml", "events.jsonl", cwd=folder)
    assert [json.loads(line)["kind"] for line in replay.stdout.splitlines()] == ["task", "gesture"]


@pytest.mark.parametrize(("fields", "problem"), HOSTILE_CASES)
def test_hostile_playbook_is_one_located_problem_everywhere(
    tmp_path: Path, fields: dict[str, str], problem: str
) -> None:
    folder = _hostile_folder(tmp_path, fields)
    line = f"hostile.yaml:{problem}\n"
    validate = run_cli("validate", "hostile.yaml", cwd=folder)
    assert (validate.stdout, validate.stderr, validate.returncode) == (line, "", 1)
    test = run_cli("test", ".", cwd=folder)
    assert (test.stdout, test.stderr, test.returncode) == (line + "0 passed, 1 failed\n", "", 1)
    replay = run_cli("replay", "--rules", "hostile.yaml", "events.jsonl", cwd=folder)
    assert (replay.stdout, replay.stderr, replay.returncode) == ("", line, 1)


_EVENTS = "    events: [{at: 0s, type: service.call, customer_id: C1}]"
_EVENTS_DEEP = "    events: [{at: 0s, type: service.call, customer_id: C1, data: {x: "
_EXPECT = "    expect: [{task: {queue: q}}, {gesture: {amount: 5}}]"
HOSTILE_TEST_CASES: list[Any] = [
    # levels: the file, tests, the case, events, the event, data, then x's brackets: the 59th is level 65
    pytest.param(
        (_EVENTS, _EVENTS_DEEP + "[" * 500 + "]" * 500 + "}}]"),
        f"4:{len(_EVENTS_DEEP) + 59}: {TOO_DEEP}",
        id="nested-500-deep",
    ),
    pytest.param(
        (_EVENTS, _EVENTS.replace("0s", "3000000d")),
        "4:19: '3000000d' is longer than 100 years (36525d)",
        id="at-3000000d",
    ),
    pytest.param(
        (_EXPECT, _EXPECT.replace("queue: q", "queue: q, due_at: tomorrow")),
        "5:40: 'tomorrow' is not an RFC 3339 timestamp",
        id="due-at-tomorrow",
    ),
    pytest.param(
        (_EXPECT, _EXPECT + "\n    until: 36500d\n  - {name: x, events: [], until: 36526d}"),
        "7:34: '36526d' is longer than 100 years (36525d)",
        id="until-36526d",
    ),
]


@pytest.mark.parametrize(("change", "problem"), HOSTILE_TEST_CASES)
def test_hostile_test_file_is_one_located_problem(tmp_path: Path, change: tuple[str, str], problem: str) -> None:
    assert change[0] in _HOSTILE_TEST
    folder = _hostile_folder(tmp_path, {})
    (folder / "hostile.test.yaml").write_text(_HOSTILE_TEST.replace(*change))
    line = f"hostile.test.yaml:{problem}\n"
    validate = run_cli("validate", ".", cwd=folder)
    assert (validate.stdout, validate.stderr, validate.returncode) == (line, "", 1)
    test = run_cli("test", ".", cwd=folder)
    assert (test.stdout, test.stderr, test.returncode) == (line + "0 passed, 1 failed\n", "", 1)
