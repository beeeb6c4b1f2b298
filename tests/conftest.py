from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recovery.engine import Engine
from recovery.events import Event
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.times import format_time, parse_time

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
T0 = parse_time("2026-11-02T09:00:00Z")


@pytest.fixture(scope="session")
def shipped_playbooks() -> list[CompiledPlaybook]:
    return load_playbooks_or_raise([RULES])


@pytest.fixture
def engine_factory(shipped_playbooks: list[CompiledPlaybook]) -> Callable[..., Engine]:
    def make(**kwargs: Any) -> Engine:
        return Engine(shipped_playbooks, **kwargs)

    return make


@pytest.fixture
def event_factory() -> Callable[..., Event]:
    counter = itertools.count(1)

    def make(
        type: str = "service.call",
        customer_id: str | None = "C1",
        at: float = 0.0,
        data: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Event:
        raw: dict[str, Any] = {
            "id": id or f"ev-{next(counter)}",
            "type": type,
            "occurred_at": format_time(T0 + at),
            "data": data or {},
        }
        if customer_id is not None:
            raw["customer_id"] = customer_id
        return Event.from_dict(raw)

    return make


def random_stream(seed: int, customers: int, events: int, days: float = 40) -> Iterator[dict[str, Any]]:
    """A small mixed stream touching every shipped playbook, sorted by time (ties keep generation order)."""
    rng = random.Random(seed)
    out: list[tuple[float, int, dict[str, Any]]] = []
    ids = itertools.count()
    regions = ["north", "south"]

    def add(at: float, type: str, cid: str | None, data: dict[str, Any]) -> None:
        n = next(ids)
        raw: dict[str, Any] = {"id": f"r{seed}-{n}", "type": type, "occurred_at": format_time(T0 + at), "data": data}
        if cid is not None:
            raw["customer_id"] = cid
        out.append((at, n, raw))

    for c in range(customers):
        tier = rng.choice(["standard", "silver", "gold", "platinum"])
        add(
            0,
            "customer.updated",
            f"C{c}",
            {"tier": tier, "region": rng.choice(regions), "annual_value": rng.choice([0, 999, 1000, 6000])},
        )
    span = days * 86400
    for _ in range(events):
        at = rng.uniform(1, span)
        cid = f"C{rng.randrange(customers)}"
        kind = rng.random()
        if kind < 0.45:
            add(at, "service.call", cid, {"reason": rng.choice(["billing", "router"])})
        elif kind < 0.6:
            k = f"K{rng.randrange(10**6)}"
            add(at, "complaint.opened", cid, {"complaint_id": k})
            if rng.random() < 0.7:
                add(at + rng.uniform(3600, 4 * 86400), "complaint.resolved", cid, {"complaint_id": k})
        elif kind < 0.75:
            add(at, "survey.response", cid, {"score": rng.randrange(11)})
        elif kind < 0.8:
            add(at, "cancellation.requested", cid, {})
        elif kind < 0.85:
            o = f"O{rng.randrange(10**6)}"
            add(at, "outage.started", None, {"outage_id": o, "region": rng.choice(regions)})
            add(at + rng.uniform(1800, 6 * 3600), "outage.resolved", None, {"outage_id": o})
        else:
            add(at, "payment.failed", cid, {})
    out.sort(key=lambda item: (item[0], item[1]))
    for _, _, raw in out:
        yield raw
