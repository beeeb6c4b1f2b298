"""End-to-end throughput of `recovery serve`'s loop against a bare kafka-python consumer on the same topic.

    python -m bench.end_to_end [--events N] [--customers N] [--bootstrap HOST:PORT]
                               [--stores sqlite,postgres,memory] [--runs N] [--profile [sqlite|postgres]]

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
   `stats.consumed` totals the stream AND the group's committed offsets equal the topic's end offsets.
   The memory store's row is for comparison, without a target: it keeps nothing across a restart, so it shows
   what the loop costs without a durable store (polling, decoding, evaluating, publishing, committing offsets).

Each is timed `--runs` times (default 2: the machine is shared with the broker, and one run can be unlucky); the
best run of each counts, and every run's time is printed. Both timings include joining the group (the broker
assigns at once: group.initial.rebalance.delay.ms=0); the "to first" column shows that start-up part. The target
is end-to-end events/s >= 0.40 x the bare consumer's. Targets are for humans to read: nothing here asserts them.
The bare consumer runs with Python's default garbage collector thresholds; then the heap is frozen and the
service runs with recovery's tuning, as `recovery serve` sets it (`recovery.runtime.tune_gc`).
`--profile` adds one more run (SQLite, or the store named) under cProfile (the service's thread only:
kafka-python's own I/O thread is not in it).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import os
import pstats
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from bench.generate import dumps, generate
from bench.replay_throughput import retire_engine
from bench.servers import kafka_broker, postgres_server
from recovery.config import Settings
from recovery.consumer import POLL_RECORDS, Service
from recovery.native import describe_build
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.runtime import tune_gc
from recovery.store import Store, open_service_store, open_store

TARGET_RATIO = 0.40
RULES_DIR = "rules"
PARTITIONS = 6
LATENESS_S = 10 * 365 * 86_400.0
"""Far more than the stream's age: a caught-up service's clock (wall time minus this) never passes event time."""
CHECK_EVERY_S = 0.01
STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "memory": "memory store"}
NO_TARGET = {"memory"}
"""Rows shown for comparison only: the memory store keeps nothing across a restart (not for production), so its
row is the loop's ceiling without a durable store, not a result the target applies to."""


@dataclass
class Result:
    """One timed drain of the topic: by the bare consumer or by the service with one store."""

    name: str
    events: int = 0
    seconds: float = 0.0
    first_s: float = 0.0
    note: str | None = None
    """Instead of a timing: 'skipped: why' or 'failed: why'."""
    target: bool = True
    """Whether TARGET_RATIO applies to this row (see NO_TARGET)."""
    details: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Run:
    """What every timed drain of this run shares."""

    bootstrap: str
    topic: str
    end_offsets: dict[TopicPartition, int]
    admin: KafkaAdminClient
    timeout_s: float
    made_topics: list[str] = field(default_factory=list)
    made_groups: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(self.end_offsets.values())

    def group(self, label: str) -> str:
        group = f"bench-{label}-{uuid.uuid4().hex[:12]}"
        self.made_groups.append(group)
        return group

    def committed(self, group: str) -> dict[TopicPartition, int]:
        offsets = self.admin.list_group_offsets({group: None}).get(group, {})
        return {tp: meta.offset for tp, meta in offsets.items() if tp.topic == self.topic}


# ----------------------------------------------------------------------------------------------- produce


def build_messages(customers: int, days: float, seed: int, events: int) -> list[tuple[bytes, bytes]]:
    """The stream as (key, value) pairs: the key is the customer id, or the outage id for an outage."""
    messages: list[tuple[bytes, bytes]] = []
    for event in generate(customers, days, seed, events):
        key = event.get("customer_id") or event["data"].get("outage_id") or event["id"]
        messages.append((str(key).encode(), dumps(event).encode()))
    return messages


def produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> float:
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


# ----------------------------------------------------------------------------------------------- bare


def bare_consumer(run: Run) -> Result:
    """A plain KafkaConsumer in a fresh group: count records until all are seen, then commit."""
    result = Result("bare kafka-python consumer")
    n = run.events
    start = time.perf_counter()
    consumer = KafkaConsumer(
        run.topic,
        bootstrap_servers=run.bootstrap,
        group_id=run.group("bare"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS,
    )
    try:
        seen = 0
        while seen < n:
            for records in consumer.poll(timeout_ms=200).values():
                seen += len(records)
            if seen and not result.first_s:
                result.first_s = time.perf_counter() - start
            if time.perf_counter() - start > run.timeout_s:
                raise TimeoutError(f"the bare consumer saw {seen:,} of {n:,} records in {run.timeout_s:g} s")
        consumer.commit()
        result.seconds = time.perf_counter() - start
        result.events = seen
    finally:
        consumer.close()
    return result


# ----------------------------------------------------------------------------------------------- service


def _consumed(service: Service) -> int:
    # The service's thread may add a key while we sum: read again.
    for _ in range(100):
        with contextlib.suppress(RuntimeError):
            return sum(service.stats.consumed.values())
    return 0


def open_memory_store(settings: Settings) -> Store:
    """The memory store's row opens its store directly: `recovery serve` refuses it (it cannot roll back a failed
    batch), the other rows open theirs as serve does (`open_service_store`)."""
    return open_store(settings.store_url)


class ServiceThread:
    """A Service running in a thread of its own, which also opens and closes its store (SQLite connections belong
    to the thread that made them). `start()` builds both and returns the service; `go` lets it run."""

    def __init__(
        self,
        settings: Settings,
        playbooks: Sequence[CompiledPlaybook],
        profiler: cProfile.Profile | None,
        open_loop_store: Callable[[Settings], Store] = open_service_store,
    ) -> None:
        self.settings = settings
        self.open_loop_store = open_loop_store
        self.playbooks = playbooks
        self.profiler = profiler
        self.go = threading.Event()
        self.stop = threading.Event()
        self.service: Service | None = None
        self.failure: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="bench-service", daemon=True)

    def _main(self) -> None:
        try:
            store = self.open_loop_store(self.settings)
            try:
                self.service = Service(self.settings, store, self.playbooks)
                self._ready.set()
                self.go.wait()
                if not self.stop.is_set():
                    if self.profiler is None:
                        self.service.run(self.stop)
                    else:
                        self.profiler.runcall(self.service.run, self.stop)
                retire_engine(self.service.engine)
            finally:
                store.close()
        except BaseException as exc:  # reported to the timing loop by check()
            self.failure = exc
        finally:
            self._ready.set()

    def start(self) -> Service:
        self._thread.start()
        self._ready.wait()
        if self.service is None:
            self.check("the store or the service could not be built")
        assert self.service is not None
        return self.service

    def check(self, what: str) -> None:
        """Raise when the thread has ended (it only ends when told to stop)."""
        if self.failure is not None or not self._thread.is_alive():
            raise RuntimeError(f"{what}: {self.failure!r}") from self.failure

    def finish(self) -> None:
        self.stop.set()
        self.go.set()
        self._thread.join(timeout=120)


def end_to_end(
    run: Run,
    label: str,
    store_url: str,
    playbooks: Sequence[CompiledPlaybook],
    profiler: cProfile.Profile | None = None,
) -> Result:
    """`Service.run` in a thread with a fresh store, group and output topics, until it has consumed the whole
    topic and committed its offsets."""
    result = Result(f"end to end, {STORE_NAMES[label]}", target=label not in NO_TARGET)
    n = run.events
    tag = uuid.uuid4().hex[:12]
    outputs = [f"bench-{kind}-{tag}" for kind in ("tasks", "gestures", "dlq")]
    run.made_topics.extend(outputs)
    group = run.group(f"e2e-{label}")
    settings = Settings.load(
        None,
        environ={
            "RECOVERY_KAFKA_BOOTSTRAP_SERVERS": run.bootstrap,
            "RECOVERY_TOPIC_EVENTS": run.topic,
            "RECOVERY_TOPIC_TASKS": outputs[0],
            "RECOVERY_TOPIC_GESTURES": outputs[1],
            "RECOVERY_TOPIC_DLQ": outputs[2],
            "RECOVERY_GROUP_ID": group,
            "RECOVERY_STORE_URL": store_url,
            "RECOVERY_LATENESS_S": str(LATENESS_S),
        },
    )
    runner = ServiceThread(
        settings, playbooks, profiler, open_memory_store if label == "memory" else open_service_store
    )
    service = runner.start()
    start = time.perf_counter()
    runner.go.set()
    try:
        while True:
            consumed = _consumed(service)
            now = time.perf_counter() - start
            if consumed and not result.first_s:
                result.first_s = now
            if consumed >= n and run.committed(group) == run.end_offsets:
                result.seconds = now
                break
            runner.check(f"the service stopped after {consumed:,} of {n:,} events")
            if now > run.timeout_s:
                raise TimeoutError(f"the service consumed {consumed:,} of {n:,} events in {run.timeout_s:g} s")
            time.sleep(CHECK_EVERY_S)
        result.events = consumed
    finally:
        runner.finish()
    stats = service.stats
    effects = sum(stats.effects.values())
    result.details.append(
        f"{result.name}: {', '.join(f'{k} {v:,}' for k, v in sorted(stats.consumed.items()))}; "
        f"{stats.batches:,} batches ({n / max(stats.batches, 1):,.0f} events each), {effects:,} effects, "
        f"{stats.rebalances} rebalances, {stats.store_errors} store errors, {stats.broker_errors} broker errors"
    )
    return result


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="recovery-bench-sqlite-") as folder:
        yield f"sqlite:///{Path(folder) / 'recovery.db'}"


def fresh_database(server_url: str) -> str:
    """A new empty database on the server (the bench's own server is deleted at the end, and its databases)."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # a generated name: nothing to inject
    return server_url.rsplit("/", 1)[0] + "/" + name


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


def best(results: Sequence[Result]) -> Result:
    """The fastest of the timed runs; a failure when one failed (the last result)."""
    if any(r.note is not None for r in results):
        return results[-1]
    return min(results, key=lambda r: r.seconds)


def _secs(results: Sequence[Result]) -> str:
    return " ".join(f"{r.seconds:.3f}" if r.note is None else "failed" for r in results)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


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
    topic = f"bench-events-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    run = Run(bootstrap, topic, {}, admin, args.timeout_s, made_topics=[topic])
    stack.callback(cleanup, run)

    produce_s = produce(bootstrap, topic, messages)
    run.end_offsets = end_offsets(bootstrap, topic)
    if run.events != len(messages):
        raise RuntimeError(f"produced {len(messages):,} events but the topic holds {run.events:,}")
    print(
        f"produce: {len(messages):,} events to {PARTITIONS} partitions of {topic} on {bootstrap} in "
        f"{produce_s:.3f}s ({len(messages) / produce_s:,.0f} events/s, acks=all)"
    )

    runs = max(1, args.runs)
    python_gc = gc.get_threshold()
    bare_runs = [bare_consumer(run) for _ in range(runs)]
    bare = best(bare_runs)
    recovery_gc = tune_gc()  # as `recovery serve` does before its loop
    rows: list[Result] = []
    times = [f"bare {_secs(bare_runs)}"]
    server: str | None = None
    for label in stores:
        name = f"end to end, {STORE_NAMES[label]}"
        if label == "postgres":
            try:
                server = stack.enter_context(postgres_server())
            except Exception as exc:  # no PostgreSQL here: the row says why
                rows.append(Result(name, note=f"skipped: {_reason(exc)}"))
                continue
        results: list[Result] = []
        for _ in range(runs):
            try:
                if label == "sqlite":
                    with sqlite_url() as url:
                        results.append(end_to_end(run, label, url, playbooks))
                elif label == "memory":
                    results.append(end_to_end(run, label, "memory://", playbooks))
                else:
                    assert server is not None
                    results.append(end_to_end(run, label, fresh_database(server), playbooks))
            except Exception as exc:  # one store's failure is reported in its row
                results.append(Result(name, note=f"failed: {_reason(exc)}"))
                break
        rows.append(best(results))
        times.append(f"{STORE_NAMES[label]} {_secs(results)}")

    print()
    print(f"best of {runs} runs each")
    print_table(bare, rows)
    print()
    print(f"runs, seconds: {'; '.join(times)}")
    for row in rows:
        for line in row.details:
            print(line)
    print(
        f"garbage collector thresholds: bare consumer {python_gc} (Python's defaults), end to end {recovery_gc} "
        "(recovery's tuning, as `recovery serve` sets it)"
    )
    print(
        f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs, shared with the "
        "broker" + (" and PostgreSQL)" if "postgres" in stores else ")")
    )
    print(f"recovery: {describe_build()}")

    if args.profile:
        profiler = cProfile.Profile()
        if args.profile == "sqlite":
            with sqlite_url() as url:
                end_to_end(run, "sqlite", url, playbooks, profiler)
        else:
            server = server or stack.enter_context(postgres_server())
            end_to_end(run, "postgres", fresh_database(server), playbooks, profiler)
        for order in ("tottime", "cumulative"):
            print(
                f"\ncProfile of one end-to-end {STORE_NAMES[args.profile]} run (the service's thread), top 25 by "
                f"{order}:"
            )
            pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(25)
    return 0


def cleanup(run: Run) -> None:
    """Delete the run's topics and groups (they would stay on a broker given with --bootstrap)."""
    with contextlib.suppress(Exception):
        run.admin.delete_groups(run.made_groups)
    with contextlib.suppress(Exception):
        run.admin.delete_topics(run.made_topics)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to generate (default 100,000)")
    parser.add_argument("--customers", type=int, default=5_000, help="customers (default 5,000)")
    parser.add_argument("--days", type=float, default=30.0, help="length of the period in days (default 30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bootstrap", help="HOST:PORT of a running broker (default: start one on free ports)")
    parser.add_argument("--stores", default="sqlite,postgres,memory", help="comma-separated: sqlite, postgres, memory")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="bound on each drain (default 600)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs of each; the best counts (default 2)")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="sqlite",
        choices=["sqlite", "postgres"],
        help="also profile one end-to-end run on this store (default sqlite)",
    )
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORE_NAMES]
    if unknown:
        parser.error(f"--stores: unknown {', '.join(unknown)} (use {', '.join(STORE_NAMES)})")

    # SIGTERM (a CI timeout, kill) stops the servers as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as stack:
        try:
            bootstrap = args.bootstrap or stack.enter_context(kafka_broker())
            return measure(args, bootstrap, stores, stack)
        except KeyboardInterrupt:
            print("interrupted: stopping what was started", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
