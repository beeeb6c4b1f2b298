"""End-to-end throughput of `recovery serve`'s loop against a bare kafka-python consumer on the same topic.

    python -m bench.end_to_end [--events N] [--customers N] [--bootstrap HOST:PORT]
                               [--stores sqlite,postgres,memory] [--runs N] [--profile [sqlite|postgres|memory]]
                               [--clients kafka-python|confluent-producer|confluent-kafka]

1. Starts a broker of its own on free ports (deploy/kafka, deleted at the end) unless `--bootstrap` names one,
   and for the PostgreSQL row a server of its own (deploy/postgres, its default settings: fsync and synchronous
   commit on); when that server cannot be started, the row says "skipped: <reason>".
2. Generates the stream (bench.generate, default about 100,000 events over 5,000 customers and 30 days), keyed
   by customer id (outages by outage id), and produces it to a fresh 6-partition topic (acks=all); the produce
   is timed and printed.
3. bare consumer: a KafkaConsumer in a fresh group, same fetch settings as the service, drains the topic,
   decoding nothing, counting records until all are seen, then commits; timed from its creation.
4. end to end, per store: a fresh store, group and output topics; `Service(settings, store, playbooks).run(stop)`
   in a thread (lateness ten years, so the clock stays in event time), timed from the thread's start until
   `stats.consumed` totals the stream, the group's committed offsets equal the topic's end offsets AND the
   output topics hold every message it queued (both moments are printed, with how many messages were out at
   the first).
   The memory store's row is for comparison, without a target: it keeps nothing across a restart, so it shows
   what the loop costs without a durable store (polling, decoding, evaluating, publishing, committing offsets).

Each is timed `--runs` times (default 2: the machine is shared with the broker, and one run can be unlucky); the
best run of each counts, and every run's time is printed. Both timings include joining the group (the broker
assigns at once: group.initial.rebalance.delay.ms=0); the "to first" column shows that start-up part. The target
is end-to-end events/s >= 0.40 x the bare consumer's. Targets are for humans to read: nothing here asserts them.
The bare consumer runs with Python's default garbage collector thresholds; then the heap is frozen and the
service runs with recovery's tuning, as `recovery serve` sets it (`recovery.runtime.tune_gc`).
`--clients` picks the service's Kafka clients (bench.servers.CLIENTS; the bare consumer is kafka-python's always).
`--profile` adds one more run (SQLite, or the store named) under cProfile (the service's thread only:
kafka-python's own I/O thread is not in it).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import pstats
import sys
import time
import uuid
from collections.abc import Iterable, Sequence

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from bench.drain import (
    STORE_NAMES,
    Result,
    Run,
    Servers,
    best,
    drain_store,
    end_to_end,
    fresh_database,
    run_cpu_seconds,
    run_seconds,
    skipped,
    sqlite_url,
    store_labels,
)
from bench.generate import dumps, generate
from bench.report import load
from bench.servers import CLIENTS, bootstrap_option, clients_option, with_broker
from recovery.consumer import POLL_RECORDS
from recovery.native import describe_build
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.runtime import tune_gc

TARGET_RATIO = 0.40
RULES_DIR = "rules"
PARTITIONS = 6
EVENTS, CUSTOMERS, DAYS, SEED = 100_000, 5_000, 30.0, 1
"""The bench stream's defaults (about 100,288 events): bench.peer drains the same one."""


# ----------------------------------------------------------------------------------------------- produce


def build_messages(customers: int, days: float, seed: int, events: int) -> list[tuple[bytes, bytes]]:
    """The stream as (key, value) pairs: the key is the customer id, or the outage id for an outage."""
    messages: list[tuple[bytes, bytes]] = []
    for event in generate(customers, days, seed, events):
        key = event.get("customer_id") or event["data"].get("outage_id") or event["id"]
        messages.append((str(key).encode(), dumps(event).encode()))
    return messages


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> float:
    """Send every message and wait until the broker has them all; returns the wall seconds."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    try:
        start = time.perf_counter()
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush()
        return time.perf_counter() - start
    finally:
        producer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp: int(offset) for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def stream_topic(
    bootstrap: str,
    admin: KafkaAdminClient,
    messages: Sequence[tuple[bytes, bytes]],
    timeout_s: float,
    stack: contextlib.ExitStack,
) -> Run:
    """A fresh topic of PARTITIONS partitions holding `messages` (timed and printed), as a Run to drain it; its
    topics and groups are deleted when `stack` closes."""
    topic = f"bench-events-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    run = Run(bootstrap, topic, {}, admin, timeout_s, made_topics=[topic])
    stack.callback(cleanup, run)

    produce_s = produce(bootstrap, topic, messages)
    run.end_offsets = end_offsets(bootstrap, topic)
    if run.events != len(messages):
        raise RuntimeError(f"produced {len(messages):,} events but the topic holds {run.events:,}")
    print(
        f"produce: {len(messages):,} events to {PARTITIONS} partitions of {topic} on {bootstrap} in "
        f"{produce_s:.3f}s ({len(messages) / produce_s:,.0f} events/s, acks=all)"
    )
    return run


# ----------------------------------------------------------------------------------------------- bare


def bare_consumer(run: Run) -> Result:
    """A plain KafkaConsumer in a fresh group: count records until all are seen, then commit."""
    result = Result("bare kafka-python consumer")
    n = run.events
    start, cpu = time.perf_counter(), time.process_time()
    consumer = KafkaConsumer(
        bootstrap_servers=run.bootstrap,
        group_id=run.group("bare"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS,
    )
    try:
        # As recovery's Kafka adapter does: the partitions known before joining, so the first round assigns them all
        # (a second round, for the metadata, may be left unapplied by kafka-python 3.0.12: consumer/membership.py).
        consumer.partitions_for_topic(run.topic)
        consumer.subscribe([run.topic])
        seen = 0
        while seen < n:
            for records in consumer.poll(timeout_ms=200).values():
                seen += len(records)
            if seen and not result.first_s:
                result.first_s = time.perf_counter() - start
            if time.perf_counter() - start > run.timeout_s:
                raise TimeoutError(f"the bare consumer saw {seen:,} of {n:,} records in {run.timeout_s:g} s")
        consumer.commit()
        result.seconds, result.cpu_s = time.perf_counter() - start, time.process_time() - cpu
        result.events = seen
    finally:
        consumer.close()
    return result


# ----------------------------------------------------------------------------------------------- report


def print_table(bare: Result, rows: Sequence[Result]) -> None:
    header = f"{'':30s} {'events':>9s} {'seconds':>9s} {'to first s':>10s} {'events/s':>10s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    print(f"{bare.name:30s} {bare.events:>9,} {bare.seconds:>9.3f} {bare.first_s:>10.3f} {bare.rate:>10,.0f} {'-':>7s}")
    for row in rows:
        if row.note is not None:
            print(f"{row.name:30s} {row.note}")
            continue
        ratio = row.rate / bare.rate
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        judged = f"target >= {TARGET_RATIO:.2f}  {verdict}" if row.target else "(not durable: no target)"
        print(
            f"{row.name:30s} {row.events:>9,} {row.seconds:>9.3f} {row.first_s:>10.3f} {row.rate:>10,.0f} "
            f"{ratio:>7.3f}  {judged}"
        )
    print("-" * len(header))


def measure(args: argparse.Namespace, bootstrap: str, stores: Sequence[str], stack: contextlib.ExitStack) -> int:
    playbooks = load_playbooks_or_raise([RULES_DIR])
    t = time.perf_counter()
    messages = build_messages(args.customers, args.days, args.seed, args.events)
    gen_s = time.perf_counter() - t
    print(
        f"stream: {len(messages):,} events, {args.customers:,} customers, {args.days:g} days, seed {args.seed} "
        f"(generated and serialized in {gen_s:.2f}s)"
    )

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    stack.callback(admin.close)
    run = stream_topic(bootstrap, admin, messages, args.timeout_s, stack)

    runs = max(1, args.runs)
    python_gc = gc.get_threshold()
    bare_runs = [bare_consumer(run) for _ in range(runs)]
    bare = best(bare_runs)
    recovery_gc = tune_gc()  # as `recovery serve` does before its loop
    rows: list[Result] = []
    times = [f"bare {run_seconds(bare_runs)}"]
    cpu_times = [f"bare {run_cpu_seconds(bare_runs)}"]
    servers = Servers(stack)
    for label in stores:
        results = drain_store(run, label, playbooks, runs, servers, CLIENTS[args.clients])
        rows.append(best(results))
        if not skipped(results):
            times.append(f"{STORE_NAMES[label]} {run_seconds(results)}")
            cpu_times.append(f"{STORE_NAMES[label]} {run_cpu_seconds(results)}")

    print()
    print(f"best of {runs} runs each")
    print_table(bare, rows)
    print()
    print(f"runs, seconds: {'; '.join(times)}")
    print(f"runs, CPU seconds of this process (all its threads; not the broker's): {'; '.join(cpu_times)}")
    for row in rows:
        for line in row.details:
            print(line)
    print(
        f"garbage collector thresholds: bare consumer {python_gc} (Python's defaults), end to end {recovery_gc} "
        "(recovery's tuning, as `recovery serve` sets it)"
    )
    print(load() + ", shared with the broker" + (" and PostgreSQL" if "postgres" in stores else ""))
    print(f"recovery: {describe_build()}")

    if args.profile:
        profiler = cProfile.Profile()
        if args.profile == "sqlite":
            with sqlite_url() as url:
                end_to_end(run, "sqlite", url, playbooks, profiler, CLIENTS[args.clients])
        elif args.profile == "memory":
            end_to_end(run, "memory", "memory://", playbooks, profiler, CLIENTS[args.clients])
        else:
            end_to_end(run, "postgres", fresh_database(servers.postgres()), playbooks, profiler, CLIENTS[args.clients])
        for order in ("tottime", "cumulative"):
            print(
                f"\ncProfile of one end-to-end {STORE_NAMES[args.profile]} run (the service's thread), top 25 by "
                f"{order}:"
            )
            pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(25)
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
            print(f"\nthe profile's statistics: {args.profile_out} (read them with python -m pstats)")
    return 0


def cleanup(run: Run) -> None:
    """Delete the run's topics and groups (they would stay on a broker given with --bootstrap)."""
    with contextlib.suppress(Exception):
        run.admin.delete_groups(run.made_groups)
    with contextlib.suppress(Exception):
        run.admin.delete_topics(run.made_topics)


def drain_options(parser: argparse.ArgumentParser, stores: str) -> None:
    """The options of a bench that drains the bench stream with the service's loop (this one and bench.peer): the
    stream's (`stream_options`), `--bootstrap`, `--stores` (default `stores`), `--runs` and `--timeout-s`."""
    stream_options(parser)
    bootstrap_option(parser)
    parser.add_argument("--stores", default=stores, help=f"comma-separated: {', '.join(STORE_NAMES)}")
    parser.add_argument("--runs", type=int, default=2, help="timed runs of each; the best counts (default 2)")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="bound on each drain (default 600)")


def stream_options(parser: argparse.ArgumentParser) -> None:
    """The options that shape the bench stream (`build_messages`), with its defaults."""
    parser.add_argument("--events", type=int, default=EVENTS, help=f"events to generate (default {EVENTS:,})")
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help=f"customers (default {CUSTOMERS:,})")
    parser.add_argument("--days", type=float, default=DAYS, help=f"length of the period in days (default {DAYS:g})")
    parser.add_argument("--seed", type=int, default=SEED)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end", description=__doc__.split("\n\n")[0])
    drain_options(parser, "sqlite,postgres,memory")
    clients_option(parser)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="sqlite",
        choices=["sqlite", "postgres", "memory"],
        help="also profile one end-to-end run on this store (default sqlite)",
    )
    parser.add_argument("--profile-out", metavar="FILE", help="with --profile: also save the statistics to FILE")
    args = parser.parse_args(argv)
    stores = store_labels(parser, args.stores)
    return with_broker(args.bootstrap, lambda bootstrap, stack: measure(args, bootstrap, stores, stack))


if __name__ == "__main__":
    sys.exit(main())
