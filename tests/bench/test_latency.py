"""bench.latency's pure parts: the events it sends, its pacing and how it reads latencies off the tasks topic."""

from __future__ import annotations

import json
from array import array
from types import SimpleNamespace

import pytest

from bench.latency import BLOCK, CALLS, due, event, event_number, latencies, pace
from recovery.events import Event


def test_a_block_is_one_customer_with_a_profile_and_three_calls() -> None:
    bodies = [json.loads(event("r0", n, 1_800_000_000.0)[1]) for n in range(BLOCK)]
    assert {b["customer_id"] for b in bodies} == {"r0-c0"}
    assert bodies[0]["type"] == "customer.updated"
    assert [n for n, b in enumerate(bodies) if b["type"] == "service.call"] == list(CALLS)
    for body in bodies:
        Event.from_dict(body)
    key, _ = event("r0", BLOCK, 0.0)
    assert key == b"r0-c1"


@pytest.mark.parametrize(
    ("event_id", "expected"), [("r1-17", 17), ("r1-0", 0), ("r2-17", None), ("r1-x", None), ("warm-3", None)]
)
def test_event_number(event_id: str, expected: int | None) -> None:
    assert event_number("r1", event_id) == expected


@pytest.mark.parametrize(
    ("elapsed_s", "expected"), [(-0.1, 0), (0.0, 1), (0.0099, 1), (0.01, 2), (0.5, 51), (100.0, 60)]
)
def test_due(elapsed_s: float, expected: int) -> None:
    assert due(100.0, elapsed_s, 60) == expected


def test_pace_sends_each_event_on_time_with_a_fake_clock() -> None:
    now = [0.0]
    sent_at: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += max(seconds, 0.0005)

    pacing = pace(100.0, 50, lambda n: sent_at.append(now[0]), clock=lambda: now[0], sleep=sleep)
    assert pacing.sent == 50
    assert all(abs(at - n / 100.0) < 0.002 for n, at in enumerate(sent_at))
    assert pacing.rate() == pytest.approx(100.0, rel=0.01)
    assert pacing.behind_s < 0.002


def test_latencies_take_the_newest_evidence_and_the_first_publication() -> None:
    produced = array("d", [10.0, 10.1, 10.2, 10.3])

    def record(task_id: str, evidence: list[str], timestamp_ms: float, kind: str = "task") -> SimpleNamespace:
        return SimpleNamespace(
            value=json.dumps({"kind": kind, "id": task_id, "evidence": evidence}), timestamp=timestamp_ms
        )

    records = [
        record("t1", ["r0-1", "r0-3"], 10_350.0),
        record("t1", ["r0-1", "r0-3"], 10_900.0),  # published again (a status change)
        record("t2", ["r0-2"], 10_250.0),
        record("t3", ["warm-1"], 99_999.0),  # another run's
        record("g1", ["r0-0"], 10_500.0, kind="gesture"),
    ]
    assert latencies(records, "r0", produced) == pytest.approx([50.0, 50.0])
