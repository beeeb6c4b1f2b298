"""`recovery explain`: from a file of events or a SQLite store, as text or JSON; a bad argument is one located line on
stderr and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recovery.cli import main
from recovery.engine import Engine
from recovery.events import Event
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.store import SqliteStore
from tests.conftest import RULES
from tests.explain.test_explain import GOLD, H, calls, event, write


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    return write(tmp_path, [event("p", "customer.updated", -H, **GOLD), *calls(3), *calls(2, "C-2")])


def test_text_from_a_file_of_events(events_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--customer", "C-2", "--events", str(events_file), "--rules", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Customer C-2 as of 2026-11-02T12:00:00Z, from a replayed events file\n")  # the end
    block = out.split("\n\n")[1]
    assert block.splitlines()[:5] == [
        "repeat-caller v1 (event): NOT MATCHED",
        "  the condition failed: calls >= 3 (calls = 2)",
        "  trigger: service.call C-2-call2 at 2026-11-02T11:00:00Z",
        "  let: calls = 2",
        "  condition: failed",
    ]
    assert "    FAILED  when: calls >= 3" in block


def test_json_as_of_an_instant(events_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["explain", "--customer", "C-1", "--events", str(events_file), "--rules", str(RULES)]
    assert main([*args, "--at", "2026-11-02T11:30:00Z", "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["at"] == "2026-11-02T11:30:00Z"
    assert found["playbooks"][0]["id"] == "repeat-caller" and found["playbooks"][0]["verdict"] == "not matched"


def test_from_a_sqlite_store(events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteStore(tmp_path / "s.db")
    engine = Engine(load_playbooks_or_raise([RULES]), store)
    for line in events_file.read_text().splitlines():
        engine.process(Event.from_json(line))
    store.commit()
    store.close()
    args = ["explain", "--customer", "C-1", "--store", f"sqlite:///{tmp_path / 's.db'}", "--rules", str(RULES)]
    assert main([*args, "--at", "2026-11-03T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "from the store (the events it keeps only)" in out and "repeat-caller v1 (event): RAISED" in out
    assert "cooldown active until 2026-11-16T12:00:00Z" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday"], "--at 'yesterday': "),
        (["--format", "pdf"], "--format 'pdf': use text or json"),
        (["--store", "sqlite:///x.db"], "give --events FILE --rules DIR, or --store URL [--rules DIR], not both"),
        (["--customer", " "], "--customer: an empty id"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(
    args: list[str], message: str, events_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["explain", "--customer", "C-1", "--events", str(events_file), "--rules", str(RULES)]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("recovery explain: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "recovery explain: give --events FILE --rules DIR, or --store URL [--rules DIR]\n"),
        (["--events", "x.jsonl"], "recovery explain: --events needs --rules\n"),
        (["--events", "none.jsonl", "--rules", str(RULES)], "recovery explain: --events none.jsonl: No such file"),
        (["--store", "mysql://x", "--rules", str(RULES)], "recovery explain: store URL 'mysql://x': "),
    ],
)
def test_a_missing_or_unreadable_source_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "--customer", "C-1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_an_invalid_playbook_is_a_located_line_and_exit_2(
    events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    task = "{queue: q, priority: P2, due_in: 1d, title: t, reason: r}"
    bad.write_text(f"id: bad\ntrigger: {{event: service.call}}\nwhen: calls >>= 3\nactions: [{{task: {task}}}]\n")
    assert main(["explain", "--customer", "C-1", "--events", str(events_file), "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:3:") and err.count("\n") == 1
