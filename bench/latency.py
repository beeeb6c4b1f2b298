"""Latency of `recovery serve` (SQLite): from an event produced to its task on `recovery.tasks`, at sustained rates.

    python -m bench.latency [--rates 200,2000,10000] [--seconds 60] [--bootstrap HOST:PORT] [--drain-timeout-s S]

`BENCH_LATENCY_SECONDS` sets the default of `--seconds` (a quick run of `make bench`: BENCH_LATENCY_SECONDS=10).

1. Starts a broker of its own (bench.servers) unless `--bootstrap` names one, fresh topics and `recovery serve`
   as a process of its own on a fresh SQLite store (bench.service), with serve's defaults (its clock follows wall
   time minus `lateness_s`, 60 s) and the shipped playbooks; a warm-up of 100 events is drained first.
2. For each rate (events/s), a paced producer (one kafka-python KafkaProducer, acks=all, no linger) sends events
   dated now for `--seconds`. Every ten events are one new customer's: a profile, three service calls (the third
   raises repeat-caller's task) and six survey responses scored 9 (no task), so one task per ten events. It then
   waits until serve has committed everything and emptied its outbox.
3. The tasks are read back from `recovery.tasks`, and each one's latency is its message's broker timestamp minus
   the produce time of its trigger (the newest of its evidence events, the third call). The output topics are
   made with `message.timestamp.type=LogAppendTime`, so the broker stamps each task as it appends it; the produce
   time is the wall clock read right before `send`. Both are this machine's clock (the broker runs here). This
   measures event produced to task on the topic without any consumer of ours in the path: reading the tasks after
   the run costs serve nothing while it works, and no polling interval adds to the figures. A task published more
   than once (a status change) counts at its first publication.

Prints, per rate: the rate asked for and the one achieved (the producer says when it could not keep up, and how far
it fell behind its schedule), the events sent, the tasks measured of those expected, and p50 / p99 / max in ms.
No target is asserted here: the figures are for people to read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from bench.report import load, per_second, percentile, table
from bench.servers import CLIENTS, bootstrap_option, clients_option, with_broker
from bench.service import STALL_S, Served, served
from recovery.native import describe_build
from recovery.times import format_time

BLOCK = 10
"""Events per customer: one task each."""
CALLS = (1, 4, 8)
"""The positions of the service calls in a block; the last one raises the task."""
TICK_S = 0.002
"""The longest the producer sleeps before it looks at its schedule again."""
SECONDS_ENV = "BENCH_LATENCY_SECONDS"
"""Overrides the default of `--seconds` (60), e.g. `BENCH_LATENCY_SECONDS=10 make bench` for a quick run."""
KEPT_UP = 0.98
"""An achieved rate below this share of the rate asked for is reported as the producer not keeping up."""


def event(prefix: str, n: int, at: float) -> tuple[bytes, bytes]:
    """Event `n` of a run as (key, value): id `{prefix}-{n}`, dated `at` (epoch seconds), for customer
    `{prefix}-c{n // BLOCK}`: a profile first, service calls at CALLS, else a survey response scored 9."""
    customer = f"{prefix}-c{n // BLOCK}"
    position = n % BLOCK
    if position == 0:
        kind, data = "customer.updated", {"tier": "standard", "region": "north"}
    elif position in CALLS:
        kind, data = "service.call", {"reason": "billing"}
    else:
        kind, data = "survey.response", {"score": 9}
    body = {"id": f"{prefix}-{n}", "type": kind, "occurred_at": format_time(at), "customer_id": customer, "data": data}
    return customer.encode(), json.dumps(body, separators=(",", ":")).encode()


def event_number(prefix: str, event_id: str) -> int | None:
    """`n` of an id `{prefix}-{n}`; None for an id of another run."""
    head, _, tail = event_id.rpartition("-")
    return int(tail) if head == prefix and tail.isdigit() else None


def due(rate: float, elapsed_s: float, total: int) -> int:
    """How many of `total` events are due `elapsed_s` into a run at `rate` events/s (event k is due at k / rate)."""
    if elapsed_s < 0:
        return 0
    return min(total, int(elapsed_s * rate) + 1)


@dataclass
class Pacing:
    """What a paced run of the producer achieved."""

    sent: int
    seconds: float
    """From the first send to the last send's return."""
    behind_s: float
    """The furthest an event was sent after its due time."""

    def rate(self) -> float:
        # The last of n events is due at (n - 1) / rate: a producer on time takes that long.
        return per_second(max(self.sent - 1, 0), self.seconds)


def pace(
    rate: float,
    total: int,
    send: Callable[[int], None],
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Pacing:
    """Call `send(k)` for k in 0..total-1, each at k / rate seconds after the start or as soon after as it can."""
    start = clock()
    sent, behind, last = 0, 0.0, 0.0
    while sent < total:
        now = clock() - start
        target = due(rate, now, total)
        if sent < target:
            behind = max(behind, now - sent / rate)
            while sent < target:
                send(sent)
                sent += 1
            last = clock() - start
        else:
            sleep(min(TICK_S, sent / rate - now))
    return Pacing(sent, last, behind)


@dataclass
class Outcome:
    """One rate's run: the producer's pacing and the latencies measured (ms, ascending)."""

    rate: float
    pacing: Pacing
    expected: int
    latencies_ms: list[float] = field(default_factory=list)
    note: str | None = None

    def cells(self) -> list[str]:
        achieved = self.pacing.rate()
        row = [
            f"{self.rate:,.0f}/s",
            f"{achieved:,.0f}/s",
            f"{self.pacing.behind_s * 1000:,.0f}",
            f"{self.pacing.sent:,}",
        ]
        row.append(f"{len(self.latencies_ms):,} of {self.expected:,}")
        if not self.latencies_ms:
            return [*row, "-", "-", "-"]
        ordered = self.latencies_ms
        return [*row, *(f"{percentile(ordered, q):,.1f}" for q in (50, 99, 100))]


HEADER = ["rate", "achieved", "behind ms", "events", "tasks measured", "p50 ms", "p99 ms", "max ms"]


def latencies(records: Sequence[Any], prefix: str, produced: array[float]) -> list[float]:
    """The latency of each task of run `prefix` among the records of `recovery.tasks`: its broker timestamp (ms)
    minus the produce time of its newest evidence event, at its first publication; ascending."""
    first: dict[str, float] = {}
    for record in records:
        task = json.loads(record.value)
        numbers = [n for n in (event_number(prefix, e) for e in task.get("evidence", ())) if n is not None]
        if task.get("kind") != "task" or not numbers:
            continue
        latency = record.timestamp - max(produced[n] for n in numbers) * 1000
        first[task["id"]] = min(latency, first.get(task["id"], float("inf")))
    return sorted(first.values())


def one_rate(
    service: Served, producer: KafkaProducer, prefix: str, rate: float, seconds: float, drain_timeout_s: float
) -> Outcome:
    """Produce at `rate` for `seconds`, wait until serve has drained it, and measure its tasks."""
    total = max(BLOCK, int(rate * seconds) // BLOCK * BLOCK)
    produced = array("d", bytes(8 * total))
    topic = service.run.topics["events"]

    def send(n: int) -> None:
        now = time.time()
        key, value = event(prefix, n, now)
        produced[n] = now
        producer.send(topic, key=key, value=value)

    pacing = pace(rate, total, send)
    producer.flush()
    outcome = Outcome(rate, pacing, total // BLOCK)
    if pacing.rate() < KEPT_UP * rate:
        outcome.note = f"the producer could not keep up: {pacing.rate():,.0f} events/s of {rate:,.0f} asked"
    if not service.drained(drain_timeout_s):
        outcome.note = (
            f"serve did not drain (nothing committed for {STALL_S:g} s, or {drain_timeout_s:g} s passed): only the "
            "tasks published by then count"
        )
    outcome.latencies_ms = latencies(service.run.read("tasks"), prefix, produced)
    return outcome


def measure(args: argparse.Namespace, bootstrap: str, stack: contextlib.ExitStack) -> int:
    service = stack.enter_context(served(bootstrap, "latency", lateness_s="60", **CLIENTS[args.clients].settings()))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    stack.callback(producer.close)
    service.start()
    warm_up = one_rate(service, producer, "warm", 1_000.0, 0.1, args.drain_timeout_s)
    print(
        f"latency: recovery serve (SQLite, the shipped playbooks, {CLIENTS[args.clients]}) on {bootstrap}; warm-up: "
        f"{len(warm_up.latencies_ms)} of {warm_up.expected} tasks; one task per {BLOCK} events",
        flush=True,
    )
    outcomes: list[Outcome] = []
    for i, rate in enumerate(args.rates):
        print(f"  {rate:,.0f} events/s for {args.seconds:g} s ...", flush=True)
        outcomes.append(one_rate(service, producer, f"r{i}", rate, args.seconds, args.drain_timeout_s))
    print()
    print(table(HEADER, [o.cells() for o in outcomes]))
    for outcome in outcomes:
        if outcome.note is not None:
            print(f"{outcome.rate:,.0f} events/s: {outcome.note}")
    print("achieved: events sent over the time from the first send to the last; behind: the furthest an event was")
    print("sent after its due time; latency: trigger produced to task appended to the tasks topic (broker clock)")
    print(load() + ", shared with the broker and this producer")
    print(f"recovery: {describe_build()}")
    return 0


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give rates above 0, comma-separated")
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates",
        type=_rates,
        default=[200.0, 2_000.0, 10_000.0],
        help="events/s, comma-separated (default 200,2000,10000)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get(SECONDS_ENV, "60")),
        help=f"how long each rate lasts (default 60, or ${SECONDS_ENV} for a quick run)",
    )
    bootstrap_option(parser)
    clients_option(parser)
    parser.add_argument(
        "--drain-timeout-s",
        type=float,
        default=600.0,
        help="how long serve may take to catch up after a rate (default 600)",
    )
    args = parser.parse_args(argv)
    return with_broker(args.bootstrap, lambda bootstrap, stack: measure(args, bootstrap, stack))


if __name__ == "__main__":
    sys.exit(main())
