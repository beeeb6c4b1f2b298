"""Deadlines: set by an absence playbook's first event, answered in time by the awaited one, or due."""

from __future__ import annotations

import logging

import pytest

from recovery.engine.deadlines import Deadlines
from recovery.events import Occurrence
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import MemoryStore

DAY = 86400.0


@pytest.fixture
def absence(shipped_playbooks: list[CompiledPlaybook]) -> CompiledPlaybook:
    """complaint-unresolved: complaint.opened, then complaint.resolved with the same complaint_id within 48h."""
    (pb,) = [pb for pb in shipped_playbooks if pb.id == "complaint-unresolved"]
    assert (pb.kind, pb.key, pb.within_s) == ("absence", "complaint_id", 2 * DAY)
    return pb


def opened(id: str, ts: float, complaint: str | None = "K1", cid: str = "C1") -> Occurrence:
    return Occurrence(id, "complaint.opened", ts, cid, {} if complaint is None else {"complaint_id": complaint})


def resolved(ts: float, complaint: str = "K1", cid: str = "C1") -> Occurrence:
    return Occurrence(f"r-{ts}", "complaint.resolved", ts, cid, {"complaint_id": complaint})


def drain(deadlines: Deadlines, ts: float = float("inf")) -> list[tuple[float, str]]:
    """(due, first event id) of every deadline due before `ts`, in the order they come out."""
    out = []
    while (found := deadlines.pop_due(ts)) is not None:
        out.append((found[0], found[1].first.id))
    return out


def test_a_first_event_sets_one_deadline_in_the_store(absence: CompiledPlaybook) -> None:
    store = MemoryStore()
    deadlines = Deadlines(store)
    deadlines.wait_for(absence, "C1", opened("o1", 0.0))
    deadlines.wait_for(absence, "C1", opened("o1", 0.0))  # the same event again: still one
    [stored] = store.pending_deadlines()
    assert (stored.id, stored.due, stored.key, stored.first.id) == ("complaint-unresolved|C1|o1", 2 * DAY, "K1", "o1")
    assert len(deadlines) == 1 and deadlines.heap == [(2 * DAY, stored.id)]


def test_a_first_event_without_the_key_sets_none(absence: CompiledPlaybook, caplog: pytest.LogCaptureFixture) -> None:
    deadlines = Deadlines(MemoryStore())
    with caplog.at_level(logging.WARNING, logger="recovery.engine.deadlines"):
        deadlines.wait_for(absence, "C1", opened("o1", 0.0, complaint=None))
    assert len(deadlines) == 0
    assert [r.getMessage() for r in caplog.records] == ["absence start without key"]


@pytest.mark.parametrize(
    ("at", "answers"),
    [(DAY, True), (2 * DAY, True), (2 * DAY + 1, False), (-1.0, False)],
    ids=["in-time", "at-the-deadline", "too-late", "before-the-first"],
)
def test_an_answer_in_time_cancels(absence: CompiledPlaybook, at: float, answers: bool) -> None:
    store = MemoryStore()
    deadlines = Deadlines(store)
    deadlines.wait_for(absence, "C1", opened("o1", 0.0))
    deadlines.answer(absence, "C1", resolved(at))
    assert len(deadlines) == (0 if answers else 1)
    assert len(store.pending_deadlines()) == len(deadlines)


def test_an_answer_cancels_only_its_key_and_customer(absence: CompiledPlaybook) -> None:
    deadlines = Deadlines(MemoryStore())
    deadlines.wait_for(absence, "C1", opened("o1", 0.0, "K1"))
    deadlines.wait_for(absence, "C1", opened("o2", 0.0, "K2"))
    deadlines.wait_for(absence, "C2", opened("o3", 0.0, "K1", cid="C2"))
    deadlines.answer(absence, "C1", resolved(DAY, "K1"))
    assert sorted(first for _, first in drain(deadlines)) == ["o2", "o3"]


def test_due_deadlines_come_out_oldest_first_strictly_before_the_time(absence: CompiledPlaybook) -> None:
    store = MemoryStore()
    deadlines = Deadlines(store)
    for i, ts in enumerate((3.0, 1.0, 2.0)):
        deadlines.wait_for(absence, "C1", opened(f"o{i}", ts, f"K{i}"))
    deadlines.answer(absence, "C1", resolved(DAY, "K2"))  # o2 (due 2 days after 2.0) answered
    assert drain(deadlines, 2 * DAY + 1.0) == []  # o1 is due at exactly 2d + 1s: not strictly before
    assert drain(deadlines, 2 * DAY + 1.5) == [(2 * DAY + 1.0, "o1")]
    assert drain(deadlines) == [(2 * DAY + 3.0, "o0")]  # o2's entry, answered, is skipped
    assert deadlines.heap == [] and len(deadlines) == 0 and store.pending_deadlines() == []
