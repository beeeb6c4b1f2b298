"""Timed drains of a topic by `recovery serve`'s loop (`Service.run` in a thread, a fresh store, group and output
topics each time), shared by bench.end_to_end and bench.peer. The timing runs from the thread's start until
`stats.consumed` totals the topic, the group's committed offsets equal the topic's end offsets AND the output
topics hold every message the service queued (as a stream app's run ends with its output produced).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from bench.servers import DEFAULT_CLIENTS, Clients, postgres_server
from bench.service import STALL_S, Progress
from recovery.config import Settings
from recovery.consumer import Service
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import Store, open_service_store, open_store

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
    committed_s: float = 0.0
    """(The service's rows) When the group's offsets were committed to the topic's end; `seconds` is when its
    output topics also held every message it queued."""
    cpu_s: float = 0.0
    """CPU seconds of this process during the drain (every thread: the loop, kafka-python's): steadier than the
    wall time on a machine whose speed drifts, and the broker's work is not in it."""
    note: str | None = None
    """Instead of a timing: 'skipped: why' or 'failed: why'."""
    target: bool = True
    """Whether bench.end_to_end's target ratio applies to this row (see NO_TARGET)."""
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


def _summed(read: Callable[[], int]) -> int:
    """`read()` of the service's counters, read again while the service's thread adds a key as we sum."""
    for _ in range(100):
        with contextlib.suppress(RuntimeError):
            return read()
    return 0


def _consumed(service: Service) -> int:
    return _summed(lambda: sum(service.stats.consumed.values()))


def _queued(service: Service) -> int:
    """The messages the service has queued in its outbox: effects, DLQ copies, events forwarded to their partition."""
    stats = service.stats
    return _summed(lambda: sum(stats.effects.values()) + sum(stats.dlq.values()) + stats.consumed["forwarded"])


class Published:
    """How many messages the output topics hold (their end offsets), asked of the broker."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self.topics = topics
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        self._partitions: list[TopicPartition] = []

    def count(self) -> int:
        if not self._partitions:  # the service creates its topics as it starts
            found = [self._consumer.partitions_for_topic(topic) for topic in self.topics]
            if any(not partitions for partitions in found):
                return 0
            self._partitions = [
                TopicPartition(t, p) for t, ps in zip(self.topics, found, strict=True) for p in sorted(ps)
            ]
        return sum(self._consumer.end_offsets(self._partitions).values())

    def close(self) -> None:
        self._consumer.close()


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
    clients: Clients = DEFAULT_CLIENTS,
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
            **{f"RECOVERY_{name.upper()}": value for name, value in clients.settings().items()},
        },
    )
    runner = ServiceThread(
        settings, playbooks, profiler, open_memory_store if label == "memory" else open_service_store
    )
    service = runner.start()
    published = Published(run.bootstrap, outputs)
    out_at_commit = ""
    start, cpu = time.perf_counter(), time.process_time()
    progress = Progress(STALL_S)
    runner.go.set()
    try:
        while True:
            consumed = _consumed(service)
            now = time.perf_counter() - start
            if progress.stalled(consumed) and consumed < n:
                raise TimeoutError(f"the service stalled: {consumed:,} of {n:,} events consumed, none in {STALL_S:g} s")
            if consumed and not result.first_s:
                result.first_s = now
            if consumed >= n and not result.committed_s and run.committed(group) == run.end_offsets:
                result.committed_s = now
                out_at_commit = f"{published.count():,} of {_queued(service):,} messages out"
            if result.committed_s and published.count() >= _queued(service):
                result.seconds, result.cpu_s = now, time.process_time() - cpu
                break
            runner.check(f"the service stopped after {consumed:,} of {n:,} events")
            if now > run.timeout_s:
                if result.committed_s:
                    out = f"{published.count():,} of {_queued(service):,} messages"
                    raise TimeoutError(f"the service published {out} in {run.timeout_s:g} s")
                raise TimeoutError(f"the service consumed {consumed:,} of {n:,} events in {run.timeout_s:g} s")
            time.sleep(CHECK_EVERY_S)
        result.events = consumed
    finally:
        published.close()
        runner.finish()
    stats = service.stats
    effects = sum(stats.effects.values())
    result.details.append(
        f"{result.name}: {', '.join(f'{k} {v:,}' for k, v in sorted(stats.consumed.items()))}; "
        f"{stats.batches:,} batches ({n / max(stats.batches, 1):,.0f} events each), {effects:,} effects, "
        f"{stats.rebalances} rebalances, {stats.store_errors} store errors, {stats.broker_errors} broker errors; "
        f"offsets committed after {result.committed_s:.3f} s ({out_at_commit}), the last message published after "
        f"{result.seconds:.3f} s"
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


class Servers:
    """The bench's own PostgreSQL server, started when a row first needs it and stopped when `stack` closes."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self._postgres: str | None = None

    def postgres(self) -> str:
        if self._postgres is None:
            self._postgres = self.stack.enter_context(postgres_server())
        return self._postgres


def drain_store(
    run: Run,
    label: str,
    playbooks: Sequence[CompiledPlaybook],
    runs: int,
    servers: Servers,
    clients: Clients = DEFAULT_CLIENTS,
) -> list[Result]:
    """`runs` timed drains of the topic by the service with a fresh store of kind `label` each and the outbox's
    Kafka `clients`; a failure ends them (its result comes last), and a PostgreSQL that cannot be started is one result,
    'skipped: why'."""
    name = f"end to end, {STORE_NAMES[label]}"
    if label == "postgres":
        try:
            servers.postgres()
        except Exception as exc:  # no PostgreSQL here: the row says why
            return [Result(name, note=f"skipped: {reason(exc)}")]
    results: list[Result] = []
    for _ in range(runs):
        try:
            if label == "sqlite":
                with sqlite_url() as url:
                    results.append(end_to_end(run, label, url, playbooks, clients=clients))
            elif label == "memory":
                results.append(end_to_end(run, label, "memory://", playbooks, clients=clients))
            else:
                url = fresh_database(servers.postgres())
                results.append(end_to_end(run, label, url, playbooks, clients=clients))
        except Exception as exc:  # one store's failure is reported in its row
            results.append(Result(name, note=f"failed: {reason(exc)}"))
            break
    return results


def store_labels(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """The stores of a `--stores` option (comma-separated labels of STORE_NAMES); an unknown one is a usage error."""
    stores = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORE_NAMES]
    if unknown:
        parser.error(f"--stores: unknown {', '.join(unknown)} (use {', '.join(STORE_NAMES)})")
    return stores


def best(results: Sequence[Result]) -> Result:
    """The fastest of the timed runs; a failure when one failed (the last result)."""
    if any(r.note is not None for r in results):
        return results[-1]
    return min(results, key=lambda r: r.seconds)


def run_seconds(results: Sequence[Result]) -> str:
    """Every run's seconds, in order ('failed' for a failure)."""
    return " ".join(f"{r.seconds:.3f}" if r.note is None else "failed" for r in results)


def run_cpu_seconds(results: Sequence[Result]) -> str:
    """Every run's CPU seconds, in order ('failed' for a failure)."""
    return " ".join(f"{r.cpu_s:.2f}" if r.note is None else "failed" for r in results)


def skipped(results: Sequence[Result]) -> bool:
    return any(r.note is not None and r.note.startswith("skipped") for r in results)


def reason(exc: BaseException) -> str:
    """An exception in one line, for a row's note."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
