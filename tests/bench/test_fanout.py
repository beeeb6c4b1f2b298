"""bench.fanout's pure parts: the events it sends and how it finds the credits on the gestures topic."""

from __future__ import annotations

import json
from types import SimpleNamespace

from bench.fanout import REGION, credits, outage, profiles
from recovery.events import Event


def test_profiles_and_outage_are_valid_events_of_one_region() -> None:
    sent = [*profiles("f1", 3, 1_800_000_000.0), outage("f1", "outage.resolved", 1_800_003_600.0)]
    keys = [key for key, _ in sent]
    assert keys == [b"f1-c0", b"f1-c1", b"f1-c2", b"f1-outage"]
    events = [Event.from_json(value.decode()) for _, value in sent]
    assert {e.data["region"] for e in events} == {REGION}
    assert events[-1].data["outage_id"] == "f1-outage"
    assert events[-1].customer_id is None


def test_credits_keep_the_outage_s_credits_at_their_first_publication() -> None:
    def record(gesture_id: str, timestamp: float, **fields: str) -> SimpleNamespace:
        gesture = {"id": gesture_id, "playbook": "outage-recovery", "type": "service-credit"}
        gesture["reason"] = "Service credit for outage f1-outage lasting 2h."
        return SimpleNamespace(value=json.dumps({**gesture, **fields}), timestamp=timestamp)

    records = [
        record("g1", 2_000.0),
        record("g1", 1_000.0),
        record("g2", 3_000.0),
        record("g3", 4_000.0, type="apology"),
        record("g4", 5_000.0, reason="Service credit for outage other lasting 3h."),
    ]
    assert credits(records, "f1-outage") == {"g1": 1_000.0, "g2": 3_000.0}
