"""Peak memory over many distinct customers.

    python -m bench.memory [--quick] [--customers N] [--max-customers N] [--seed S]

Streams two events for each of `--customers` distinct customers (default 1,000,000): a `customer.updated`
profile, then two hours later a `service.call` or a `survey.response`, in `occurred_at` order. The lines are
generated lazily (only the events waiting for their time are held) and fed to `recovery.replay.replay` with a
fresh engine as `recovery replay` builds it (`replay_engine(max_customers=...)`), with the garbage collector tuned as
`recovery replay` tunes it (`recovery.runtime.tune_gc`). Prints the peak RSS (ru_maxrss) against the
target (< 1 GB), events/s, and `engine.customers_in_memory`. Targets are for humans to read: nothing asserts them.
"""

from __future__ import annotations

import argparse
import heapq
import io
import json
import os
import resource
import sys
import time
from bisect import bisect
from collections.abc import Iterator, Sequence, Sized
from random import Random

from bench.generate import (
    CALL_REASONS,
    DEFAULT_START,
    HOUR_CUM,
    REASON_CUM,
    REGIONS,
    SCORE_CUM,
    SEGMENT_CUM,
    SEGMENTS,
    TIER_CUM,
    TIER_VALUE,
    TIERS,
    Clock,
    parse_start,
)
from recovery.engine import Engine
from recovery.engine.engine import DEFAULT_MAX_CUSTOMERS
from recovery.native import describe_build
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.replay import replay, replay_engine
from recovery.runtime import tune_gc

TARGET_MB = 1024.0
RULES_DIR = "rules"
SECOND_EVENT_DELAY = 2 * 3600
SPAN_DAYS = 30


def stream(customers: int, seed: int, start: str = DEFAULT_START) -> Iterator[str]:
    """Two event lines per customer, in time order, generated lazily (deterministic for a seed)."""
    rng = Random(seed)
    random = rng.random
    clock = Clock()
    t0 = parse_start(start)
    step = SPAN_DAYS * 86_400 / max(1, customers)
    width = max(7, len(str(customers)))
    pending: list[tuple[int, int, str]] = []  # (ts, seq, line) of second events not yet due
    seq = 0
    for n in range(1, customers + 1):
        ts = t0 + int(n * step)
        while pending and pending[0][0] <= ts:
            yield heapq.heappop(pending)[2]
        cid = f"C-{n:0{width}d}"
        tier = TIERS[bisect(TIER_CUM, random())]
        profile = {
            "tier": tier,
            "segment": SEGMENTS[bisect(SEGMENT_CUM, random())],
            "region": REGIONS[int(random() * len(REGIONS))],
            "annual_value": round(TIER_VALUE[tier] * rng.lognormvariate(0.0, 0.35), 2),
        }
        seq += 1
        yield (
            f'{{"id":"evt-m{seq:08d}","type":"customer.updated","occurred_at":"{clock(ts)}",'
            f'"customer_id":"{cid}","data":{json.dumps(profile, separators=(",", ":"))}}}\n'
        )
        later = ts + SECOND_EVENT_DELAY + bisect(HOUR_CUM, random()) * 60
        seq += 1
        if random() < 0.5:
            kind, data = "service.call", f'{{"reason":"{CALL_REASONS[bisect(REASON_CUM, random())]}"}}'
        else:
            kind, data = "survey.response", f'{{"score":{bisect(SCORE_CUM, random())}}}'
        line = (
            f'{{"id":"evt-m{seq:08d}","type":"{kind}","occurred_at":"{clock(later)}",'
            f'"customer_id":"{cid}","data":{data}}}\n'
        )
        heapq.heappush(pending, (later, seq, line))
    while pending:
        yield heapq.heappop(pending)[2]


class _Discard(io.StringIO):
    """A text sink that keeps nothing, so the effects written do not count towards memory."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def write(self, text: str) -> int:
        if text == "\n":
            self.lines += 1
        return len(text)


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports ru_maxrss in KB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * resource.getpagesize() / (1024 * 1024)


def _attributes(cls: type) -> tuple[str, ...]:
    """The attributes a class keeps outside an instance dict: its `__slots__`, or a mypyc-compiled class's."""
    return tuple(getattr(cls, "__slots__", ())) + tuple(getattr(cls, "__mypyc_attrs__", ()))


def _fields(obj: object) -> dict[str, object]:
    """An object's attributes by name, whether it has an instance dict or is compiled by mypyc (which has none)."""
    found = {name: getattr(obj, name) for name in _attributes(type(obj)) if hasattr(obj, name)}
    found.update(getattr(obj, "__dict__", {}))
    return found


def deep_size(root: object, seen: set[int]) -> int:
    """Approximate bytes reachable from `root` (containers, slots and instance dicts), skipping `seen` ids."""
    size = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            for slot in _attributes(type(obj)):
                if hasattr(obj, slot):
                    stack.append(getattr(obj, slot))
            if hasattr(obj, "__dict__"):
                stack.append(obj.__dict__)
    return size


def breakdown(engine: Engine) -> list[tuple[str, int]]:
    """Approximate memory held by each attribute of the engine's store, then by the engine's own cache. The store's
    containers come first: its helper objects (the case desk, the facts) hold some of them too."""
    seen: set[int] = set()
    fields = sorted(_fields(engine.store).items(), key=lambda item: (not isinstance(item[1], Sized), item[0]))
    rows = [(f"store.{name}", deep_size(value, seen)) for name, value in fields]
    rows.append(("engine.customers.cache (not counted above)", deep_size(engine.customers.cache, seen)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (50,000 customers) for a smoke test")
    parser.add_argument("--customers", type=int, default=None, help="distinct customers (default 1,000,000)")
    parser.add_argument(
        "--max-customers",
        type=int,
        default=DEFAULT_MAX_CUSTOMERS,
        help=f"Engine(max_customers=...): customers held in memory (default {DEFAULT_MAX_CUSTOMERS:,})",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--breakdown", action="store_true", help="after the run, print what the store and the engine cache hold"
    )
    args = parser.parse_args(argv)
    customers = args.customers or (50_000 if args.quick else 1_000_000)

    playbooks = load_playbooks_or_raise([RULES_DIR])
    engine = replay_engine(playbooks, max_customers=args.max_customers)
    tune_gc()  # collects first
    before = peak_rss_mb()
    out, err = _Discard(), io.StringIO()
    cpu = time.process_time()
    start = time.perf_counter()
    summary = replay(stream(customers, args.seed), engine, out=out, err=err)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = peak_rss_mb()
    now = current_rss_mb()

    events = summary.events
    eps = events / elapsed if elapsed > 0 else float("inf")
    verdict = "PASS" if peak < TARGET_MB else "FAIL"
    print(f"memory: {customers:,} distinct customers, two events each, max_customers={args.max_customers:,}")
    print(f"events:              {events:,} ({summary.invalid} invalid, {summary.duplicates} duplicates)")
    print(f"seconds:             {elapsed:.2f} wall, {cpu:.2f} CPU")
    print(f"events/s:            {eps:,.0f}")
    print(f"effects:             {out.lines:,}")
    print(f"customers_in_memory: {engine.customers_in_memory:,}")
    stats = engine.stats
    print(f"evictions:           {stats.evictions:,} (rebuilds {stats.rebuilds:,})")
    print(f"RSS before the run:  {before:,.1f} MB (peak so far)")
    if now is not None:
        print(f"RSS after the run:   {now:,.1f} MB")
    print(f"load average:        {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"recovery:            {describe_build()}")
    print(f"peak RSS: {peak:,.1f} MB  (target < {TARGET_MB:,.0f} MB)  {verdict}")
    if args.breakdown:
        print("\napproximate deep sizes (sys.getsizeof, shared objects counted once, first owner wins):")
        for name, size in breakdown(engine):
            print(f"  {size / 2**20:10,.1f} MB  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
