"""Outage fan-out: from `outage.resolved` on the topic to a service credit stored and published for every customer
of a region of 100,000.

    python -m bench.fanout [--customers 100000] [--bootstrap HOST:PORT] [--timeout-s S]

1. Starts a broker of its own (bench.servers) unless `--bootstrap` names one, fresh topics and `recovery serve` as
   a process of its own on a fresh SQLite store (bench.service; its clocks in event time), the shipped playbooks.
2. Loads the profiles first: one `customer.updated` per customer (tier standard, all in one region), dated four
   hours ago; waits until serve has committed them all (timed and printed).
3. Produces `outage.started` for the region (three hours ago) and waits until serve has committed it: nothing is
   due then. Then `outage.resolved` (an hour ago: two hours of outage, a credit of 10 USD each under
   outage-recovery; standard customers get no follow-up task), noting the wall clock right before it is sent.
4. Waits until serve has committed it and emptied its outbox, then reads the gestures topic back. The output topics
   are stamped by the broker (`LogAppendTime`, bench.service), so the last credit's timestamp minus the send time
   of `outage.resolved` is the fan-out time: every credit is stored before its outbox row is published. Prints it
   with the credits found (distinct ids) of those expected, and the rate.
No target is asserted here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from kafka import KafkaProducer

from bench.report import load, per_second
from bench.servers import CLIENTS, bootstrap_option, clients_option, with_broker
from bench.service import STALL_S, Served, served
from recovery.native import describe_build
from recovery.times import format_time

CUSTOMERS = 100_000
REGION = "bench-fanout"
HOUR_S = 3600.0
CREDIT = {"playbook": "outage-recovery", "type": "service-credit"}


def envelope(event_id: str, kind: str, at: float, data: dict[str, Any], customer: str | None = None) -> bytes:
    body: dict[str, Any] = {"id": event_id, "type": kind, "occurred_at": format_time(at), "data": data}
    if customer is not None:
        body["customer_id"] = customer
    return json.dumps(body, separators=(",", ":")).encode()


def profiles(prefix: str, customers: int, at: float) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of one `customer.updated` per customer `{prefix}-c{n}`, all in REGION, tier standard."""
    data = {"tier": "standard", "segment": "consumer", "region": REGION, "annual_value": 480}
    for n in range(customers):
        customer = f"{prefix}-c{n}"
        yield customer.encode(), envelope(f"{prefix}-p{n}", "customer.updated", at, data, customer)


def outage(prefix: str, kind: str, at: float) -> tuple[bytes, bytes]:
    """(key, value) of the region's outage event `kind`, keyed by the outage id."""
    outage_id = f"{prefix}-outage"
    return outage_id.encode(), envelope(f"{prefix}-{kind}", kind, at, {"outage_id": outage_id, "region": REGION})


def credits(records: Sequence[Any], outage_id: str) -> dict[str, float]:
    """The broker timestamp (ms) of each credit of `outage_id` among the gestures topic's records, by gesture id,
    at its first publication."""
    found: dict[str, float] = {}
    for record in records:
        gesture = json.loads(record.value)
        if all(gesture.get(k) == v for k, v in CREDIT.items()) and outage_id in gesture.get("reason", ""):
            found[gesture["id"]] = min(record.timestamp, found.get(gesture["id"], float("inf")))
    return found


def wait(service: Served, what: str, timeout_s: float) -> float:
    """Wait until serve has committed every event and emptied its outbox; the seconds it took."""
    start = time.perf_counter()
    if not service.drained(timeout_s):
        raise TimeoutError(
            f"recovery serve did not drain {what} (nothing committed for {STALL_S:g} s, or {timeout_s:g} s passed)"
            f"\n{service.log_tail()}"
        )
    return time.perf_counter() - start


def measure(args: argparse.Namespace, bootstrap: str, stack: contextlib.ExitStack) -> int:
    prefix = f"fan{uuid.uuid4().hex[:6]}"
    now = time.time()
    service = stack.enter_context(served(bootstrap, "fanout", **CLIENTS[args.clients].settings()))
    service.start()
    print(
        f"fan-out: recovery serve (SQLite, the shipped playbooks, {CLIENTS[args.clients]}) on {bootstrap}, "
        f"{args.customers:,} customers"
    )

    t = time.perf_counter()
    service.run.produce(list(profiles(prefix, args.customers, now - 4 * HOUR_S)))
    produced_s = time.perf_counter() - t
    loaded_s = wait(service, "the profiles", args.timeout_s)
    print(f"  profiles: produced in {produced_s:.1f} s, stored within {produced_s + loaded_s:.1f} s", flush=True)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    stack.callback(producer.close)
    topic = service.run.topics["events"]
    key, value = outage(prefix, "outage.started", now - 3 * HOUR_S)
    producer.send(topic, key=key, value=value).get(timeout=30)
    wait(service, "outage.started", args.timeout_s)
    key, value = outage(prefix, "outage.resolved", now - HOUR_S)
    sent = time.time()
    producer.send(topic, key=key, value=value).get(timeout=30)
    waited_s = wait(service, "outage.resolved", args.timeout_s)

    found = credits(service.run.read("gestures"), f"{prefix}-outage")
    print()
    if not found:
        print(f"no credit of {prefix}-outage was published (waited {waited_s:.1f} s)\n{service.log_tail()}")
        return 1
    seconds = max(found.values()) / 1000 - sent
    print(
        f"fan-out: outage.resolved sent to the last of {len(found):,} credits (of {args.customers:,} expected) "
        f"on the gestures topic: {seconds:.2f} s ({per_second(len(found), seconds):,.0f} credits/s)"
    )
    print(f"  first credit published {min(found.values()) / 1000 - sent:.2f} s after outage.resolved was sent")
    print(load() + ", shared with the broker")
    print(f"recovery: {describe_build()}")
    return 0 if len(found) == args.customers else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help=f"customers (default {CUSTOMERS:,})")
    bootstrap_option(parser)
    clients_option(parser)
    parser.add_argument("--timeout-s", type=float, default=900.0, help="bound on each wait (default 900)")
    args = parser.parse_args(argv)
    return with_broker(args.bootstrap, lambda bootstrap, stack: measure(args, bootstrap, stack))


if __name__ == "__main__":
    sys.exit(main())
