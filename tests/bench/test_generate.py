"""bench.generate: a deterministic, valid, sorted stream; and smoke runs of the benchmarks (no timing asserted)."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.generate import dumps, generate, generate_lines, main
from recovery.events import STANDARD_TYPES, Event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    return list(generate(400, 60, seed=11))


def test_same_seed_same_stream(stream: list[dict]) -> None:
    again = [dumps(e) for e in generate(400, 60, seed=11)]
    assert [dumps(e) for e in stream] == again


def test_other_seed_other_stream(stream: list[dict]) -> None:
    other = [dumps(e) for e in itertools.islice(generate(400, 60, seed=12), 200)]
    assert [dumps(e) for e in stream[:200]] != other


def test_every_event_is_valid(stream: list[dict]) -> None:
    for event in stream:
        Event.from_dict(event)
        Event.from_json(dumps(event))


def test_sorted_by_occurred_at(stream: list[dict]) -> None:
    times = [Event.from_dict(e).ts for e in stream]
    assert times == sorted(times)


def test_unique_ids(stream: list[dict]) -> None:
    ids = [e["id"] for e in stream]
    assert len(ids) == len(set(ids))


def test_every_standard_type(stream: list[dict]) -> None:
    """All but `playbook.snoozed`, which recovery itself sends when someone snoozes a playbook through the API."""
    assert set(STANDARD_TYPES) - {"playbook.snoozed"} <= {e["type"] for e in stream}


def test_profile_comes_first_for_every_customer(stream: list[dict]) -> None:
    first: dict[str, str] = {}
    for event in stream:
        if "customer_id" in event:
            first.setdefault(event["customer_id"], event["type"])
    joined = sum(e["type"] == "customer.joined" for e in stream)
    assert joined > 0 and len(first) == 400 + joined  # the customers at the start, and those who joined
    assert set(first.values()) == {"customer.updated"}


def test_outages_are_regional_scope_events(stream: list[dict]) -> None:
    started = {e["data"]["outage_id"]: e for e in stream if e["type"] == "outage.started"}
    resolved = {e["data"]["outage_id"]: e for e in stream if e["type"] == "outage.resolved"}
    assert started
    for outage_id, end in resolved.items():
        begin = started[outage_id]
        assert "customer_id" not in begin and "customer_id" not in end
        assert begin["data"]["region"] == end["data"]["region"]
        duration = Event.from_dict(end).ts - Event.from_dict(begin).ts
        assert 30 * 60 <= duration <= 10 * 3600


def test_complaints_resolved_after_opening(stream: list[dict]) -> None:
    opened = {e["data"]["complaint_id"]: Event.from_dict(e).ts for e in stream if e["type"] == "complaint.opened"}
    resolved = {e["data"]["complaint_id"]: Event.from_dict(e).ts for e in stream if e["type"] == "complaint.resolved"}
    assert resolved and set(resolved) < set(opened)  # most are resolved, some never
    assert all(ts > opened[cid] for cid, ts in resolved.items())
    late = [cid for cid, ts in resolved.items() if ts - opened[cid] > 48 * 3600]
    assert late


def test_tier_mix(stream: list[dict]) -> None:
    tiers = [e["data"]["tier"] for e in stream if e["type"] == "customer.updated"]
    assert set(tiers) == {"standard", "silver", "gold", "platinum"}
    assert tiers.count("standard") > tiers.count("silver") > tiers.count("gold") > tiers.count("platinum")


def test_events_target_is_approximate() -> None:
    n = sum(1 for _ in generate(500, 30, seed=3, events=20_000))
    assert 17_000 <= n <= 23_000


def test_cli_writes_the_same_lines(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "events.jsonl"
    assert main(["--customers", "50", "--days", "10", "--seed", "5", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == "".join(generate_lines(50, 10, 5))


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_replay_throughput_quick() -> None:
    out = _run("bench.replay_throughput", "--quick")
    assert re.search(r"^ratio replay/raw events/s: \d+\.\d+ .*(PASS|FAIL)$", out, re.MULTILINE), out


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_memory_quick() -> None:
    out = _run("bench.memory", "--quick", "--breakdown")
    assert re.search(r"^peak RSS: [\d,.]+ MB .*(PASS|FAIL)$", out, re.MULTILINE), out
    assert re.search(r"^customers_in_memory: [\d,]+$", out, re.MULTILINE), out
    # The breakdown reads the store's attributes whether it is compiled (no instance dict) or not.
    held = {name: float(mb) for mb, name in re.findall(r"^ +([\d.]+) MB +(store\.\w+)$", out, re.MULTILINE)}
    assert held["store._history"] > 0 and held["store._ledger"] > 0, out


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_loop_quick() -> None:
    out = _run("bench.loop", "--quick", "--runs", "1")
    rows = {
        name.strip(): (int(events.replace(",", "")), float(per_event), written)
        for name, events, per_event, written in re.findall(
            r"^(replay \(decode and evaluate\)|loop, \w+ store) +([\d,]+) +[\d.]+ +[\d,]+ +([\d.]+) +\S+ +(\S+)$",
            out,
            re.MULTILINE,
        )
    }
    assert set(rows) == {"replay (decode and evaluate)", "loop, memory store", "loop, sqlite store"}, out
    # Every row went through the whole stream; SQLite wrote its log (Linux counts what a process writes).
    assert len({events for events, _, _ in rows.values()}) == 1, out
    assert all(per_event > 0 for _, per_event, _ in rows.values()), out
    if Path("/proc/self/io").exists():
        assert float(rows["loop, sqlite store"][2].replace(",", "")) > 0, out
    # The loop published what replay wrote, with either store.
    done = dict(
        re.findall(
            r"^(replay \(decode and evaluate\)|loop, \w+ store): runs .* ([\d,]+) tasks and gestures$", out, re.M
        )
    )
    assert len(done) == 3 and len(set(done.values())) == 1 and done["loop, sqlite store"] != "0", out
