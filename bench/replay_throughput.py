"""Replay throughput against raw durable-rules, on the same compiled rulesets.

    python -m bench.replay_throughput [--quick] [--events N] [--customers N] [--days D] [--runs N] [--profile]

1. Generates the stream (bench.generate, default about 200,000 events over 10,000 customers) in memory and
   serializes it to JSON lines first, so `replay` measures parsing as well.
2. replay: `recovery.replay.replay(lines, engine, out=StringIO(), err=StringIO())` with the engine `recovery
   replay` runs (`recovery.replay.replay_engine`), a fresh one per run (built outside the timing), events/s.
3. raw durable-rules: a bare `durable.engine.Host` with one ruleset per playbook (its compiled
   `pb.condition.pattern`, one rule, an action appending to a list), posting exactly the messages the engine
   posts for this stream (recorded from one replay before the timing: real feature values, outage fan-out and
   deadline evaluations included); MessageNotHandledException is caught. Only the posting loop is timed.
4. For information, the same posts through recovery's Matcher, which drives durable-rules' engine core
   (`durable_rules_engine`) directly, as Host.post does minus its per-post Python layer. The target ratio is
   against 3, durable-rules as its documentation shows it used.

All are warmed up, then timed `--runs` times (default 3), interleaved; the best run of each counts. The target is
replay events/s >= 0.50 x raw events/s. Targets are for humans to read: nothing here asserts them.

Garbage collection: once the inputs are built, the heap is frozen (`gc.freeze`), so that neither side's
collections scan the bench's own data. Each side then runs with the collector as it would in a process of its
own: replay and the core with recovery's tuning (`recovery.runtime.tune_gc`, as `recovery replay` sets it), raw
durable-rules with Python's default thresholds. Raw durable-rules leaves about six objects of cyclic garbage per
post, and a larger young generation makes it slower (measured: about 15%), so Python's defaults are its best.

The ratio is the share of replay time that durable-rules itself would need: the rest is parsing, state,
windows, templates and effects.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gc
import io
import json
import os
import pstats
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from durable import engine as durable_engine

from bench.generate import dumps, generate
from recovery.engine import Engine
from recovery.engine.matcher import Matcher
from recovery.native import describe_build
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.replay import ReplaySummary, replay, replay_engine
from recovery.runtime import tune_gc
from recovery.store import MemoryStore

TARGET_RATIO = 0.50
RULES_DIR = "rules"


def build_stream(customers: int, days: float, seed: int, events: int) -> tuple[list[str], list[str]]:
    """The stream as JSON lines (with newlines) and the event types, in order."""
    lines: list[str] = []
    types: list[str] = []
    for event in generate(customers, days, seed, events):
        lines.append(dumps(event) + "\n")
        types.append(event["type"])
    return lines, types


# ----------------------------------------------------------------------------------------------- replay


def run_replay(
    lines: Sequence[str], playbooks: Sequence[CompiledPlaybook]
) -> tuple[float, float, ReplaySummary, Engine]:
    """One timed replay with a fresh engine, as `recovery replay` builds it: (wall seconds, CPU seconds of the
    process, summary, engine)."""
    engine = replay_engine(playbooks)
    out, err = io.StringIO(), io.StringIO()
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    summary = replay(lines, engine, out=out, err=err)
    elapsed = time.perf_counter() - start
    return elapsed, time.process_time() - cpu, summary, engine


# ----------------------------------------------------------------------------------------------- raw


class RawHost(durable_engine.Host):  # type: ignore[misc]
    """A bare durable-rules host whose every action appends the ruleset's name to `hits`."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        super().__init__()

    def _run(self) -> None:
        """No background dispatch threads, as in recovery's Matcher: both sides post synchronously."""

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        hits = self.hits
        name = action_name.rsplit(".", 1)[0]

        def hit(c: Any) -> None:
            hits.append(name)

        return hit


_raw_hosts = 0


def raw_host(playbooks: Sequence[CompiledPlaybook]) -> tuple[RawHost, dict[str, str]]:
    """A host with one ruleset per playbook; returns it and the ruleset name of each playbook id."""
    global _raw_hosts
    _raw_hosts += 1
    names: dict[str, str] = {}
    rulesets: dict[str, Any] = {}
    for i, pb in enumerate(playbooks):
        name = f"raw{_raw_hosts}_p{i}"
        names[pb.id] = name
        rulesets[name] = {"match": {"all": [{"m": copy.deepcopy(pb.condition.pattern)}], "run": f"{name}.hit"}}
    host = RawHost()
    host.set_rulesets(rulesets)
    return host, names


def raw_posts(
    lines: Sequence[str], playbooks: Sequence[CompiledPlaybook], names: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """Exactly the posts the engine makes for this stream (recorded from one replay): same rulesets, same
    messages with the real feature values, deadline evaluations and fan-out included."""
    engine = Engine(playbooks, MemoryStore(keep_effects=False))
    posts: list[tuple[str, dict[str, Any]]] = []
    original = engine.matcher.matches_json

    def record(name: str, message: str) -> bool:
        posts.append((names[name], json.loads(message)))
        return original(name, message)

    engine.matcher.matches_json = record  # type: ignore[method-assign]
    replay(lines, engine, io.StringIO(), io.StringIO())
    retire_engine(engine)
    return posts


def match_all(matcher: Matcher, posts: Sequence[tuple[str, dict[str, Any]]]) -> float:
    """The same posts through recovery's Matcher (durable-rules' engine core without the Host layer)."""
    matches = matcher.matches
    gc.collect()
    start = time.perf_counter()
    for name, message in posts:
        matches(name, message)
    return time.perf_counter() - start


def post_all(host: RawHost, posts: Sequence[tuple[str, dict[str, Any]]]) -> float:
    not_handled = durable_engine.MessageNotHandledException
    post = host.post
    gc.collect()
    start = time.perf_counter()
    for name, message in posts:
        try:
            post(name, message)
        except not_handled:
            pass
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- hosts


def retire(host: Any) -> bool:
    """Stop the background loops of a durable-rules Host that is no longer used; True when none run.

    A stock Host starts two chains of `threading.Timer`s (ruleset and timer dispatch) that reschedule
    themselves forever and keep the Host alive, costing the main thread wall time (GIL hand-offs to short-lived
    timer threads). recovery's Matcher and RawHost here do not start them; this stops them on any other Host.
    """
    attrs = ("_d_timer", "_t_timer")
    for _ in range(40):
        timers: list[Any] = [getattr(host, a, None) for a in attrs]
        if all(t is None for t in timers):
            return True  # no loops were started
        if not all(isinstance(t, threading.Timer) for t in timers):
            return False
        for timer in timers:
            timer.cancel()
        time.sleep(0.25)  # longer than the loops' longest pause (0.2 s)
        if all(getattr(host, a, None) is t for a, t in zip(attrs, timers, strict=True)):
            return True
    return False


def retire_engine(engine: Engine) -> bool:
    """recovery's Matcher drives durable-rules' core without a Host: nothing to stop."""
    host = getattr(getattr(engine, "matcher", None), "_host", None)
    return host is None or retire(host)


# ----------------------------------------------------------------------------------------------- report


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _secs(values: Sequence[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def profile_replay(lines: Sequence[str], playbooks: Sequence[CompiledPlaybook], top: int) -> None:
    engine = replay_engine(playbooks)
    profiler = cProfile.Profile()
    profiler.enable()
    replay(lines, engine, out=io.StringIO(), err=io.StringIO())
    profiler.disable()
    for order in ("tottime", "cumulative"):
        print(f"\ncProfile of one replay run, top {top} by {order}:")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (about 20,000 events) for a smoke test")
    parser.add_argument("--events", type=int, default=None, help="events to generate (default 200,000)")
    parser.add_argument("--customers", type=int, default=None, help="customers (default 10,000)")
    parser.add_argument("--days", type=float, default=90.0, help="length of the period in days (default 90)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each; the best counts (default 3)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one replay run")
    args = parser.parse_args(argv)
    events = args.events or (20_000 if args.quick else 200_000)
    customers = args.customers or (1_000 if args.quick else 10_000)
    runs = max(1, args.runs)

    playbooks = load_playbooks_or_raise([RULES_DIR])
    t = time.perf_counter()
    lines, types = build_stream(customers, args.days, args.seed, events)
    gen_s = time.perf_counter() - t
    n = len(lines)
    counts = Counter(types)
    print(
        f"stream: {n:,} events, {customers:,} customers, {args.days:g} days, seed {args.seed} "
        f"(generated and serialized in {gen_s:.2f}s); {counts['outage.started']} outages"
    )
    print(f"playbooks: {', '.join(f'{pb.id} ({pb.kind} on {pb.event_type})' for pb in playbooks)}")

    # Warm-up: a slice of the stream through a fresh engine, and every raw post once on its own host.
    retired = True
    _, _, _, warm_engine = run_replay(lines[: max(1, n // 10)], playbooks)
    retired &= retire_engine(warm_engine)
    warm_host, warm_names = raw_host(playbooks)
    post_all(warm_host, raw_posts(lines[: max(1, n // 10)], playbooks, warm_names))
    retired &= retire(warm_host)

    host, names = raw_host(playbooks)
    posts = raw_posts(lines, playbooks, names)
    playbook_of = {ruleset: pb_id for pb_id, ruleset in names.items()}
    core_posts = [(playbook_of[name], message) for name, message in posts]
    core = Matcher((pb.id, pb.condition.pattern) for pb in playbooks)
    python_gc = gc.get_threshold()
    recovery_gc = tune_gc()  # collects and freezes the inputs built so far
    gc.set_threshold(*python_gc)

    # Interleaved (replay, core, raw; replay, core, raw; ...): a machine that slows down or speeds up during the
    # run (a shared VM) then weighs on all three alike.
    replay_times: list[float] = []
    replay_cpu: list[float] = []
    raw_times: list[float] = []
    core_times: list[float] = []
    summary: ReplaySummary | None = None
    engine: Engine | None = None
    for _ in range(runs):
        gc.set_threshold(*recovery_gc)
        elapsed, cpu, summary, engine = run_replay(lines, playbooks)
        replay_times.append(elapsed)
        replay_cpu.append(cpu)
        retired &= retire_engine(engine)
        core_times.append(match_all(core, core_posts))
        gc.set_threshold(*python_gc)
        raw_times.append(post_all(host, posts))
    assert summary is not None and engine is not None
    if summary.events != n or summary.invalid:
        print(f"warning: replay saw {summary.events} events and {summary.invalid} invalid lines of {n}")
    raw_hits = len(host.hits) // runs
    retired &= retire(host)
    core_s = min(core_times)

    replay_s = min(replay_times)
    raw_s = min(raw_times)
    replay_eps = _rate(n, replay_s)
    raw_pps = _rate(len(posts), raw_s)
    raw_eps = _rate(n, raw_s)
    ratio = replay_eps / raw_eps
    effects = sum(summary.effects.values())

    print()
    print(f"best of {runs} runs after a warm-up")
    header = f"{'':34s} {'events':>10s} {'posts':>10s} {'seconds':>9s} {'posts/s':>11s} {'events/s':>11s}"
    print(header)
    print("-" * len(header))
    print(f"{'replay (parse+engine+effects)':34s} {n:>10,} {'-':>10s} {replay_s:>9.3f} {'-':>11s} {replay_eps:>11,.0f}")
    print(
        f"{'raw durable-rules (post loop)':34s} {n:>10,} {len(posts):>10,} {raw_s:>9.3f} "
        f"{raw_pps:>11,.0f} {raw_eps:>11,.0f}"
    )
    print(
        f"{'durable-rules core (Matcher)':34s} {n:>10,} {len(posts):>10,} {core_s:>9.3f} "
        f"{_rate(len(posts), core_s):>11,.0f} {_rate(n, core_s):>11,.0f}"
    )
    print("-" * len(header))
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"ratio replay/raw events/s: {ratio:.3f}  (target >= {TARGET_RATIO:.2f})  {verdict}")
    print(
        f"for information: replay/core {replay_eps / _rate(n, core_s):.3f} (recovery's Matcher posts through "
        "durable-rules' engine core without the Host's per-post Python layer)"
    )
    print()
    print(f"runs, wall s: replay {_secs(replay_times)}; raw {_secs(raw_times)}; core {_secs(core_times)}")
    print(f"replay CPU s (all threads): {_secs(replay_cpu)}")
    stats = engine.stats
    print(
        f"replay did: {stats.events:,} events, {stats.fanned_out:,} outage deliveries to customers, "
        f"{sum(stats.matches.values()):,} matches, {stats.deadlines_fired:,} deadlines fired, {effects:,} effects"
    )
    print(f"raw did: {len(posts):,} posts per run, {raw_hits:,} matched")
    print(
        f"garbage collector thresholds: replay and core {recovery_gc} (recovery's tuning), raw {python_gc} "
        f"(Python's defaults); {gc.get_freeze_count():,} input objects frozen"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"recovery: {describe_build()}")
    if not retired:
        print("note: could not stop the background threads of finished durable-rules hosts; later runs may be slower")
    if args.profile:
        gc.set_threshold(*recovery_gc)
        profile_replay(lines, playbooks, top=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
