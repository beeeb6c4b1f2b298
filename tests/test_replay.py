from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from recovery.engine import Engine
from recovery.engine.matcher import Matcher, MatcherError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbook_text
from recovery.replay import replay, replay_engine
from recovery.store import MemoryStore
from tests.conftest import ROOT, random_stream, recovery_cli


@pytest.fixture
def stream_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(raw) + "\n" for raw in random_stream(3, customers=30, events=400)))
    return path


def test_two_runs_give_identical_output(stream_file: Path) -> None:
    first = recovery_cli("replay", "--rules", "rules", "--until", "2027-01-01T00:00:00Z", str(stream_file))
    second = recovery_cli("replay", "--rules", "rules", "--until", "2027-01-01T00:00:00Z", str(stream_file))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    effects = [json.loads(line) for line in first.stdout.splitlines()]
    assert {e["playbook"] for e in effects} == {
        "repeat-caller",
        "outage-recovery",
        "cancellation-save",
        "complaint-unresolved",
        "detractor-followup",
    }
    for e in effects:
        assert e["kind"] in ("task", "gesture")
        assert e["created_at"].endswith("Z")


def test_duplicates_are_ignored(stream_file: Path, tmp_path: Path) -> None:
    lines = stream_file.read_text().splitlines(keepends=True)
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text("".join(line + line for line in lines))
    once = recovery_cli("replay", "--rules", "rules", str(stream_file))
    twice = recovery_cli("replay", "--rules", "rules", "--summary", str(doubled))
    assert twice.returncode == 0
    assert once.stdout == twice.stdout
    assert f"{len(lines)} duplicates" in twice.stderr


def test_malformed_lines_are_reported_with_their_number_and_skipped(tmp_path: Path) -> None:
    calls = [
        {"id": f"c{i}", "type": "service.call", "occurred_at": f"2026-11-0{i + 1}T10:00:00Z", "customer_id": "C1"}
        for i in range(3)
    ]
    lines = [
        json.dumps(calls[0]),
        "{not json",
        json.dumps({"id": "x", "type": "Service Call", "occurred_at": "2026-11-01T10:00:00Z", "customer_id": "C1"}),
        json.dumps(calls[1]),
        json.dumps({"id": "y", "type": "service.call", "occurred_at": "2026-11-01T10:00:00", "customer_id": "C1"}),
        json.dumps(calls[2]),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = recovery_cli("replay", "--rules", "rules", str(path))
    assert result.returncode == 0
    errors = result.stderr.splitlines()
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 5"]
    assert "type" in errors[1] and "occurred_at" in errors[2]
    effects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["playbook"] for e in effects] == ["repeat-caller"]  # the good lines around the bad ones count

    strict = recovery_cli("replay", "--strict", "--rules", "rules", str(path))
    assert strict.returncode == 1
    assert "line 2" in strict.stderr
    assert strict.stdout == ""


def test_numbers_that_are_not_finite_are_lines_skipped(tmp_path: Path) -> None:
    def profile(n: int, data: dict[str, object]) -> str:
        raw = {"id": f"p{n}", "type": "customer.updated", "occurred_at": "2026-11-01T09:00:00Z", "customer_id": f"C{n}"}
        return json.dumps({**raw, "data": {"tier": "gold", **data}})

    def cancel(n: int) -> str:
        raw = {"id": f"c{n}", "type": "cancellation.requested", "occurred_at": "2026-11-01T10:00:00Z"}
        return json.dumps({**raw, "customer_id": f"C{n}"})

    lines = [
        profile(1, {"annual_value": "@"}).replace('"@"', "Infinity"),
        cancel(1),
        profile(2, {"annual_value": 2000, "extra": {"minutes": "@"}}).replace('"@"', "NaN"),
        cancel(2),
        profile(3, {"annual_value": "@"}).replace('"@"', "1e999"),
        cancel(3),
        profile(4, {"annual_value": 3000}),
        cancel(4),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = recovery_cli("replay", "--rules", "rules", str(path))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "line 1: invalid event: event 'p1' (customer.updated): data.annual_value: not a finite number",
        "line 3: invalid event: event 'p2' (customer.updated): data.extra.minutes: not a finite number",
        "line 5: invalid event: event 'p3' (customer.updated): data.annual_value: not a finite number",
    ]
    gestures = [json.loads(line) for line in result.stdout.splitlines() if '"gesture"' in line]
    assert [(g["customer_id"], g["amount"]) for g in gestures] == [("C4", 300.0)]


def _calls_with_a_bad_byte() -> bytes:
    """Three calls (a repeat-caller task), a line in Latin-1, a fourth call: five lines."""
    calls = [
        {"id": f"c{i}", "type": "service.call", "occurred_at": f"2026-11-0{i + 1}T10:00:00Z", "customer_id": "C1"}
        for i in range(4)
    ]
    bad = json.dumps({**calls[3], "id": "x", "data": {"reason": "caf@"}}).encode().replace(b"@", b"\xe9")
    lines = [json.dumps(c).encode() for c in calls[:3]] + [bad, json.dumps(calls[3]).encode()]
    return b"\n".join(lines) + b"\n"


def recovery_bytes(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=120
    )


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_line_that_is_not_utf8_is_reported_and_skipped(tmp_path: Path, source: str) -> None:
    data = _calls_with_a_bad_byte()
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(data)
    args = ("replay", "--rules", "rules", str(path) if source == "file" else "-")
    result = recovery_bytes(*args, stdin=data if source == "stdin" else None)
    assert result.returncode == 0
    assert result.stderr.decode().splitlines() == ["line 4: invalid event: not UTF-8 text (byte 0xe9 at column 120)"]
    # the task of the lines before stays, and the line after is read
    assert [json.loads(line)["playbook"] for line in result.stdout.splitlines()] == ["repeat-caller"]
    summary = recovery_bytes(*args[:-1], "--summary", args[-1], stdin=data if source == "stdin" else None)
    assert summary.stderr.decode().splitlines()[1] == "5 lines, 4 events, 0 duplicates, 1 invalid"

    strict = recovery_bytes(*args[:3], "--strict", args[3], stdin=data if source == "stdin" else None)
    assert strict.returncode == 1
    assert strict.stderr.decode() == "error: line 4: invalid event: not UTF-8 text (byte 0xe9 at column 120)\n"


def test_summary_counts_lines_events_duplicates_and_invalid(shipped_playbooks: list[CompiledPlaybook]) -> None:
    call = {"id": "c1", "type": "service.call", "occurred_at": "2026-11-01T10:00:00Z", "customer_id": "C1"}
    later = {**call, "id": "c2", "occurred_at": "2026-11-02T10:00:00Z"}
    lines: list[str | bytes] = [
        json.dumps(call) + "\n",
        "\n",
        "   \t\n",
        json.dumps(call).encode() + b"\n",  # the same event again, as bytes
        b"\n",
        "{bad\n",
        json.dumps(later),
    ]
    err = io.StringIO()
    summary = replay(lines, replay_engine(shipped_playbooks), io.StringIO(), err)
    assert (summary.lines, summary.events, summary.duplicates, summary.invalid) == (7, 2, 1, 1)
    assert [line.split(":")[0] for line in err.getvalue().splitlines()] == ["line 6"]
    assert summary.render().splitlines()[0] == "7 lines, 2 events, 1 duplicates, 1 invalid"


def test_summary_counts_muted_and_cancelled(shipped_playbooks: list[CompiledPlaybook]) -> None:
    def event(n: int, type: str, hours: float, **data: object) -> str:
        at = f"2026-11-0{1 + int(hours // 24)}T{int(hours % 24):02d}:00:00Z"
        raw = {"id": f"e{n}", "type": type, "occurred_at": at, "customer_id": "C1", "data": data}
        return json.dumps(raw)

    snooze = {"playbook": "repeat-caller", "until": "2026-11-01T05:00:00Z", "reason": "moving"}
    lines = [
        event(1, "playbook.snoozed", 0, **snooze),
        *(event(n, "service.call", n) for n in range(2, 5)),  # the third call (4h) is muted: snoozed
        event(5, "service.call", 6),  # raises: the snooze ended
        event(6, "customer.lost", 7, reason="price"),  # cancels that task
    ]
    out = io.StringIO()
    summary = replay(lines, replay_engine(shipped_playbooks), out, io.StringIO())
    effects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["playbook"], e["status"]) for e in effects] == [
        ("repeat-caller", "open"),
        ("repeat-caller", "cancelled"),
    ]
    assert effects[0]["case_id"] == effects[1]["case_id"] != ""
    assert summary.muted == {("repeat-caller", "snoozed"): 1}
    assert summary.cancelled == {"repeat-caller": 1}
    assert summary.effects == {("task", "repeat-caller", "care-callback"): 1}
    assert summary.render().splitlines()[1:] == [
        "       1  task     repeat-caller            care-callback",
        "       1  muted    repeat-caller            snoozed",
        "       1  cancel   repeat-caller            customer-lost",
    ]


def test_stdin_and_until(tmp_path: Path) -> None:
    opened = {
        "id": "k1",
        "type": "complaint.opened",
        "occurred_at": "2026-11-01T10:00:00Z",
        "customer_id": "C1",
        "data": {"complaint_id": "K1"},
    }
    text = json.dumps(opened) + "\n"
    without = recovery_cli("replay", "--rules", "rules", "-", stdin=text)
    assert without.stdout == ""
    at_deadline = recovery_cli("replay", "--rules", "rules", "--until", "2026-11-03T10:00:00Z", "-", stdin=text)
    assert at_deadline.stdout == ""  # the deadline fires only once the clock is past it
    after = recovery_cli("replay", "--rules", "rules", "--until", "2026-11-03T10:00:01Z", "-", stdin=text)
    (task,) = [json.loads(line) for line in after.stdout.splitlines()]
    assert task["playbook"] == "complaint-unresolved"
    assert task["created_at"] == "2026-11-03T10:00:00Z"
    assert task["due_at"] == "2026-11-04T10:00:00Z"


def test_bad_arguments_say_what_is_wrong(tmp_path: Path) -> None:
    result = recovery_cli("replay", "--rules", "rules", "--until", "tomorrow", "-", stdin="")
    assert result.returncode == 2
    assert "--until" in result.stderr and "tomorrow" in result.stderr
    missing = recovery_cli("replay", "--rules", "rules", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1
    assert "nope.jsonl" in missing.stderr
    bad_rules = recovery_cli("replay", "--rules", str(tmp_path), "-", stdin="")
    assert bad_rules.returncode == 1
    assert "no playbook files" in bad_rules.stderr


def test_summary_counts_shadow_effects_by_version_held_out_ones_and_errors() -> None:
    text = """\
id: {id}
version: 3
{extra}
trigger: {{event: service.call}}
when: event.data.reason == "billing"
actions:
  - task: {{queue: care, priority: P2, due_in: 1d, title: call, reason: called}}
"""
    shadow = load_playbook_text(text.format(id="new-caller", extra="mode: shadow"), "new-caller.yaml")
    held = load_playbook_text(text.format(id="caller", extra="holdout: 50%"), "caller.yaml")
    broken = load_playbook_text(text.format(id="broken", extra="mode: shadow"), "broken.yaml")
    ids = [f"C{i}" for i in range(20)]
    lines = [
        json.dumps(
            {
                "id": f"e{i}",
                "type": "service.call",
                "occurred_at": f"2026-11-01T{i:02d}:00:00Z",
                "customer_id": cid,
                "data": {"reason": "billing"},
            }
        )
        for i, cid in enumerate(ids)
    ]

    class Failing(Matcher):
        def matches_json(self, name: str, message: str) -> bool:
            if name == "broken":
                raise MatcherError("odd data")
            return super().matches_json(name, message)

    pbs = [shadow, held, broken]
    engine = Engine(pbs, MemoryStore(keep_effects=False), matcher=Failing((pb.id, pb.condition.pattern) for pb in pbs))
    out = io.StringIO()
    summary = replay(lines, engine, out, io.StringIO())
    out_n = sum(held.held_out(cid) for cid in ids)
    assert 0 < out_n < 20
    effects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(e["customer_id"] for e in effects) == sorted(cid for cid in ids if not held.held_out(cid))
    assert {e["playbook"] for e in effects} == {"caller"}
    assert summary.shadow == {("new-caller", 3, "task"): 20}
    assert summary.muted == {("new-caller", "shadow"): 20, ("caller", "held-out"): out_n}
    assert summary.errors == {"broken": 20}
    assert summary.render().splitlines()[1:] == [
        f"  {20 - out_n:6d}  task     caller                   care",
        f"  {out_n:6d}  muted    caller                   held-out",
        "      20  shadow   new-caller               v3 task",
        "      20  errors   broken                   evaluation failed",
    ]
