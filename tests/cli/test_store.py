"""`recovery cases` and `recovery tasks`: the store's cases in the queue's order and its tasks, for a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from recovery.cli import main
from recovery.store import SqliteStore
from tests.store.test_desk import make_task


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """Three cases: C1's two tasks (P3 and P1, value 500), C2's P1 task (value 9,000), C3's P2 task done."""
    store = SqliteStore(tmp_path / "s.db")
    for task in (
        make_task("a", customer_id="C1", case_id="case-1", priority="P3", title="A courtesy call"),
        make_task("b", customer_id="C1", case_id="case-1", priority="P1", title="Cancellation requested"),
        make_task("c", customer_id="C2", case_id="case-2", priority="P1", title="Cancellation requested too"),
        make_task("d", customer_id="C3", case_id="case-3", priority="P2", title="Done already"),
    ):
        store.put_effect(task)
    store.put_profile("C1", 0.0, {"annual_value": 500, "tier": "silver"})
    store.put_profile("C2", 0.0, {"annual_value": 9_000, "tier": "gold"})
    assert store.claim_task("d", "ann", 1.0)
    assert store.complete_task("d", "ann", 2.0, "saved", "offer-accepted", "")
    store.commit()
    store.close()
    return f"sqlite:///{tmp_path / 's.db'}"


def test_the_cases_most_urgent_then_most_valuable_first(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "--store", store_url]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["PRIORITY", "DUE", "QUEUE", "CUSTOMER", "VALUE", "STATUS", "TASKS"]
    assert [line.split()[3] for line in lines[1:]] == ["C2", "C1"]  # both P1: the more valuable first; C3 is closed
    assert "9,000" in lines[1] and "1: Cancellation requested too" in lines[1]
    assert "2: Cancellation requested; A courtesy call" in lines[2]
    assert err.strip() == f"2 of 2 case(s) in {store_url}"
    assert main(["cases", "--store", store_url, "--status", "closed", "--limit", "0"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[3] for line in out.splitlines()[1:]] == ["C3"] and "closed" in out
    assert main(["cases", "--store", store_url, "--limit", "1"]) == 0
    assert capsys.readouterr().err.strip() == f"1 of 2 case(s) in {store_url}"  # a cut list says so


def test_a_bad_status_is_one_line_and_exit_2(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "--store", store_url, "--status", "done"]) == 2
    assert capsys.readouterr().err.strip().startswith("recovery cases: --status is one of active, open")


def test_the_tasks_most_urgent_first(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks", "--store", store_url, "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["P1", "P1"]
    assert err.strip() == f"2 of 4 task(s) in {store_url}"
