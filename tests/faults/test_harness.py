"""The fault harness's comparison of what was published with replay's effects (the topics read back are given here:
the comparison itself needs no broker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from faults.harness import Row, Run
from faults.stream import Stream


class Published(NamedTuple):
    """The fields of a consumed record the comparison reads (as kafka-python's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes


def compared(tmp_path: Path, published: dict[str, list[dict[str, Any]]], expected: dict[str, dict[str, Any]]) -> Row:
    run = Run("row", "127.0.0.1:1", "sqlite://", tmp_path)
    records = {
        topic: [
            Published(run.topics[topic], 0, offset, 1_790_000_000_000 + offset, json.dumps(effect).encode())
            for offset, effect in enumerate(effects)
        ]
        for topic, effects in published.items()
    }
    run.read = lambda topic: records.get(topic, [])  # type: ignore[method-assign]
    row = Row("row")
    run.compare(row, Stream(messages=[], effects=expected))
    return row


def test_repeats_are_counted_and_where_their_copies_went_is_written(tmp_path: Path) -> None:
    task = {"id": "tsk-1", "status": "open"}
    credit = {"id": "gst-1", "status": "issued"}
    row = compared(tmp_path, {"tasks": [task, task, task], "gestures": [credit]}, {"tsk-1": task, "gst-1": credit})
    assert (row.seen, row.missing, row.unexpected, row.repeats) == (2, 0, 0, 2)
    lines = (tmp_path / "row-repeats.txt").read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tsk-1: faults-row-tasks-")
    assert "[0]@0 1790000000.000" in lines[0] and "[0]@2 1790000000.002" in lines[0]


def test_a_status_change_is_an_update_not_a_repeat_and_writes_no_repeats_file(tmp_path: Path) -> None:
    task = {"id": "tsk-1", "status": "open"}
    row = compared(tmp_path, {"tasks": [task, {**task, "status": "cancelled"}]}, {"tsk-1": task})
    assert (row.seen, row.repeats, row.updates, row.unexpected) == (1, 0, 1, 0)
    assert not (tmp_path / "row-repeats.txt").exists()
