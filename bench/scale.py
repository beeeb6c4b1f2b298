"""One million customers on SQLite with `max_customers` 100,000: `recovery serve`'s memory and speed as its cache of
customers churns.

    python -m bench.scale [--customers 1000000] [--max-customers 100000] [--revisits 200000] [--every-s 10]
                          [--bootstrap HOST:PORT] [--clients kafka-python|confluent-producer|confluent-kafka]

1. Starts a broker of its own (bench.servers) unless `--bootstrap` names one, and fresh topics (bench.service).
2. Produces, keyed by customer id, bench.memory's stream (a profile, then two hours later a service call or a
   survey response, for each customer, in time order: 2 events a customer), then `--revisits` service calls of
   customers drawn at random, dated after it: by then nearly all of them have been evicted, so each is a rebuild of
   the customer's state from the store.
3. Starts `recovery serve` as a process of its own on a fresh SQLite store (bench.service; its clocks in event time)
   with `max_customers` set, and, every `--every-s` seconds until it has committed the whole topic, prints the
   events it has committed, the rate over the interval, its RSS (/proc) and the customers it holds in memory (its
   /metrics). Then the peak RSS (VmHWM), the overall rate and the two phases' rates.
No target is asserted here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from random import Random

from bench.end_to_end import produce
from bench.memory import stream
from bench.report import load, per_second
from bench.servers import CLIENTS, bootstrap_option, clients_option, with_broker
from bench.service import STALL_S, Progress, Served, served
from recovery.native import describe_build
from recovery.times import format_time, parse_time

CUSTOMERS = 1_000_000
MAX_CUSTOMERS = 100_000
REVISITS = 200_000


def messages(customers: int, revisits: int, seed: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of bench.memory's stream for `customers`, then `revisits` calls of random customers, a second
    apart, after its last event."""
    last = 0.0
    for line in stream(customers, seed):
        event = json.loads(line)
        last = parse_time(event["occurred_at"])
        yield event["customer_id"].encode(), line.rstrip("\n").encode()
    rng = Random(seed)
    width = max(7, len(str(customers)))  # bench.memory's customer ids: C-0000001
    for n in range(revisits):
        customer = f"C-{rng.randrange(1, customers + 1):0{width}d}"
        body = {
            "id": f"evt-r{n:08d}",
            "type": "service.call",
            "occurred_at": format_time(last + 60 + n),
            "customer_id": customer,
            "data": {"reason": "billing"},
        }
        yield customer.encode(), json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Sample:
    """One look at serve during the drain."""

    seconds: float
    committed: int
    rss_mb: float
    in_memory: int


def rates(samples: Sequence[Sample]) -> list[float]:
    """Events/s over each interval between two samples (the first from the start: 0 s, nothing committed)."""
    before = Sample(0.0, 0, 0.0, 0)
    found = []
    for sample in samples:
        found.append(per_second(sample.committed - before.committed, sample.seconds - before.seconds))
        before = sample
    return found


def phase_rate(samples: Sequence[Sample], start: int, end: int) -> float:
    """Events/s over the samples between the first to reach `start` events committed and the first to reach `end`
    (interpolating nothing: the rate of whole intervals)."""
    first = next((s for s in samples if s.committed >= start), None)
    last = next((s for s in samples if s.committed >= end), None)
    if first is None or last is None or last.seconds <= first.seconds:
        return float("nan")
    return per_second(last.committed - first.committed, last.seconds - first.seconds)


def watch(service: Served, total: int, start: float, every_s: float, timeout_s: float) -> list[Sample]:
    """Sample serve every `every_s` from `start` (perf_counter) until it has committed `total` events, or has
    committed nothing more for STALL_S seconds (it says so); prints each sample as it comes."""
    samples: list[Sample] = []
    progress = Progress(STALL_S)
    instance = service.instance
    assert instance is not None
    while not samples or samples[-1].committed < total:
        time.sleep(max(0.0, every_s - (time.perf_counter() - start) % every_s))
        if not instance.alive:
            raise RuntimeError(f"recovery serve has exited\n{service.log_tail()}")
        rss, _ = service.rss_mb()
        sample = Sample(
            time.perf_counter() - start,
            total - service.run.lag(),
            rss,
            int(instance.metric("recovery_customers_in_memory")),
        )
        samples.append(sample)
        rate = rates(samples)[-1]
        print(
            f"  {sample.seconds:6.0f} s  {sample.committed:>11,} committed  {rate:>8,.0f} events/s  "
            f"RSS {sample.rss_mb:>7,.1f} MB  {sample.in_memory:>9,} in memory",
            flush=True,
        )
        if sample.seconds > timeout_s:
            raise TimeoutError(f"recovery serve committed {sample.committed:,} of {total:,} in {timeout_s:g} s")
        if progress.stalled(sample.committed):
            print(f"  recovery serve stalled: nothing committed for {STALL_S:g} s, {total - sample.committed:,} left")
            break
    return samples


def measure(args: argparse.Namespace, bootstrap: str, stack: contextlib.ExitStack) -> int:
    clients = CLIENTS[args.clients]
    service = stack.enter_context(
        served(bootstrap, "scale", max_customers=str(args.max_customers), **clients.settings())
    )
    main_events = 2 * args.customers
    total = main_events + args.revisits
    print(
        f"scale: {args.customers:,} customers (2 events each) then {args.revisits:,} revisits, recovery serve on "
        f"SQLite, max_customers {args.max_customers:,}, {clients}, broker {bootstrap}",
        flush=True,
    )
    produce_s = produce(bootstrap, service.run.topics["events"], messages(args.customers, args.revisits, args.seed))
    print(f"  produced {total:,} events in {produce_s:.1f} s", flush=True)

    started = time.perf_counter()
    service.start()
    samples = watch(service, total, started, args.every_s, args.timeout_s)
    rss, peak = service.rss_mb()
    last = next(s for s in samples if s.committed == samples[-1].committed)  # not the time stalled, if any
    overall = per_second(last.committed, last.seconds)
    print()
    print(f"events/s overall: {overall:,.0f} ({last.committed:,} in {last.seconds:.0f} s, from serve's start)")
    phases = [("first pass (profiles and one event each)", 1, main_events), ("revisits", main_events, total)]
    for name, start, end in phases:
        rate = phase_rate(samples, start, end)
        print(f"events/s, {name}: {'not reached' if math.isnan(rate) else f'{rate:,.0f}'}")
    print(f"RSS of recovery serve: peak {peak:,.1f} MB (VmHWM), {rss:,.1f} MB at the end")
    most = max(s.in_memory for s in samples)
    print(f"SQLite store: {service.size_mb():,.0f} MB; customers in memory at most {most:,}")
    print(load() + ", shared with the broker")
    print(f"recovery: {describe_build()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help=f"customers (default {CUSTOMERS:,})")
    parser.add_argument(
        "--max-customers", type=int, default=MAX_CUSTOMERS, help=f"serve's max_customers (default {MAX_CUSTOMERS:,})"
    )
    parser.add_argument(
        "--revisits", type=int, default=REVISITS, help=f"calls of random customers (default {REVISITS:,})"
    )
    parser.add_argument("--every-s", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    clients_option(parser)
    bootstrap_option(parser)
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="bound on the drain (default 3600)")
    args = parser.parse_args(argv)
    return with_broker(args.bootstrap, lambda bootstrap, stack: measure(args, bootstrap, stack))


if __name__ == "__main__":
    sys.exit(main())
