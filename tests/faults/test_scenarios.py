"""The fault suite's own logic that needs no servers."""

from __future__ import annotations

import json

from faults.scenarios import at_scope_events


def _message(event_id: str, customer_id: str | None) -> tuple[bytes, bytes]:
    event: dict[str, object] = {"id": event_id, "type": "service.call", "data": {}}
    if customer_id is None:
        event.update(type="outage.started", data={"outage_id": event_id, "region": "north"})
    else:
        event["customer_id"] = customer_id
    return (customer_id or event_id).encode(), json.dumps(event).encode()


def test_a_stream_is_cut_before_and_after_each_outage_and_keeps_its_order() -> None:
    stream = [
        _message("e1", "C1"),
        _message("e2", "C2"),
        _message("o1", None),
        _message("o2", None),
        _message("e3", "C1"),
    ]
    parts = at_scope_events(stream)
    assert [[json.loads(v)["id"] for _, v in part] for part in parts] == [["e1", "e2"], ["o1"], ["o2"], ["e3"]]
    assert [m for part in parts for m in part] == stream


def test_a_stream_without_outages_is_one_part_and_an_empty_one_none() -> None:
    stream = [_message("e1", "C1"), _message("e2", "C2")]
    assert at_scope_events(stream) == [stream]
    assert at_scope_events([]) == []
