"""`recovery report`: from a file of events (replayed first) or from a store, as JSON or HTML, to a file or stdout;
a bad argument is one line on stderr and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recovery.cli import main
from recovery.engine import Engine
from recovery.store import SqliteStore
from tests.conftest import ROOT
from tests.report.test_customers import STREAM

RULES = str(ROOT / "rules")
PERIOD = ["--from", "2026-11-02T00:00:00Z", "--to", "2026-11-16T00:00:00Z"]


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(e.to_json_dict()) for e in STREAM] + ["not an event"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_from_a_file_of_events_as_json(events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert main(["report", "--events", str(events_file), "--rules", RULES, *PERIOD, "--format", "json",
                 "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert report["period"] == {"from": "2026-11-02T00:00:00Z", "to": "2026-11-16T00:00:00Z", "by": "week"}
    assert (report["customers"]["lost"]["count"], report["customers"]["lost"]["value"]) == (2, 1650)
    assert "line 10: invalid event" in capsys.readouterr().err  # as replay reports it


def test_from_a_store_as_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteStore(tmp_path / "r.db")
    engine = Engine([], store)
    for event in STREAM:
        engine.process(event)
    store.commit()
    store.close()
    assert main(["report", "--store", f"sqlite:///{tmp_path / 'r.db'}", *PERIOD, "--by", "month"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>") and "Customer-loss review and metrics" in page
    assert "by month" in page and "<svg " in page and 'data-customer-id="B"' in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "yesterday"], "--from: "),
        (["--to", "2026-11-02"], "--to: "),
        (["--from", "2026-11-02T00:00:00Z", "--to", "2026-11-01T00:00:00Z"], "is not before --to"),
        (["--by", "day"], "--by 'day': use week or month"),
        (["--format", "pdf"], "--format 'pdf': use html or json"),
        (["--events", "x.jsonl"], "--events needs --rules"),
        (["--rules", "rules"], "--rules goes with --events"),
        (["--events", "x.jsonl", "--rules", "rules", "--store", "sqlite:///x.db"], "goes without --store"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("recovery report: ")


def test_a_missing_events_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--events", str(tmp_path / "none.jsonl"), "--rules", RULES]) == 1
    assert "none.jsonl" in capsys.readouterr().err
