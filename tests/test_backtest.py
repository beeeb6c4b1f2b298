"""`recovery backtest` on small hand-computed streams: what a new set of playbooks adds, removes and changes against a
baseline, the tables, the JSON for tools, determinism and the command's exit codes."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recovery.backtest import backtest, render_json, render_text, report
from recovery.playbooks.loader import load_playbooks_or_raise
from tests.conftest import RULES, random_stream, recovery_cli

REPEAT_CALLER = """\
id: repeat-caller
version: {version}
trigger: {{event: service.call}}
let:
  calls: count("service.call", 7d)
when: calls >= {calls}
cooldown: 14d
{inhibited_by}
actions:
  - task: {{queue: care-callback, priority: P2, due_in: 24h, title: Repeat caller, reason: "{{{{ calls }}}} calls"}}
"""
APOLOGY = """\
id: apology
trigger: {{event: complaint.opened}}
actions:
  - gesture: {{type: apology, amount: {amount}, currency: EUR, reason: Sorry}}
"""
SAVE = """\
id: save
trigger: {event: cancellation.requested}
actions:
  - task: {queue: save-desk, priority: P1, due_in: 4h, title: Save, reason: Save them}
"""


def event(n: str, type: str, at: str, customer: str, **data: Any) -> str:
    return json.dumps({"id": n, "type": type, "occurred_at": f"2026-11-{at}Z", "customer_id": customer, "data": data})


# Day 2: C-1's second call (new: 2 calls fire), C-2's calls are day 3. Hand-computed below.
STREAM = [
    event("a1", "service.call", "02T09:00:00", "C-1"),
    event("a2", "service.call", "02T10:00:00", "C-1"),  # new: C-1's callback (2 calls)
    "{not an event",
    event("a3", "service.call", "03T09:00:00", "C-1"),  # baseline: C-1's callback (3 calls); new: cooldown
    event("b1", "service.call", "03T09:30:00", "C-2"),
    event("b2", "service.call", "03T12:00:00", "C-2"),  # new: C-2's callback; baseline: only 2 calls
    event("k1", "complaint.opened", "03T13:00:00", "C-4", complaint_id="K-1"),  # both: an apology, 10 then 15 EUR
    event("c1", "service.call", "04T09:00:00", "C-3"),  # one call: nothing either way
    json.dumps({"id": "bad", "type": "service.call", "occurred_at": "yesterday", "customer_id": "C-3"}),
]

Folder = Callable[..., Path]


@pytest.fixture
def folder_factory(tmp_path: Path) -> Folder:
    """Writes a folder of playbooks: repeat-caller firing at `calls` calls, the apology gesture of `amount`, and any
    `more` files (name: YAML)."""

    def make(name: str, calls: int, amount: int, inhibited_by: str = "", version: int = 1, **more: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "repeat-caller.yaml").write_text(
            REPEAT_CALLER.format(calls=calls, inhibited_by=inhibited_by, version=version)
        )
        (folder / "apology.yaml").write_text(APOLOGY.format(amount=amount))
        for file, text in more.items():
            (folder / f"{file}.yaml").write_text(text)
        return folder

    return make


def run_report(new: Path, baseline: Path, lines: list[str], examples: int = 3) -> tuple[dict[str, Any], str]:
    err = io.StringIO()
    result = backtest(lines, load_playbooks_or_raise([new]), load_playbooks_or_raise([baseline]), err)
    return report(result, examples), err.getvalue()


def figures(baseline: float, new: float, difference: float) -> dict[str, float]:
    return {"baseline": baseline, "new": new, "difference": difference}


def test_a_repeat_caller_at_two_calls_against_three(folder_factory: Folder) -> None:
    data, err = run_report(folder_factory("new", 2, 15), folder_factory("old", 3, 10), STREAM)
    # Added: C-1's callback at a2 and C-2's at b2; removed: C-1's at a3 (another cause, so another id); changed:
    # the apology's amount.
    assert (data["added"], data["removed"], data["changed"]) == (2, 1, 1)
    assert data["by_playbook"] == {
        "apology": {
            "added": 0,
            "removed": 0,
            "changed": 1,
            "unchanged": 0,
            "changed_fields": {"amount": 1},
            "examples": {"added": [], "removed": [], "changed": ["C-4"]},
        },
        "repeat-caller": {
            "added": 2,
            "removed": 1,
            "changed": 0,
            "unchanged": 0,
            "changed_fields": {},
            "examples": {"added": ["C-1", "C-2"], "removed": ["C-1"], "changed": []},
        },
    }
    assert data["tasks_per_day"] == {
        "2026-11-02": {"care-callback": figures(0, 1, 1)},
        "2026-11-03": {"care-callback": figures(1, 1, 0)},
    }
    assert data["tasks_per_queue"] == {"care-callback": figures(1, 2, 1)}
    assert data["spend"] == {"apology": {"EUR": figures(10.0, 15.0, 5.0)}}
    assert data["customers_newly_reached"] == ["C-2"]
    assert data["muted"] == {}
    assert (data["lines"], data["events"], data["duplicates"], data["invalid_events"]) == (9, 7, 0, 2)
    assert [line.split(":")[0] for line in err.splitlines()] == ["line 3", "line 9"]  # once, not once per set


def test_the_same_sets_differ_in_nothing(folder_factory: Folder) -> None:
    old = folder_factory("old", 3, 10)
    data, _ = run_report(old, old, STREAM)
    assert (data["added"], data["removed"], data["changed"], data["customers_newly_reached"]) == (0, 0, 0, [])
    assert data["by_playbook"]["repeat-caller"]["unchanged"] == 1
    assert data["spend"] == {"apology": {"EUR": figures(10.0, 10.0, 0.0)}}


def test_a_new_version_and_another_case_are_no_change(folder_factory: Folder) -> None:
    # The new set adds a save-desk task that opens C-1's case first: C-1's callback joins that case (another
    # case_id) and carries version 2; neither counts as a change.
    lines = [event("x1", "cancellation.requested", "01T09:00:00", "C-1"), *STREAM]
    data, _ = run_report(folder_factory("new", 3, 10, version=2, save=SAVE), folder_factory("old", 3, 10), lines)
    assert (data["added"], data["removed"], data["changed"]) == (1, 0, 0)
    assert data["by_playbook"]["save"]["added"] == 1
    assert data["by_playbook"]["repeat-caller"]["unchanged"] == 1
    assert data["customers_newly_reached"] == []  # C-1 had a callback in the baseline


def test_effects_muted_are_counted_per_playbook_and_reason(folder_factory: Folder) -> None:
    inhibited = "inhibited_by: [{playbook: apology, within: 2d}]"
    lines = [event("k0", "complaint.opened", "02T08:00:00", "C-1", complaint_id="K-0"), *STREAM]
    data, _ = run_report(folder_factory("new", 3, 10, inhibited), folder_factory("old", 3, 10), lines)
    assert data["muted"] == {"repeat-caller": {"inhibited": figures(0, 1, 1)}}
    assert (data["added"], data["removed"], data["changed"]) == (0, 1, 0)
    assert data["tasks_per_queue"] == {"care-callback": figures(1, 0, -1)}


def test_examples_are_the_first_customers_by_id(folder_factory: Folder) -> None:
    data, _ = run_report(folder_factory("new", 2, 15), folder_factory("old", 3, 10), STREAM, examples=1)
    assert data["by_playbook"]["repeat-caller"]["examples"] == {"added": ["C-1"], "removed": ["C-1"], "changed": []}
    assert data["by_playbook"]["repeat-caller"]["added"] == 2
    text = render_text(data, examples=1)
    assert "  repeat-caller: added C-1; removed C-1" in text.splitlines()
    assert "customers newly reached: 1" in render_text(data, examples=0).splitlines()


def test_the_text_report(folder_factory: Folder) -> None:
    data, _ = run_report(folder_factory("new", 2, 15), folder_factory("old", 3, 10), STREAM)
    assert render_text(data).splitlines() == [
        "9 lines, 7 events, 0 duplicates, 2 invalid (skipped: their lines are on stderr)",
        "",
        "effects: 2 added, 1 removed, 1 changed",
        "  playbook       added  removed  changed  unchanged",
        "  apology            0        0        1          0",
        "  repeat-caller      2        1        0          0",
        "  apology: changed C-4; fields changed: amount 1",
        "  repeat-caller: added C-1, C-2; removed C-1",
        "",
        "tasks per queue per day",
        "  day         queue          baseline  new  difference",
        "  2026-11-02  care-callback         0    1          +1",
        "  2026-11-03  care-callback         1    1           0",
        "  total       care-callback         1    2          +1",
        "",
        "gesture spend per type",
        "  type     currency  baseline    new  difference",
        "  apology  EUR          10.00  15.00       +5.00",
        "",
        "customers newly reached: 1 (C-2)",
        "",
        "effects muted per playbook and reason",
        "  none",
    ]


@pytest.fixture
def shipped_against_fewer(tmp_path: Path) -> tuple[Path, Path]:
    """The shipped playbooks as the baseline, the same less repeat-caller as the new set, and a random stream."""
    new = tmp_path / "new"
    new.mkdir()
    for path in RULES.glob("*.yaml"):
        if not path.name.endswith(".test.yaml") and path.name != "repeat-caller.yaml":
            shutil.copy(path, new / path.name)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(raw) + "\n" for raw in random_stream(5, customers=40, events=500)))
    return new, events


def test_two_runs_give_identical_bytes(shipped_against_fewer: tuple[Path, Path]) -> None:
    new, events = shipped_against_fewer
    for form in ("text", "json"):
        args = (
            "backtest",
            "--rules",
            str(new),
            "--baseline",
            "rules",
            "--format",
            form,
            "--until",
            "2027-01-01T00:00:00Z",
        )
        first, second = recovery_cli(*args, str(events)), recovery_cli(*args, str(events))
        assert first.returncode == 0, first.stderr
        assert first.stdout == second.stdout
    data = json.loads(first.stdout)
    assert data["removed"] > 0 and data["added"] == 0
    assert data["by_playbook"]["repeat-caller"]["removed"] == data["removed"]


def test_the_json_keys_for_tools(shipped_against_fewer: tuple[Path, Path]) -> None:
    new, events = shipped_against_fewer
    done = recovery_cli(
        "backtest", "--rules", str(new), "--baseline", "rules", "--format", "json", "-", stdin=events.read_text()
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for key in ("added", "removed", "changed", "by_playbook", "tasks_per_day", "spend", "customers_newly_reached"):
        assert key in data
    assert data["invalid_events"] == 0
    for figures_of in data["by_playbook"].values():
        assert {"added", "removed", "changed"} <= set(figures_of)
    assert json.loads(render_json(data)) == data


def test_invalid_lines_are_counted_and_reported_on_stderr(tmp_path: Path, folder_factory: Folder) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(("\n".join(STREAM) + "\n").encode() + b"\xff\n")
    old = folder_factory("old", 3, 10)
    done = recovery_cli("backtest", "--rules", str(old), "--baseline", str(old), "--format", "json", str(events))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["invalid_events"] == 3
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == ["line 3", "line 9", "line 10"]
    assert "not UTF-8 text" in done.stderr.splitlines()[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--until", "tomorrow"), "--until: 'tomorrow' is not an RFC 3339 timestamp"),
        (("--examples", "-1"), "--examples: a number of customers, 0 or more (got -1)"),
        (("--examples", "few"), "invalid int value: 'few'"),
        (("--format", "xml"), "invalid choice: 'xml'"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(STREAM))
    done = recovery_cli("backtest", "--rules", "rules", "--baseline", "rules", *args, str(events))
    assert (done.returncode, done.stdout) == (2, "")
    assert message in done.stderr


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ("none.jsonl", "events: cannot read {path}: No such file or directory"),
        (".", "events: cannot read {path}: Is a directory"),
    ],
)
def test_an_events_file_that_cannot_be_read_exits_2(tmp_path: Path, events: str, message: str) -> None:
    path = tmp_path / events
    done = recovery_cli("backtest", "--rules", "rules", "--baseline", "rules", str(path))
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message.format(path=path) + "\n")


@pytest.mark.parametrize("which", ["--rules", "--baseline"])
def test_a_missing_folder_of_playbooks_exits_2(tmp_path: Path, which: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(STREAM))
    missing = tmp_path / "rules-next"
    other = "--baseline" if which == "--rules" else "--rules"
    done = recovery_cli("backtest", which, str(missing), other, "rules", str(events))
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"{which}: no such file or directory: {missing}\n")


@pytest.mark.parametrize("which", ["--rules", "--baseline"])
def test_an_invalid_playbook_exits_2_located(tmp_path: Path, folder_factory: Folder, which: str) -> None:
    good = folder_factory("good", 3, 10)
    bad = folder_factory("bad", 3, 10)
    (bad / "apology.yaml").write_text(APOLOGY.format(amount=10).replace("currency: EUR", "curency: EUR"))
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(STREAM))
    other = "--baseline" if which == "--rules" else "--rules"
    done = recovery_cli("backtest", which, str(bad), other, str(good), str(events))
    assert (done.returncode, done.stdout) == (2, "")
    # Line 4 is `  - gesture: {type: apology, amount: 10, curency: EUR, ...}`: the key is at column 14 + 15 + 12 + 1.
    located = f"{bad / 'apology.yaml'}:4:42: unknown key 'curency' (did you mean 'currency'?)"
    assert done.stderr.splitlines() == [located]
