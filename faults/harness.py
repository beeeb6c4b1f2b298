"""What every fault scenario does: topics of its own, the stream produced, `recovery serve` processes started,
killed and restarted, readiness watched, and at the end the output topics read back and held against replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from bench.servers import ROOT, free_ports
from faults.stream import Stream
from recovery.exceptions import RecoveryError

PARTITIONS = 6
TEN_YEARS_S = 10 * 365 * 86400
DRAIN_TIMEOUT_S = 600.0


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    events: int = 0
    expected: int = 0
    seen: int = 0
    missing: int = 0
    unexpected: int = 0
    repeats: int = 0
    updates: int = 0
    dlq: int = 0
    not_ready_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the scenario did, shown after its verdict (how many API writes the agent made)."""

    @property
    def passed(self) -> bool:
        return not self.problems and self.missing == 0 and self.unexpected == 0

    HEADER = (
        f"{'scenario':26s} {'events':>7s} {'expected':>8s} {'seen':>6s} {'missing':>7s} {'unexpected':>10s} "
        f"{'repeats':>7s} {'updates':>7s} {'dlq':>6s} {'503 s':>6s}  result"
    )

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.problems or ["effects differ from replay"])
        verdict += "".join(f" ({note})" for note in self.notes)
        return (
            f"{self.scenario:26s} {self.events:7d} {self.expected:8d} {self.seen:6d} {self.missing:7d} "
            f"{self.unexpected:10d} {self.repeats:7d} {self.updates:7d} {self.dlq:6d} {self.not_ready_s:6.1f}  "
            f"{verdict}"
        )


class Instance:
    """One `recovery serve` process, with its own HTTP port and log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = dict(env)
        self.port = free_ports(1)[0]
        self.env["RECOVERY_HTTP_PORT"] = str(self.port)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Instance:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "recovery.cli", "--log-level", "INFO", "serve"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def signal(self, number: int) -> None:
        """Send signal `number` (SIGSTOP, SIGCONT...) if it runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(number)

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM, then wait; None when it did not end in time (it is killed then)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def ready(self) -> bool | None:
        """True: /readyz answers 200; False: 503; None: no answer (not listening)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as exc:
            return False if exc.code == 503 else None
        except OSError:
            return None

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on /metrics (0 when absent or unreachable)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total


class Watch:
    """Samples every instance's /readyz: how long any live, once-ready instance answered 503."""

    def __init__(self, instances: Callable[[], Sequence[Instance]], every_s: float = 0.25) -> None:
        self.instances = instances
        self.every_s = every_s
        self.not_ready_s = 0.0
        self._ready_once: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            for instance in self.instances():
                if not instance.alive:
                    continue
                state = instance.ready()
                if state:
                    self._ready_once.add(id(instance))
                elif state is False and id(instance) in self._ready_once:
                    self.not_ready_s += self.every_s
                    break


class Run:
    """One scenario's topics, group, store and instances on a broker."""

    def __init__(self, name: str, bootstrap: str, store_url: str, workdir: Path, **settings: str) -> None:
        self.name = name
        self.bootstrap = bootstrap
        tag = uuid.uuid4().hex[:8]
        self.topics = {kind: f"faults-{name}-{kind}-{tag}" for kind in ("events", "tasks", "gestures", "dlq")}
        self.group = f"faults-{name}-{tag}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "RECOVERY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "RECOVERY_TOPIC_EVENTS": self.topics["events"],
            "RECOVERY_TOPIC_TASKS": self.topics["tasks"],
            "RECOVERY_TOPIC_GESTURES": self.topics["gestures"],
            "RECOVERY_TOPIC_DLQ": self.topics["dlq"],
            "RECOVERY_GROUP_ID": self.group,
            "RECOVERY_RULES_DIR": str(ROOT / "rules"),
            "RECOVERY_STORE_URL": store_url,
            "RECOVERY_LATENESS_S": str(TEN_YEARS_S),  # the clocks stay in event time, as replay's
            "RECOVERY_KAFKA_SESSION_TIMEOUT_S": "6",
        }
        self.env.update({f"RECOVERY_{k.upper()}": v for k, v in settings.items()})
        self.instances: list[Instance] = []

    def create_topics(self, events_config: dict[str, str] | None = None) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30_000)
        try:
            admin.create_topics(
                [
                    NewTopic(self.topics["events"], PARTITIONS, 1, topic_configs=events_config or {}),
                    NewTopic(self.topics["tasks"], 3, 1),
                    NewTopic(self.topics["gestures"], 3, 1),
                    NewTopic(self.topics["dlq"], 1, 1),
                ]
            )
        finally:
            admin.close()

    def produce(self, messages: Sequence[tuple[bytes | None, bytes]], max_request_size: int = 4 * 1024 * 1024) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=20, max_request_size=max_request_size
        )
        try:
            for key, value in messages:
                producer.send(self.topics["events"], key=key, value=value)
            producer.flush(timeout=120)
        finally:
            producer.close()

    def instance(self, **settings: str) -> Instance:
        env = {**self.env, **{f"RECOVERY_{k.upper()}": v for k, v in settings.items()}}
        found = Instance(env, self.workdir / f"{self.name}-{len(self.instances)}.log")
        self.instances.append(found)
        return found

    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.alive]

    def lag(self) -> int:
        """Events not committed by the group yet."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30_000)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            partitions = [TopicPartition(self.topics["events"], p) for p in range(PARTITIONS)]
            ends = consumer.end_offsets(partitions)
            committed = admin.list_group_offsets({self.group: partitions})[self.group]
        finally:
            consumer.close()
            admin.close()
        done = {tp: max(meta.offset, 0) for tp, meta in committed.items()}
        return sum(ends[tp] - done.get(tp, 0) for tp in partitions)

    def drain(self, outbox: Callable[[], int], timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until every event is committed and the outbox is empty (twice in a row, a second apart)."""
        deadline = time.monotonic() + timeout_s
        calm = 0
        while time.monotonic() < deadline:
            try:
                done = self.lag() == 0 and outbox() == 0
            except (KafkaError, RecoveryError):  # a server restarting: ask again
                done = False
            calm = calm + 1 if done else 0
            if calm >= 2:
                return True
            time.sleep(1.0)
        return False

    def stop_all(self) -> list[str]:
        problems = []
        for instance in self.instances:
            if instance.alive and instance.stop() is None:
                problems.append(f"{instance.log.name} did not stop on SIGTERM within 60 s")
        return problems

    def read(self, topic: str) -> list[Any]:
        consumer = KafkaConsumer(
            self.topics[topic],
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=5_000,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        try:
            return list(consumer)
        finally:
            consumer.close()

    def compare(self, row: Row, stream: Stream, *, ignore: tuple[str, ...] = ()) -> None:
        """Fill `row` from the output topics: effects seen against replay's (fields in `ignore` aside), repeats
        (the same copy again), updates (the same id with another content: a status change), DLQ records."""
        seen: dict[str, list[dict[str, Any]]] = {}
        copies: dict[str, list[str]] = {}  # where each copy is: topic, partition, offset, broker time
        for record in self.read("tasks") + self.read("gestures"):
            effect = json.loads(record.value)
            seen.setdefault(effect["id"], []).append(effect)
            copies.setdefault(effect["id"], []).append(
                f"{record.topic}[{record.partition}]@{record.offset} {record.timestamp / 1000:.3f}"
            )
        row.events = stream.events
        row.expected = len(stream.effects)
        row.seen = len(seen)
        missing = sorted(set(stream.effects) - set(seen))
        row.missing = len(missing)
        distinct = {effect_id: {json.dumps(c, sort_keys=True) for c in copies} for effect_id, copies in seen.items()}
        row.repeats = sum(len(seen[effect_id]) - len(versions) for effect_id, versions in distinct.items())
        row.updates = sum(len(versions) - 1 for versions in distinct.values())
        if row.repeats:  # where the copies went, for a look with --keep
            lines = [
                f"{effect_id}: {', '.join(copies[effect_id])}"
                for effect_id, versions in sorted(distinct.items())
                if len(seen[effect_id]) > len(versions)
            ]
            (self.workdir / f"{self.name}-repeats.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

        def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
            return {**a, **dict.fromkeys(ignore)} == {**b, **dict.fromkeys(ignore)}

        unexpected = [
            effect_id
            for effect_id, copies in seen.items()
            if effect_id not in stream.effects or not any(same(c, stream.effects[effect_id]) for c in copies)
        ]
        row.unexpected = len(unexpected)
        row.dlq = len(self.read("dlq"))
        if missing or unexpected:  # what differs, for a look with --keep
            lines = [f"missing (replay raised it): {json.dumps(stream.effects[i], sort_keys=True)}" for i in missing]
            for effect_id in sorted(unexpected):
                lines.append(f"seen: {json.dumps(seen[effect_id][-1], sort_keys=True)}")
                if effect_id in stream.effects:
                    lines.append(f"  replay's: {json.dumps(stream.effects[effect_id], sort_keys=True)}")
            (self.workdir / f"{self.name}-differences.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
