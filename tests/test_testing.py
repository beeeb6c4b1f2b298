"""`recovery test`'s runner: test files next to the playbooks, each case replayed through its playbook alone."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from recovery.exceptions import PlaybookError
from recovery.playbooks.loader import load_playbook
from recovery.testing import load_test_file, run_test_file, run_tests
from tests.conftest import RULES

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
    assert result.failures[0] == "expected task {'customer_id': 'C-1', 'priority': 'P1'}: not raised"
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
            "expected task {'customer_id': 'C-1', 'priority': 'P2'}: not raised (the playbook is in shadow mode: its"
            " effects are kept, not raised; list them under `withheld`)"
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
            f"expected task {{'customer_id': '{held}', 'priority': 'P2'}}: not raised ({held} is in the playbook's"
            " holdout: its effects are kept, not raised; see `withheld`)"
        ]
        path.write_text(CASE.format(rest=self.EXPECT).replace("C-1", treated), encoding="utf-8")
        [result] = run_test_file(path)
        assert result.failures == []
