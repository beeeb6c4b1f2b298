"""`recovery test`'s runner: test files next to the playbooks, each case replayed through its playbook alone."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from recovery.effects import Gesture, Task
from recovery.engine import Engine
from recovery.exceptions import PlaybookError
from recovery.playbooks.loader import load_playbook, load_playbooks_or_raise
from recovery.replay import replay
from recovery.store import MemoryStore
from recovery.testing import EXPECTATION_KEYS, load_test_file, run_test_file, run_tests
from tests.conftest import ROOT, RULES

CASE = """\
playbook: repeat-caller
start: 2026-01-05T09:00:00Z
tests:
  - name: three calls
    events:
      - {{at: 0s, id: c1, type: service.call, customer_id: C-1}}
      - {{at: 2h, id: c2, type: service.call, customer_id: C-1}}
      - {{at: 5h, id: c3, type: service.call, customer_id: C-1}}
{rest}
"""

CaseFileFactory = Callable[..., Path]


@pytest.fixture
def case_file_factory(tmp_path: Path) -> CaseFileFactory:
    """Writes `text` as a test file next to a copy of the shipped repeat-caller playbook (and the one inhibiting it);
    returns its path."""

    def make(text: str, name: str = "repeat-caller.test.yaml") -> Path:
        shutil.copy(RULES / "repeat-caller.yaml", tmp_path / "repeat-caller.yaml")
        shutil.copy(RULES / "outage-recovery.yaml", tmp_path / "outage-recovery.yaml")  # it inhibits repeat-caller
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


def test_the_shipped_tests_pass() -> None:
    results, problems = run_tests([str(RULES)])
    assert problems == []
    cases = sum(len(load_test_file(path)[1].tests) for path in RULES.glob("*.test.yaml"))
    assert cases > 50 and len(results) == cases  # every case of every file ran
    assert [f"{r.file}: {r.name}: {r.failures}" for r in results if not r.passed] == []


def test_an_expectation_met_passes_with_times_relative_to_the_start(case_file_factory: CaseFileFactory) -> None:
    rest = """\
    expect:
      - task: {customer_id: C-1, priority: P2, created_at: 5h, due_at: 29h, evidence: [c1, c2, c3]}"""
    [result] = run_test_file(case_file_factory(CASE.format(rest=rest)))
    assert (result.name, result.failures, result.passed) == ("three calls", [], True)


def test_a_missing_and_an_unexpected_effect_are_both_failures(case_file_factory: CaseFileFactory) -> None:
    rest = """\
    expect:
      - task: {customer_id: C-1, priority: P1}"""
    [result] = run_test_file(case_file_factory(CASE.format(rest=rest)))
    assert not result.passed
    assert result.failures[0].splitlines() == [
        "expected task {'customer_id': 'C-1', 'priority': 'P1'}: not raised; the nearest task raised differs in:",
        "  priority: expected P1, got P2",
    ]
    assert result.failures[1].startswith("unexpected task {'customer_id': 'C-1', 'queue': 'care-callback', ")
    assert len(result.failures) == 2


def test_an_effect_matching_an_absent_pattern_fails(case_file_factory: CaseFileFactory) -> None:
    rest = """\
    expect:
      - task: {customer_id: C-1}
    absent:
      - task: {title_contains: "3 calls"}"""
    [result] = run_test_file(case_file_factory(CASE.format(rest=rest)))
    assert len(result.failures) == 1
    assert result.failures[0].endswith("which matches absent task {'title_contains': '3 calls'}")


def test_a_test_file_is_validated_with_located_problems(case_file_factory: CaseFileFactory) -> None:
    path = case_file_factory(CASE.format(rest="    expct: []"))
    with pytest.raises(PlaybookError) as caught:
        load_test_file(path)
    assert [str(p) for p in caught.value.problems] == [f"{path}:9:5: unknown key 'expct' (did you mean 'expect'?)"]


def test_a_test_of_an_unknown_playbook_is_a_problem(case_file_factory: CaseFileFactory) -> None:
    path = case_file_factory(CASE.format(rest="").replace("repeat-caller", "no-such-playbook"))
    results, problems = run_tests([str(path.parent)])
    assert results == []
    assert [p.message for p in problems] == [f"no playbook 'no-such-playbook' in {path.parent}"]


def test_a_path_without_test_files_is_a_problem(tmp_path: Path) -> None:
    results, problems = run_tests([str(tmp_path)])
    assert results == []
    assert [str(p) for p in problems] == [f"{tmp_path}:1:1: no test files (*.test.yaml) found here"]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("0s, id: c1", "tomorrow, id: c1"), "6:14", "'tomorrow' is not an RFC 3339 timestamp"),
        (("0s, id: c1", "3000000d, id: c1"), "6:14", "'3000000d' is longer than 100 years (36525d)"),
        (("5h, id: c3", "10000d, id: c3"), "8:14", None),  # valid: 27 years after the start
        (
            ("start: 2026-01-05T09:00:00Z", "start: 9999-12-31T09:00:00Z"),  # the calls, then 30 days
            "9:12",
            "'30d' is not within the years 0001 to 9999 in UTC",
        ),
        (("start: 2026-01-05T09:00:00Z", "start: 'soon'"), "2:8", "'soon' is not an RFC 3339 timestamp"),
    ],
)
def test_event_times_are_checked_where_written(
    case_file_factory: CaseFileFactory, change: tuple[str, str], where: str, message: str | None
) -> None:
    path = case_file_factory(CASE.format(rest="    until: 30d").replace(*change))
    if message is None:
        load_test_file(path)
        return
    with pytest.raises(PlaybookError) as caught:
        load_test_file(path)
    assert [str(p) for p in caught.value.problems] == [f"{path}:{where}: {message}"]


@pytest.mark.parametrize(
    ("rest", "where", "message"),
    [
        ("    until: 3000000d", "9:12", "'3000000d' is longer than 100 years (36525d)"),
        ("    until: next week", "9:12", "'next week' is not an RFC 3339 timestamp"),
        ("    expect:\n      - task: {due_at: tomorrow}", "10:24", "'tomorrow' is not an RFC 3339 timestamp"),
        ("    absent:\n      - task: {created_at: 3000000d}", "10:28", "'3000000d' is longer than 100 years (36525d)"),
    ],
)
def test_case_times_are_checked_where_written(
    case_file_factory: CaseFileFactory, rest: str, where: str, message: str
) -> None:
    path = case_file_factory(CASE.format(rest=rest))
    with pytest.raises(PlaybookError) as caught:
        load_test_file(path)
    assert [str(p) for p in caught.value.problems] == [f"{path}:{where}: {message}"]
    results, problems = run_tests([str(path.parent)])
    assert (results, [str(p) for p in problems]) == ([], [f"{path}:{where}: {message}"])


class TestExpectationKeys:
    @pytest.mark.parametrize(
        ("expectation", "column", "message"),
        [
            ("task: {queuee: x}", 16, "unknown key 'queuee' (did you mean 'queue'?)"),
            ("task: {title_contain: x}", 16, "unknown key 'title_contain' (did you mean 'title_contains'?)"),
            ("task: {amount: 5}", 16, "unknown key 'amount': a field of a gesture, not of a task"),
            ("gesture: {queue: x}", 19, "unknown key 'queue': a field of a task, not of a gesture"),
            (
                "gesture: {evidence_contains: x}",
                19,
                "unknown key 'evidence_contains': 'evidence' is not text (FIELD_contains is for text fields): check "
                "'evidence' itself",
            ),
        ],
    )
    def test_an_unknown_key_in_absent_is_a_located_problem(
        self, case_file_factory: CaseFileFactory, expectation: str, column: int, message: str
    ) -> None:
        # Before, `absent: [{task: {queuee: x}}]` matched no effect, and the case passed whatever was raised.
        path = case_file_factory(CASE.format(rest=f"    absent:\n      - {expectation}"))
        results, problems = run_tests([str(path)])
        assert (results, [str(p) for p in problems]) == ([], [f"{path}:10:{column}: {message}"])

    def test_unknown_keys_in_expect_are_each_located(self, case_file_factory: CaseFileFactory) -> None:
        rest = "    expect:\n      - task: {queue: care-callback,\n              priorty: P2, reasn_contains: calls}"
        with pytest.raises(PlaybookError) as caught:
            load_test_file(path := case_file_factory(CASE.format(rest=rest)))
        assert [str(p) for p in caught.value.problems] == [
            f"{path}:11:15: unknown key 'priorty' (did you mean 'priority'?)",
            f"{path}:11:28: unknown key 'reasn_contains' (did you mean 'reason_contains'?)",
        ]

    @pytest.mark.parametrize(("kind", "model"), [("task", Task), ("gesture", Gesture)])
    def test_every_field_of_the_effect_is_a_key_and_text_fields_have_contains(
        self, kind: str, model: type[Task | Gesture]
    ) -> None:
        keys = EXPECTATION_KEYS[kind]
        assert set(model.model_fields) <= set(keys)
        assert {"reason_contains", "customer_id_contains"} <= set(keys)
        assert "evidence_contains" not in keys and "playbook_version_contains" not in keys

    def test_every_field_of_a_raised_task_may_be_checked(self, case_file_factory: CaseFileFactory) -> None:
        fields = raised_task(case_file_factory)
        assert set(fields) == set(Task.model_fields)
        rest = f"    expect:\n      - task: {json.dumps(fields)}"
        [result] = run_test_file(case_file_factory(CASE.format(rest=rest)))
        assert result.failures == []


def raised_task(case_file_factory: CaseFileFactory) -> dict[str, object]:
    """The task CASE raises, as JSON (the case fails, expecting nothing, and names it)."""
    path = case_file_factory(CASE.format(rest="    expect: []"))
    _, spec = load_test_file(path)
    playbooks = {pb.id: pb for pb in load_playbooks_or_raise([path.parent])}
    store = MemoryStore()
    lines = [
        json.dumps({"id": e.id, "type": e.type, "customer_id": e.customer_id, "occurred_at": f"2026-01-05T{h}Z"})
        for e, h in zip(spec.tests[0].events, ("09:00:00", "11:00:00", "14:00:00"), strict=True)
    ]
    replay(lines, Engine([playbooks["repeat-caller"]], store), io.StringIO(), io.StringIO())
    [task] = store.effects()
    return task.model_dump(mode="json")


class TestFailures:
    @pytest.mark.parametrize(
        ("expected", "differences"),
        [
            ("{priority: P1}", ["priority: expected P1, got P2"]),
            ("{priority: P2, due_at: 30h}", ["due_at: expected 2026-01-06T15:00:00Z (30h), got 2026-01-06T14:00:00Z"]),
            ("{evidence: [c1, c2]}", ['evidence: expected ["c1", "c2"], got ["c1", "c2", "c3"]']),
            (
                '{title_contains: "4 calls"}',
                ['title: expected to contain "4 calls", got "Repeat caller: 3 calls in 7 days"'],
            ),
            (
                "{queue: save-desk, talking_points: []}",
                ["queue: expected save-desk, got care-callback", "talking_points: expected [], got ["],
            ),
        ],
    )
    def test_a_failing_case_shows_the_fields_that_differ(
        self, case_file_factory: CaseFileFactory, expected: str, differences: list[str]
    ) -> None:
        rest = f"    expect:\n      - task: {expected}"
        [result] = run_test_file(case_file_factory(CASE.format(rest=rest)))
        first, *shown = result.failures[0].splitlines()
        assert first == f"expected task {_fields(expected)}: not raised; the nearest task raised differs in:"
        assert len(shown) == len(differences)
        for line, difference in zip(shown, differences, strict=True):
            assert line.startswith(f"  {difference}")

    def test_the_nearest_effect_is_the_one_differing_in_fewest_fields(self, case_file_factory: CaseFileFactory) -> None:
        # Two callbacks, the second after the 14-day cooldown; the expectation is the second one but for priority.
        later = "\n".join(
            f"      - {{at: {at}, id: d{n}, type: service.call, customer_id: C-1}}"
            for n, at in enumerate(("15d", "15d1h", "15d2h"), start=1)
        )
        rest = (
            f"{later}\n    expect:\n      - task: {{priority: P1, created_at: 15d2h}}\n      - task: {{created_at: 5h}}"
        )
        [result] = run_test_file(case_file_factory(CASE.format(rest=rest)))
        assert result.failures == [
            "expected task {'priority': 'P1', 'created_at': '15d2h'}: not raised; the nearest task raised differs in:"
            "\n  priority: expected P1, got P2",
            "unexpected task {'customer_id': 'C-1', 'queue': 'care-callback', 'priority': 'P2', "
            "'due_at': '2026-01-21T11:00:00Z', 'status': 'open'}",
        ]

    def test_an_expectation_of_a_kind_never_raised_says_so(self, case_file_factory: CaseFileFactory) -> None:
        rest = "    expect:\n      - task: {priority: P2}\n      - gesture: {type: apology}\n      - task: {}"
        [result] = run_test_file(case_file_factory(CASE.format(rest=rest)))
        assert result.failures == [
            "expected gesture {'type': 'apology'}: not raised (no gesture was raised)",
            "expected task {}: not raised (every task raised met another expectation)",
        ]

    def test_the_cli_indents_every_line_of_a_failure(self, case_file_factory: CaseFileFactory) -> None:
        path = case_file_factory(CASE.format(rest="    expect:\n      - task: {priority: P1}"))
        done = subprocess.run(
            [sys.executable, "-m", "recovery.cli", "test", str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1
        assert done.stdout.splitlines()[1:3] == [
            "    expected task {'priority': 'P1'}: not raised; the nearest task raised differs in:",
            "      priority: expected P1, got P2",
        ]


def _fields(flow: str) -> str:
    """A YAML flow mapping of the tests above as the runner prints it."""
    return str(yaml.safe_load(flow))


ABSENCE_CASE = """\
playbook: complaint-unresolved
tests:
  - name: a complaint left open
    events:
      - {{at: 0s, id: k1, type: complaint.opened, customer_id: C-1, data: {{complaint_id: K-1}}}}
      - {{at: 1h, type: service.call, customer_id: C-1}}
{rest}
"""


@pytest.mark.parametrize(
    ("rest", "hint"),
    [
        ("    expect: [{task: {queue: complaints-escalation}}]", True),
        ("    until: 1h\n    expect: [{task: {queue: complaints-escalation}}]", False),  # `until` was given
        ("    until: 48h1s\n    expect: [{task: {queue: complaints-escalation}}]", False),  # passes
        ("    expect: []", False),  # passes: no hint on a passing case
    ],
)
def test_an_absence_case_without_until_is_given_a_hint(tmp_path: Path, rest: str, hint: bool) -> None:
    shutil.copy(RULES / "complaint-unresolved.yaml", tmp_path / "complaint-unresolved.yaml")
    path = tmp_path / "complaint-unresolved.test.yaml"
    path.write_text(ABSENCE_CASE.format(rest=rest), encoding="utf-8")
    [result] = run_test_file(path)
    hints = [f for f in result.failures if f.startswith("hint:")]
    expected = (
        "hint: the deadline at 2026-01-07T09:00:00Z is after the last event, so the clock never passed it: add "
        "`until:` after it (e.g. `until: 2026-01-07T09:00:01Z`)"
    )
    assert hints == ([expected] if hint else [])
    assert result.passed == ("expect: []" in rest or "48h1s" in rest)


def _with(path: Path, line: str) -> None:
    """Add a top-level `line` (mode, holdout) to the repeat-caller playbook next to the test file `path`."""
    playbook = path.parent / "repeat-caller.yaml"
    playbook.write_text(playbook.read_text(encoding="utf-8").replace("cooldown: 14d\n", f"cooldown: 14d\n{line}\n"))


def _customers(path: Path) -> tuple[str, str]:
    """A customer held out of the repeat-caller playbook next to `path`, and one treated."""
    pb = load_playbook(path.parent / "repeat-caller.yaml")
    ids = [f"C-{i}" for i in range(100)]
    return next(c for c in ids if pb.held_out(c)), next(c for c in ids if not pb.held_out(c))


class TestShadowAndHoldout:
    EXPECT = """\
    expect:
      - task: {customer_id: C-1, priority: P2}"""
    WITHHELD = """\
    expect: []
    withheld:
      - task: {customer_id: C-1, priority: P2}"""

    def test_a_shadow_playbooks_effects_are_not_raised_and_the_failure_says_why(
        self, case_file_factory: CaseFileFactory
    ) -> None:
        path = case_file_factory(CASE.format(rest=self.EXPECT))
        _with(path, "mode: shadow")
        [result] = run_test_file(path)
        assert result.failures == [
            "expected task {'customer_id': 'C-1', 'priority': 'P2'}: not raised (no task was raised)",
            "hint: the playbook is in shadow mode: its effects are kept, not raised; list them under `withheld:`",
        ]

    def test_withheld_lists_what_shadow_mode_kept_all_of_it(self, case_file_factory: CaseFileFactory) -> None:
        path = case_file_factory(CASE.format(rest=self.WITHHELD))
        _with(path, "mode: shadow")
        [result] = run_test_file(path)
        assert result.failures == []
        path.write_text(CASE.format(rest="    withheld: []"), encoding="utf-8")
        [result] = run_test_file(path)
        assert [f.split(" {")[0] for f in result.failures] == ["unexpected task"]
        assert result.failures[0].endswith("(withheld)")

    def test_a_held_out_customer_gets_nothing_and_their_effect_is_withheld(
        self, case_file_factory: CaseFileFactory
    ) -> None:
        path = case_file_factory(CASE.format(rest=self.WITHHELD))
        _with(path, "holdout: 50%")
        held, treated = _customers(path)
        path.write_text(CASE.format(rest=self.WITHHELD).replace("C-1", held), encoding="utf-8")
        [result] = run_test_file(path)
        assert result.failures == []
        path.write_text(CASE.format(rest=self.EXPECT).replace("C-1", held), encoding="utf-8")
        [result] = run_test_file(path)
        assert result.failures == [
            f"expected task {{'customer_id': '{held}', 'priority': 'P2'}}: not raised (no task was raised)",
            f"hint: {held} is in the playbook's holdout: its effects are kept, not raised (see `withheld:`)",
        ]
        path.write_text(CASE.format(rest=self.EXPECT).replace("C-1", treated), encoding="utf-8")
        [result] = run_test_file(path)
        assert result.failures == []
