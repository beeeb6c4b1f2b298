"""The report's JSON (the keys other tools read) against a random stream whose answers this test computes on its
own, by a plain loop over the events and the effects the engine returned: never through the report's code."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from recovery.effects import Effect, Task
from recovery.engine import Engine
from recovery.events import Event
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.report import build_report
from recovery.store import MemoryStore
from recovery.times import format_time, parse_time
from tests.report.conftest import DAY, W

SINCE, UNTIL = W, W + 28 * DAY


def stream(seed: int) -> list[Event]:
    """Profiles before the period, then lifecycle events, cancellations and calls at distinct times."""
    rng = random.Random(seed)
    raws: list[tuple[float, dict[str, Any]]] = []
    times = rng.sample(range(1, 60 * 86400), 400)  # distinct seconds from 20 days before the period on
    customers = [f"C{n}" for n in range(40)]
    for n, cid in enumerate(customers):
        data = {"tier": rng.choice(["standard", "gold"]), "region": rng.choice(["north", "south"]),
                "annual_value": rng.choice([100, 900, 1500, 4000])}  # fmt: skip
        raws.append((W - 30 * DAY + n, {"type": "customer.updated", "customer_id": cid, "data": data}))
    for n, second in enumerate(times):
        at = W - 20 * DAY + second
        cid = rng.choice(customers)
        kind = rng.choice(["customer.joined", "customer.renewed", "customer.lost", "customer.referred",
                           "cancellation.requested", "service.call", "customer.updated"])  # fmt: skip
        data: dict[str, Any] = {}
        if kind == "customer.joined":
            cid = f"N{n}"
            data = {"annual_value": rng.choice([200, 700]), "segment": "home", "channel": "web"}
        elif kind in ("customer.renewed", "customer.lost"):
            data = {"reason": rng.choice(["price", "service", "loyalty"])}
            if rng.random() < 0.5:
                data["annual_value"] = rng.choice([300, 1200])
        elif kind == "customer.referred":
            data = {"referred_customer_id": f"R{n}"}
        elif kind == "service.call":
            data = {"reason": "billing"}
        elif kind == "customer.updated":
            data = {"tier": "silver", "annual_value": rng.choice([50, 2500])}
        raws.append((at, {"type": kind, "customer_id": cid, "data": data}))
    raws.sort(key=lambda item: item[0])
    return [
        Event.from_dict({"id": f"s{seed}-{n}", "occurred_at": format_time(at), **raw})
        for n, (at, raw) in enumerate(raws)
    ]


def expected(events: list[Event], effects: list[Effect], outcomes: dict[str, str]) -> dict[str, Any]:
    """The figures, by a plain loop: the customer's latest known value (profile, joining, renewal), what happened in
    the period, and the effects the engine returned."""
    value: dict[str, float] = {}
    new = lost_n = renewed = referrals = 0
    new_v = lost_v = renewed_v = 0.0
    lost: list[dict[str, Any]] = []
    for e in events:
        own = e.data.get("annual_value")
        here = float(own) if own is not None else value.get(e.customer_id or "", 0.0)
        if e.type in ("customer.updated", "customer.joined", "customer.renewed") and own is not None:
            value[e.customer_id or ""] = float(own)
        if not SINCE <= e.ts < UNTIL:
            continue
        if e.type == "customer.joined":
            new, new_v = new + 1, new_v + here
        elif e.type == "customer.renewed":
            renewed, renewed_v = renewed + 1, renewed_v + here
        elif e.type == "customer.referred":
            referrals += 1
        elif e.type == "customer.lost":
            lost_n, lost_v = lost_n + 1, lost_v + here
            tried = any(
                f.customer_id == e.customer_id and e.ts - 90 * DAY <= parse_time(f.created_at) < e.ts for f in effects
            )
            lost.append({"customer_id": e.customer_id, "value": here, "reason": e.data["reason"],
                         "recovery_attempted": tried, "ts": e.ts})  # fmt: skip
    lost.sort(key=lambda row: (-row["value"], row["ts"], row["customer_id"]))
    playbooks: dict[str, dict[str, Any]] = {}
    raised = {f.id: f for f in effects if isinstance(f, Task)}  # a lost customer's task comes again, cancelled
    for f in raised.values():
        if SINCE <= parse_time(f.created_at) < UNTIL:
            p = playbooks.setdefault(f.playbook, {"tasks": 0, "saved": 0, "lost": 0, "unreachable": 0})
            p["tasks"] += 1
            if outcomes.get(f.id) in ("saved", "lost", "unreachable"):
                p[outcomes[f.id]] += 1
    for p in playbooks.values():
        tried_n = p["saved"] + p["lost"] + p.pop("unreachable")
        p["save_rate"] = p["saved"] / tried_n if tried_n else None
    return {
        "new": (new, new_v),
        "lost": (lost_n, lost_v),
        "renewed": (renewed, renewed_v),
        "referrals": referrals,
        "rows": [{k: v for k, v in row.items() if k != "ts"} for row in lost],
        "playbooks": playbooks,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_json_against_answers_computed_apart(seed: int, shipped_playbooks: list[CompiledPlaybook]) -> None:
    events = stream(seed)
    store = MemoryStore()
    engine = Engine(shipped_playbooks, store)
    effects: list[Effect] = []
    for event in events:
        effects += engine.process(event)
    rng = random.Random(seed)
    outcomes: dict[str, str] = {}
    for task in (f for f in effects if isinstance(f, Task)):
        if rng.random() < 0.7 and store.claim_task(task.id, "ann", UNTIL):
            outcomes[task.id] = rng.choice(["saved", "lost", "unreachable", "not-needed"])
            store.complete_task(task.id, "ann", UNTIL, outcomes[task.id], "x", "")
    report = json.loads(json.dumps(build_report(store, SINCE, UNTIL, "week")))  # as a tool reads it
    want = expected(events, effects, outcomes)
    assert report["period"] == {"from": "2026-11-02T00:00:00Z", "to": "2026-11-30T00:00:00Z", "by": "week"}
    customers = report["customers"]
    for key in ("new", "lost", "renewed"):
        assert (customers[key]["count"], customers[key]["value"]) == want[key], key
    assert customers["referrals"] == want["referrals"]
    assert [
        {k: row[k] for k in ("customer_id", "value", "reason", "recovery_attempted")} for row in report["lost"]
    ] == (want["rows"])
    got = {pid: {k: p[k] for k in ("tasks", "saved", "lost", "save_rate")} for pid, p in report["playbooks"].items()}
    assert {pid: p for pid, p in got.items() if p["tasks"]} == want["playbooks"]
    assert want["rows"] and want["playbooks"] and any(not row["recovery_attempted"] for row in want["rows"])
    for number in (customers["new"]["value"], customers["lost"]["count"], *(r["value"] for r in report["lost"])):
        assert isinstance(number, int | float) and not isinstance(number, bool)
