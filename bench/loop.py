"""The loop's own cost per event: `recovery serve`'s loop on an in-memory broker, beside replay, on the bench stream.

    python -m bench.loop [--events N] [--customers N] [--days D] [--seed S] [--stores memory,sqlite] [--runs N]
                         [--timeout-s S] [--quick]

The benches on a real broker (bench.end_to_end, bench.peer) share the machine's two cores with the broker, and
time its start-up, its fetches and the group's join with the loop. This one runs no broker: it measures what the
loop itself costs per event, and splits a drain into parts. The machine's own speed still drifts (the same commit
took 4.7 and 7.1 s within minutes on the 2-core machine): to compare two commits, alternate them and give every
run.

1. replay: `recovery replay`'s engine (`replay_engine`) over the stream's lines: decoding and evaluating, nothing
   stored or published, no facts of the customer-loss review recorded;
2. the loop (`Service.run`, as `recovery serve` runs it) on the in-memory broker and transport of the service's
   tests (tests/consumer/memory.py: 6 partitions, the whole stream on it, polls as large as the reader asks), per
   store: the memory store (the loop's own work: ordering, batches, the review's facts, the outbox, offsets) and
   SQLite (a file in a temporary folder, opened as serve opens it: `open_service_store`). Timed until every offset
   is committed and the outbox is empty.

Prints each row's best run (and every run), events/s and microseconds per event, the batches, and the tasks and
gestures each row wrote or published (the same count: the same work). For SQLite it also prints what the process
wrote (`wchar` of /proc/self/io, Linux: the write-ahead log's frames and the checkpoints). No target: it is the
instrument for changes to the per-event path (docs/operations.md, "Capacity").
"""

from __future__ import annotations

import argparse
import gc
import io
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.end_to_end import RULES_DIR, build_messages, stream_options
from bench.report import load, table
from recovery.config import Settings
from recovery.consumer import Service
from recovery.native import describe_build
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.replay import replay, replay_engine
from recovery.runtime import tune_gc
from recovery.store import open_service_store, open_store
from recovery.store.base import Store
from tests.consumer.memory import MemoryBroker, MemoryTransport

PARTITIONS = 6
EVENTS_TOPIC = "events"
TEN_YEARS_S = 10 * 365 * 86_400
STORES = ("memory", "sqlite")


@dataclass
class Row:
    name: str
    events: int
    seconds: list[float] = field(default_factory=list)
    written_mb: list[float] = field(default_factory=list)
    batches: int = 0
    effects: int = 0
    """Tasks and gestures written (replay) or published (the loop), in the last run: the same work for each row."""

    @property
    def best(self) -> float:
        return min(self.seconds)


def written_bytes() -> int | None:
    """What this process has passed to write calls so far (Linux), or None."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return None
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return int(fields["wchar"]) if "wchar" in fields else None


def replay_row(lines: Sequence[str], playbooks: Sequence[CompiledPlaybook], runs: int) -> Row:
    row = Row("replay (decode and evaluate)", len(lines))
    for _ in range(runs):
        engine = replay_engine(playbooks)
        out = io.StringIO()
        gc.collect()
        start = time.perf_counter()
        replay(lines, engine, out=out, err=io.StringIO())
        row.seconds.append(time.perf_counter() - start)
        row.effects = len(out.getvalue().splitlines())
    return row


def loop_run(
    row: Row,
    broker: MemoryBroker,
    playbooks: Sequence[CompiledPlaybook],
    kind: str,
    folder: str,
    n: int,
    timeout_s: float,
) -> None:
    """One drain of the broker's events topic by a fresh loop and store, added to `row`. Raises TimeoutError when
    the loop has not committed every offset and published everything within `timeout_s`."""
    url = "memory://" if kind == "memory" else f"sqlite:///{folder}/loop-{n}.db"
    settings = Settings.model_validate(
        {
            "topic_events": EVENTS_TOPIC,
            "topic_tasks": f"tasks-{n}",
            "topic_gestures": f"gestures-{n}",
            "topic_dlq": f"dlq-{n}",
            "lateness_s": TEN_YEARS_S,  # the clock stays in event time, as in replay
            "store_url": url,
            "group_id": f"bench-loop-{n}",
        }
    )
    broker.committed = {}
    ends = broker.end_offsets(EVENTS_TOPIC)
    store: Store = open_store(url) if kind == "memory" else open_service_store(settings)
    stop = threading.Event()
    deadline = time.monotonic() + timeout_s

    def drained() -> bool:
        return {tp: broker.committed.get(tp) for tp in ends} == ends and store.outbox_size() == 0

    def on_step(loop_store: Store, now: float) -> None:
        if drained() or time.monotonic() > deadline:
            stop.set()

    service = Service(
        settings, store, playbooks, transport=lambda _: MemoryTransport(broker, EVENTS_TOPIC), on_step=on_step
    )
    try:
        gc.collect()
        before = written_bytes()
        start = time.perf_counter()
        service.run(stop)
        row.seconds.append(time.perf_counter() - start)
        if not drained():
            committed, left = sum(broker.committed.values()), store.outbox_size()
            raise TimeoutError(
                f"{row.name}: not drained in {timeout_s:g} s ({committed:,} of {row.events:,} offsets committed, "
                f"{left:,} messages still in the outbox)"
            )
        after = written_bytes()
        if before is not None and after is not None:
            row.written_mb.append((after - before) / 1e6)
        row.batches = service.stats.batches
        row.effects = len(broker.messages(settings.topic_tasks)) + len(broker.messages(settings.topic_gestures))
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop", description=__doc__.split("\n\n")[0])
    stream_options(parser)
    parser.add_argument("--stores", default=",".join(STORES), help=f"comma-separated: {', '.join(STORES)}")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each; the best counts (default 3)")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="bound on each drain (default 600)")
    parser.add_argument("--quick", action="store_true", help="a small run (10,000 events) for a smoke test")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORES]
    if unknown:
        parser.error(f"--stores: unknown {', '.join(unknown)} (known: {', '.join(STORES)})")
    events = 10_000 if args.quick else args.events
    customers = min(args.customers, 1_000) if args.quick else args.customers
    runs = max(1, args.runs)

    playbooks = load_playbooks_or_raise([RULES_DIR])
    messages = build_messages(customers, args.days, args.seed, events)
    print(f"stream: {len(messages):,} events, {customers:,} customers, {args.days:g} days, seed {args.seed}")
    broker = MemoryBroker(partitions=PARTITIONS)
    for key, value in messages:
        broker.produce(EVENTS_TOPIC, key, value)
    tune_gc()  # as `recovery serve` and `recovery replay` do
    rows = [replay_row([value.decode() for _, value in messages], playbooks, runs)]
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as folder:
        for kind in stores:
            row = Row(f"loop, {kind} store", len(messages))
            for n in range(runs):
                loop_run(row, broker, playbooks, kind, folder, len(rows) * runs + n, args.timeout_s)
            rows.append(row)

    base = rows[0].best / rows[0].events * 1e6
    cells = []
    for row in rows:
        per_event = row.best / row.events * 1e6
        written = f"{min(row.written_mb):,.0f}" if row.written_mb else "-"
        extra = "-" if row is rows[0] else f"+{per_event - base:.1f}"
        rate = f"{row.events / row.best:,.0f}"
        cells.append([row.name, f"{row.events:,}", f"{row.best:.3f}", rate, f"{per_event:.1f}", extra, written])
    header = ["best of runs", "events", "seconds", "events/s", "us/event", "over replay", "MB written"]
    print(table(header, cells))
    for row in rows:
        batches = f", {row.batches} batches" if row.batches else ""
        runs_s = " ".join(f"{s:.3f}" for s in row.seconds)
        print(f"{row.name}: runs {runs_s} s{batches}, {row.effects:,} tasks and gestures")
    print(load())
    print(f"recovery: {describe_build()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
