"""`recovery serve` against a real broker: effects out equal `recovery replay`'s, effectively once, DLQ, restarts.

Each test runs `recovery serve` as a real process (so it can be SIGKILLed) on its own uuid topics and group.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from bench.servers import CLIENTS as BENCH_CLIENTS
from recovery.consumer import DLQ_HEADERS, partition_of
from recovery.engine import Engine
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.replay import replay
from recovery.store import MemoryStore, SqliteStore
from recovery.times import format_time, parse_time
from tests.conftest import PAST, ROOT, KafkaBroker, free_ports, random_stream, wait_for

pytestmark = pytest.mark.timeout(240)

WAIT_S = 90.0


@dataclass
class Topics:
    events: str
    tasks: str
    gestures: str
    dlq: str
    group: str


@dataclass
class Serve:
    """One `recovery serve` process."""

    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> Serve:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "recovery.cli", "--log-level", "INFO", "serve"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL if still running, then reap it (a Popen collected running warns in whichever test is on then)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def topics(topic_factory: Callable[..., str], consumer_group: str) -> Topics:
    return Topics(
        events=topic_factory(partitions=6, prefix="events"),
        tasks=topic_factory(partitions=3, prefix="tasks"),
        gestures=topic_factory(partitions=3, prefix="gestures"),
        dlq=topic_factory(partitions=1, prefix="dlq"),
        group=consumer_group,
    )


@pytest.fixture
def serve_factory(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def make(store_url: str | None = None, **settings: str) -> Serve:
        env = {
            **os.environ,
            "RECOVERY_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "RECOVERY_TOPIC_EVENTS": topics.events,
            "RECOVERY_TOPIC_TASKS": topics.tasks,
            "RECOVERY_TOPIC_GESTURES": topics.gestures,
            "RECOVERY_TOPIC_DLQ": topics.dlq,
            "RECOVERY_GROUP_ID": topics.group,
            "RECOVERY_RULES_DIR": str(ROOT / "rules"),
            "RECOVERY_STORE_URL": store_url or f"sqlite:///{tmp_path / 'recovery.db'}",
            "RECOVERY_MERGE_WAIT_S": "1",
            "RECOVERY_HTTP_PORT": str(free_ports(1)[0]),
        }
        env.update({f"RECOVERY_{k.upper()}": v for k, v in settings.items()})
        serve = Serve(env, tmp_path / f"serve-{len(started)}.log").start()
        started.append(serve)
        return serve

    yield make
    for serve in started:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait(timeout=30)
        # Shown by pytest when the test failed (captured output of the teardown): what the service said.
        print(f"--- {serve.log.name} (exit {serve.proc.returncode}) ---\n{serve.output()[-30_000:]}")


def event_key(event: dict[str, Any]) -> str:
    return str(event.get("customer_id") or event["data"].get("outage_id") or event["id"])


def produce(bootstrap: str, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for key, value in messages:
        producer.send(topic, key=None if key is None else key.encode(), value=value)
    producer.flush(timeout=60)
    producer.close()


def produce_events(bootstrap: str, topic: str, events: Sequence[dict[str, Any]]) -> None:
    produce(bootstrap, topic, [(event_key(e), json.dumps(e).encode()) for e in events])


def collect(
    bootstrap: str, topics: Sequence[str], *, until: Callable[[list[Any]], bool], timeout_s: float = WAIT_S
) -> list[Any]:
    """Records of `topics` from the beginning, read until `until(records)` holds or the time is up."""
    consumer = KafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, enable_auto_commit=False
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(records) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def read_all(bootstrap: str, topics: Sequence[str]) -> list[Any]:
    """Every record of `topics`, from the beginning to their ends as they are now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in wait_for(lambda t=t: consumer.partitions_for_topic(t))]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(parts)
        records: list[Any] = []

        def at_the_end() -> bool:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            return all(consumer.position(tp) >= ends[tp] for tp in parts)

        wait_for(at_the_end, timeout_s=WAIT_S, what=f"{sum(ends.values())} records of {', '.join(topics)}")
        return records
    finally:
        consumer.close()


def group_offsets(bootstrap: str, topics: Topics) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offsets on the events topic, and the topic's end offsets, by partition."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topics.events, p) for p in wait_for(lambda: probe.partitions_for_topic(topics.events))]
        ends = {tp.partition: offset for tp, offset in probe.end_offsets(parts).items()}
        try:
            offsets = admin.list_group_offsets({topics.group: None}).get(topics.group, {})
        except KafkaError:  # the group does not exist yet
            offsets = {}
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topics.events}, ends
    finally:
        probe.close()
        admin.close()


def consumed(bootstrap: str, topics: Topics) -> bool:
    """Whether the group has committed every event on the topic (each one's effects are in the store by then)."""
    committed, ends = group_offsets(bootstrap, topics)
    return committed == ends


def drained(bootstrap: str, topics: Topics, *serves: Serve) -> list[Any]:
    """Waits until every event is consumed, stops `serves` (closing publishes what waits in the outbox), and
    returns every effect record published: nothing more can come, so nothing extra is missed."""
    try:
        wait_for(lambda: consumed(bootstrap, topics), timeout_s=WAIT_S, what="every event committed")
    except AssertionError:
        committed, ends = group_offsets(bootstrap, topics)
        logs = "\n".join(serve.output()[-5000:] for serve in serves)
        raise AssertionError(f"committed {committed} of {ends}\n{logs}") from None
    for serve in serves:
        assert serve.stop() == 0, serve.output()[-5000:]
    return read_all(bootstrap, [topics.tasks, topics.gestures])


def effects_of(records: list[Any]) -> list[str]:
    return sorted(r.value.decode() for r in records)


def replayed(playbooks: list[CompiledPlaybook], events: Sequence[dict[str, Any]], until: float | None) -> list[str]:
    out = io.StringIO()
    lines = [json.dumps(e) for e in events]
    replay(lines, Engine(playbooks, MemoryStore()), out, io.StringIO(), until=until)
    return sorted(out.getvalue().splitlines())


def stream(seed: int = 11, customers: int = 60, events: int = 1_500) -> list[dict[str, Any]]:
    return list(random_stream(seed, customers, events, days=30, start=PAST))


CLIENTS = {name: clients.settings() for name, clients in BENCH_CLIENTS.items()}
"""The service's Kafka clients (`kafka_consumer`, `kafka_producer`) the broker tests run with, as the benches'."""


def ticked(events: list[dict[str, Any]], partitions: int = 6) -> list[dict[str, Any]]:
    """`events`, then an event of a type no playbook reads on each partition, a week after the last: every
    partition's clock passes the stream's end (in pure event time, a partition's clock is its own events' time,
    where replay's one clock is the whole stream's)."""
    end = max(parse_time(e["occurred_at"]) for e in events) + 7 * 86400
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        found.setdefault(partition_of(f"tick-{n}", partitions), f"tick-{n}")
        n += 1
    ticks = [
        {"id": f"tick-{p}", "type": "clock.tick", "occurred_at": format_time(end), "customer_id": c, "data": {}}
        for p, c in sorted(found.items())
    ]
    return events + ticks


@pytest.mark.parametrize("clients", CLIENTS.values(), ids=CLIENTS.keys())
def test_a_backlog_gives_exactly_replays_effects(
    kafka_bootstrap: str,
    topics: Topics,
    serve_factory: Callable[..., Serve],
    shipped_playbooks: list[CompiledPlaybook],
    tmp_path: Path,
    clients: dict[str, str],
) -> None:
    events = stream()
    expected = replayed(shipped_playbooks, events, until=time.time())
    assert len(expected) > 50
    produce_events(kafka_bootstrap, topics.events, events)  # a month, before the service starts

    serve = serve_factory(**clients)
    records = drained(kafka_bootstrap, topics, serve)
    assert effects_of(records) == expected, serve.output()
    # Each effect on its customer's key; the store holds them once.
    assert all(r.key.decode() == json.loads(r.value)["customer_id"] for r in records)
    store = SqliteStore(tmp_path / "recovery.db")
    assert sorted(e.to_json() for e in store.effects()) == expected
    store.close()


def test_redelivered_events_make_no_second_effect(
    kafka_bootstrap: str, topics: Topics, serve_factory: Callable[..., Serve], shipped_playbooks: list[CompiledPlaybook]
) -> None:
    events = stream(seed=12, customers=20, events=400)
    expected = replayed(shipped_playbooks, events, until=time.time())
    produce_events(kafka_bootstrap, topics.events, events)
    serve = serve_factory()
    first = collect(kafka_bootstrap, [topics.tasks, topics.gestures], until=lambda r: len(r) >= len(expected))
    assert effects_of(first) == expected
    # The whole stream again, plus one new event: only the new one's effect comes out.
    cancel = {
        "id": "late-cancel",
        "type": "cancellation.requested",
        "occurred_at": format_time(time.time()),
        "customer_id": "C-new",
        "data": {},
    }
    produce_events(kafka_bootstrap, topics.events, [*events, cancel])
    after = drained(kafka_bootstrap, topics, serve)
    new = [json.loads(v) for v in set(effects_of(after)) - set(expected)]
    tasks = [(e["customer_id"], e["playbook"]) for e in new if e["kind"] == "task"]
    assert tasks == [("C-new", "cancellation-save")], serve.output()[-5000:]
    assert len(after) == len(expected) + len(new), "an effect was published twice"


def test_a_poison_message_goes_to_the_dlq_and_later_events_are_processed(
    kafka_bootstrap: str, topics: Topics, serve_factory: Callable[..., Serve]
) -> None:
    now = time.time()

    def cancel(n: int) -> bytes:
        event = {
            "id": f"c{n}",
            "type": "cancellation.requested",
            "occurred_at": format_time(now - 3600 + n),
            "customer_id": f"C{n}",
            "data": {},
        }
        return json.dumps(event).encode()

    bad_json = b"\xff{not json"
    bad_event = json.dumps({"id": "x1", "type": "service.call", "occurred_at": "yesterday", "customer_id": "C9"})
    produce(
        kafka_bootstrap,
        topics.events,
        [("C1", cancel(1)), ("C1", bad_json), ("C1", bad_event.encode()), ("C1", b""), ("C1", cancel(2))],
    )
    serve = serve_factory()
    dlq = collect(kafka_bootstrap, [topics.dlq], until=lambda r: len(r) >= 3)
    tasks = collect(kafka_bootstrap, [topics.tasks], until=lambda r: len(r) >= 2)
    assert serve.stop() == 0
    assert sorted(json.loads(r.value)["customer_id"] for r in tasks) == ["C1", "C2"]
    assert [r.value for r in dlq] == [bad_json, bad_event.encode(), b""]
    partition = partition_of("C1", 6)
    for record, offset in zip(dlq, (1, 2, 3), strict=True):
        headers = {k: v.decode() for k, v in record.headers}
        assert headers[DLQ_HEADERS[1]] == topics.events
        assert headers[DLQ_HEADERS[2]] == str(partition)
        assert headers[DLQ_HEADERS[3]] == str(offset)
        assert record.key == b"C1"
    reasons = [dict(r.headers)[DLQ_HEADERS[0]].decode() for r in dlq]
    assert reasons[0].startswith("invalid event") and "JSON" in reasons[0]
    assert "occurred_at" in reasons[1]
    assert reasons[2].startswith("empty message")


@pytest.mark.parametrize("clients", CLIENTS.values(), ids=CLIENTS.keys())
def test_killed_mid_stream_and_restarted_ends_with_the_uninterrupted_effects(
    kafka_bootstrap: str,
    topics: Topics,
    serve_factory: Callable[..., Serve],
    shipped_playbooks: list[CompiledPlaybook],
    tmp_path: Path,
    clients: dict[str, str],
) -> None:
    events = ticked(stream(seed=13, customers=100, events=3_000))
    # The clocks in pure event time (a lateness of ten years), so that catching up after the first half does not
    # move them to wall time: the run is then comparable with an uninterrupted one, `replay` without --until.
    expected = replayed(shipped_playbooks, events, until=None)
    event_time_only = {
        "lateness_s": str(10 * 365 * 86400),
        "batch_max_events": "20",
        "kafka_session_timeout_s": "6",
        **clients,
    }
    half = len(events) // 2
    produce_events(kafka_bootstrap, topics.events, events[:half])
    # Small batches, so that the kill lands between a store commit and an offset commit now and then.
    first = serve_factory(**event_time_only)
    seen = collect(kafka_bootstrap, [topics.tasks, topics.gestures], until=lambda r: len(r) >= 20)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert len(seen) >= 20, first.output()
    produce_events(kafka_bootstrap, topics.events, events[half:])  # the rest of the stream arrives meanwhile

    second = serve_factory(**event_time_only)
    records = collect(
        kafka_bootstrap, [topics.tasks, topics.gestures], until=lambda r: len({x.value for x in r}) >= len(expected)
    )
    assert second.stop() == 0, second.output()
    # Published at least once (a repeat carries the same id and content), stored exactly once.
    assert sorted(set(effects_of(records))) == expected
    store = SqliteStore(tmp_path / "recovery.db")
    assert sorted(e.to_json() for e in store.effects()) == expected
    store.close()


def test_a_deadline_fires_on_wall_time_and_survives_a_restart(
    kafka_bootstrap: str, topics: Topics, serve_factory: Callable[..., Serve]
) -> None:
    # complaint-unresolved: a complaint not resolved within 48 hours. It opens 48h minus 6s ago, no event follows.
    opened = time.time() - 48 * 3600 + 6
    complaint = {
        "id": "cmp-1",
        "type": "complaint.opened",
        "occurred_at": format_time(opened),
        "customer_id": "C-wall",
        "data": {"complaint_id": "K1", "category": "billing"},
    }
    produce_events(kafka_bootstrap, topics.events, [complaint])
    first = serve_factory(lateness_s="0")
    time.sleep(3)
    assert first.stop() == 0
    early = read_all(kafka_bootstrap, [topics.tasks])
    assert early == [], "fired before its deadline"
    serve_factory(lateness_s="0")  # the deadline is only in the store now
    tasks = collect(kafka_bootstrap, [topics.tasks], until=lambda r: len(r) >= 1, timeout_s=60)
    assert [json.loads(r.value)["playbook"] for r in tasks] == ["complaint-unresolved"]


@pytest.mark.timeout(480)
def test_two_instances_on_postgresql_give_the_effects_of_one_and_take_over_from_a_killed_one(
    kafka_bootstrap: str,
    topics: Topics,
    serve_factory: Callable[..., Serve],
    shipped_playbooks: list[CompiledPlaybook],
    postgres_database: str,
) -> None:
    events = ticked(stream(seed=14, customers=120, events=3_000))
    expected = replayed(shipped_playbooks, events, until=None)  # event time only, as below
    # Every event is on the topic before an instance reads: what they read is all there is, as replay sees it. (A
    # partition read to its end while records still come lets the others go past a scope event it has not fetched
    # yet, and replay's exact effects no longer hold: the lateness of a live stream.) And the survivor waits for the
    # killed one's lagging partitions however long the takeover takes under load, instead of going on after
    # barrier_wait_s (30 s by default).
    settings = {
        "lateness_s": str(10 * 365 * 86400),
        "batch_max_events": "50",
        "kafka_session_timeout_s": "6",
        "barrier_wait_s": "3600",
    }
    produce_events(kafka_bootstrap, topics.events, events)
    one = serve_factory(postgres_database, **settings)
    two = serve_factory(postgres_database, **settings)

    def assigned(serve: Serve) -> set[int]:  # its latest assignment
        found = [json.loads(line) for line in serve.output().splitlines() if '"partitions assigned"' in line]
        return set(found[-1]["partitions"]) if found else set()

    def sharing() -> bool:  # both at work, on all six partitions between them
        mine, yours = assigned(one), assigned(two)
        return bool(mine) and bool(yours) and not mine & yours and mine | yours == set(range(6))

    deadline = time.monotonic() + 2 * WAIT_S  # only a bound: what is waited for is the shared assignment
    while not sharing() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sharing(), one.output() + two.output()
    # Killed at work: once it has committed some of its partitions' events (or they are all done already, when the
    # other one read most of the topic before the group was shared).
    theirs = assigned(two)
    before, ends = group_offsets(kafka_bootstrap, topics)
    wait_for(
        lambda: (
            any(group_offsets(kafka_bootstrap, topics)[0].get(p, 0) > before.get(p, 0) for p in theirs)
            or all(before.get(p, 0) == ends[p] for p in theirs)
        ),
        timeout_s=WAIT_S,
        what="the second instance at work on its partitions",
    )
    assert two.stop(signal.SIGKILL) == -signal.SIGKILL  # its partitions must move to the other one
    left = {p: ends[p] - offset for p, offset in group_offsets(kafka_bootstrap, topics)[0].items() if p in theirs}
    print(f"killed with {sum(left.values())} of its partitions' events not committed: {left}")
    # The killed one's stored effects are published by the survivor once their claim runs out.
    outputs = [topics.tasks, topics.gestures]
    collect(kafka_bootstrap, outputs, until=lambda r: len({x.value for x in r}) >= len(expected))
    records = drained(kafka_bootstrap, topics, one)
    got = set(effects_of(records))
    missing, extra = sorted(set(expected) - got), sorted(got - set(expected))
    went_on = [line for line in one.output().splitlines() if "going on without" in line]
    assert (missing, extra) == ([], []), (
        f"{len(missing)} missing, {len(extra)} extra; e.g. {(missing + extra)[:2]}; went on without: {went_on}"
    )
    handed_over = one.output().count("partitions assigned")
    assert handed_over >= 2, "the surviving instance never took the killed one's partitions"


def test_offsets_are_committed_up_to_the_end_while_running(
    kafka_bootstrap: str,
    topics: Topics,
    serve_factory: Callable[..., Serve],
) -> None:
    # Tiny batches: many asynchronous offset commits in a short time (kafka-python refuses those past a connection's
    # in-flight limit); the last offsets must still be committed although no batch follows them.
    events = stream(seed=15, customers=30, events=600)
    produce_events(kafka_bootstrap, topics.events, events)
    serve = serve_factory(batch_max_events="5")
    probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        ends = probe.end_offsets([TopicPartition(topics.events, p) for p in range(6)])
    finally:
        probe.close()
    assert sum(ends.values()) == len(events)

    wait_for(lambda: consumed(kafka_bootstrap, topics), timeout_s=WAIT_S, what="every event committed")
    assert serve.proc.poll() is None  # while running, not only on the way out
    assert serve.stop() == 0


@pytest.mark.timeout(400)
@pytest.mark.parametrize("consumer", ["kafka-python", "confluent-kafka"])
def test_sigterm_while_the_broker_is_away_stops_the_service(kafka_libs: Path, tmp_path: Path, consumer: str) -> None:
    # A broker of its own, to stop. On closing, the service used to wait for the broker forever (committing the
    # last offsets, reading committed offsets, flushing the producer): SIGTERM was as good as ignored.
    broker = KafkaBroker(tmp_path / "kafka", *free_ports(2))
    broker.start()
    serve: Serve | None = None
    try:
        bootstrap = broker.bootstrap_servers
        topic = f"events-{uuid.uuid4().hex}"
        events = stream(seed=16, customers=20, events=200)
        produce_events(bootstrap, topic, events)
        port = free_ports(1)[0]
        env = {
            **os.environ,
            "RECOVERY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "RECOVERY_TOPIC_EVENTS": topic,
            "RECOVERY_GROUP_ID": f"group-{uuid.uuid4().hex}",
            "RECOVERY_RULES_DIR": str(ROOT / "rules"),
            "RECOVERY_STORE_URL": f"sqlite:///{tmp_path / 'recovery.db'}",
            "RECOVERY_HTTP_PORT": str(port),
            "RECOVERY_KAFKA_SESSION_TIMEOUT_S": "6",
            "RECOVERY_KAFKA_CONSUMER": consumer,
        }
        serve = Serve(env, tmp_path / "serve.log").start()
        wait_for(lambda: '"partitions assigned"' in serve.output(), what="the partitions", timeout_s=WAIT_S)
        # The start line says which clients run (the producer is kafka-python's, the default, here).
        said = {
            "kafka-python": "kafka-python's clients",
            "confluent-kafka": "confluent-kafka's consumer and kafka-python's producer",
        }
        assert said[consumer] in serve.output(), serve.output()
        wait_for(lambda: readiness(port) == 200, what="ready", timeout_s=WAIT_S)
        broker.stop()
        wait_for(lambda: readiness(port) == 503, what="/readyz to notice the broker is away", timeout_s=WAIT_S)
        serve.proc.send_signal(signal.SIGTERM)
        try:
            code = serve.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "SIGTERM did not stop the service while the broker was away:\n" + serve.output()
            ) from None
        assert code == 0, serve.output()
    finally:
        if serve is not None:
            serve.kill()
        broker.stop()


def readiness(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None
