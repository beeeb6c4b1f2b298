"""The streams of the fault scenarios: simulated traffic (outages, absences, cancellations), its effects as
`recovery replay` computes them, and hostile messages."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.servers import ROOT
from recovery.consumer import partition_of
from recovery.engine import Engine
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.replay import replay
from recovery.simulate import dumps, generate
from recovery.store import MemoryStore
from recovery.times import format_time, parse_time

TICK_TYPE = "clock.tick"
"""A type no playbook reads: one event of it per partition, a month after the stream, moves every partition's clock
past the stream (deadlines due within it fire), as `replay`'s one clock moves past every event."""
DAYS = 20


@dataclass(frozen=True)
class Stream:
    """The events (JSON lines, in order, with their Kafka keys) and the effects replay raises for them, by id."""

    messages: list[tuple[bytes, bytes]]
    effects: dict[str, dict[str, Any]]

    @property
    def events(self) -> int:
        return len(self.messages)


def key_of(event: dict[str, Any]) -> str:
    """The Kafka key producers use: the customer id, or the outage id of a scope event."""
    return str(event.get("customer_id") or event["data"].get("outage_id") or event["id"])


def simulated(events: int, seed: int, partitions: int) -> Stream:
    """About `events` simulated events (one customer per five to six events, over 20 days), then a tick per
    partition; the effects are replay's of exactly these lines."""
    customers = max(50, events // 6)
    stream = list(generate(customers, DAYS, seed, events))
    end = max(parse_time(e["occurred_at"]) for e in stream) + 30 * 86400
    for n, customer in enumerate(_one_per_partition(partitions)):
        stream.append({"id": f"tick-{n}", "type": TICK_TYPE, "occurred_at": format_time(end),
                       "customer_id": customer, "data": {}})  # fmt: skip
    lines = [dumps(e) for e in stream]
    return Stream([(key_of(e).encode(), line.encode()) for e, line in zip(stream, lines, strict=True)], replayed(lines))


def replayed(lines: list[str]) -> dict[str, dict[str, Any]]:
    playbooks = load_playbooks_or_raise([ROOT / "rules"])
    out = io.StringIO()
    replay(lines, Engine(playbooks, MemoryStore()), out, io.StringIO())
    effects = [json.loads(line) for line in out.getvalue().splitlines()]
    return {e["id"]: e for e in effects}


def _one_per_partition(partitions: int) -> list[str]:
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        customer = f"tick-{n}"
        found.setdefault(partition_of(customer, partitions), customer)
        n += 1
    return [found[p] for p in range(partitions)]


def hostile(count: int, seed: int, near_max_bytes: int) -> list[tuple[bytes, bytes]]:
    """`count` messages that are not acceptable events, of every kind the DLQ must take: invalid JSON, invalid
    UTF-8, huge and near-maximum sizes, deep nesting, wrong types, missing fields, timestamps from the future and
    the far past, NaN and infinities."""
    rng = random.Random(seed)  # noqa: S311 - test data
    makers: list[Callable[[int], bytes]] = [
        lambda n: b"{not json " + str(n).encode(),
        lambda n: b'{"id": "h' + str(n).encode() + b'", "type": "service.call", "data": {"r": "\xff\xfe"}}',
        lambda n: b"[" * 100_000 + b"]" * 100_000,
        lambda n: json.dumps(_event(n, occurred_at=12345)).encode(),
        lambda n: json.dumps({k: v for k, v in _event(n).items() if k != "type"}).encode(),
        lambda n: json.dumps(_event(n, occurred_at="2999-01-01T00:00:00Z")).encode(),
        lambda n: json.dumps(_event(n, occurred_at="1901-01-01T00:00:00Z")).encode(),
        lambda n: json.dumps(_event(n, type="survey.response", data={"score": float("nan")})).encode(),
        lambda n: json.dumps(_event(n, data={"amount": float("inf")})).encode().replace(b"Infinity", b"1e999"),
        lambda n: json.dumps(_event(n, customer_id=["C1"])).encode(),
        lambda n: b"",
    ]
    out: list[tuple[bytes, bytes]] = []
    for n in range(count):
        value = makers[n % len(makers)](n)
        out.append((f"C{rng.randrange(1000):06d}".encode(), value))
    # The largest: a valid-looking event of about 1 MiB, and one just under what the broker and the producer take
    # (its DLQ copy carries headers too).
    big = _event(count, data={"blob": "x" * (1024 * 1024 - 4096)})
    big["type"] = "Not.Valid"
    out[0] = (b"C000001", json.dumps(big).encode())
    near = _event(count + 1, data={"blob": "x" * (near_max_bytes - 400)})
    near["occurred_at"] = "not a time"
    out[1] = (b"C000002", json.dumps(near).encode())
    return out


def _event(n: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"hostile-{n}",
        "type": "service.call",
        "occurred_at": "2026-01-06T10:00:00Z",
        "customer_id": "C000001",
        "data": {},
    }
    event.update(fields)
    return event
