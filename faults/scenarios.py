"""The fault scenarios: each drains a stream of simulated traffic through real `recovery serve` processes while
something goes wrong, and fills one row of the table."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from kafka.errors import KafkaError

from bench.servers import ROOT
from faults.harness import Instance, Row, Run, Watch
from faults.servers import Broker, Postgres
from faults.stream import Stream, hostile
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.store import open_store

AGENT_TOKEN = "faults-agent-token"  # noqa: S105 - a throw-away token of a throw-away service
MAX_REQUEST_BYTES = 1024 * 1024
"""kafka-python's default `max_request_size`, which `recovery serve`'s producer keeps."""


@dataclass
class Context:
    broker: Broker
    stream: Stream
    workdir: Path
    seed: int
    kills: int = 10
    hostile: int = 10_000
    outage_s: float = 20.0
    clients: str = "kafka-python"
    """`recovery serve`'s Kafka clients (`kafka_consumer` and `kafka_producer`): kafka-python or confluent-kafka."""
    _postgres: Postgres | None = field(default=None, repr=False)

    @property
    def postgres(self) -> Postgres:
        if self._postgres is None:
            self._postgres = Postgres()
            self._postgres.start()
        return self._postgres

    def run(self, name: str, store_url: str) -> Run:
        """A scenario's topics, group and instances, on the suite's broker with the suite's clients."""
        return Run(
            name,
            self.broker.bootstrap,
            store_url,
            self.workdir,
            kafka_consumer=self.clients,
            kafka_producer=self.clients,
        )

    def close(self) -> None:
        if self._postgres is not None:
            self._postgres.delete()


def outbox_of(url: str) -> Callable[[], int]:
    """How many messages wait in the store's outbox (a connection of its own for each look)."""

    def size() -> int:
        store = open_store(url)
        try:
            return store.outbox_size()
        finally:
            store.close()

    return size


def _progress(run: Run, below: int, timeout_s: float = 120.0) -> None:
    """Wait until fewer than `below` events are left to commit (the instances are at work)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if run.lag() < below:
                return
        except KafkaError:  # the broker may be restarting: ask again
            pass
        time.sleep(0.1)


def _consumed(instance: Instance, at_least: int, timeout_s: float = 120.0) -> int:
    """Wait until `instance` has consumed `at_least` events, by its /metrics; how many it had then. Asked every
    20 ms: with confluent-kafka's clients the loop drains the suite's stream in about two seconds, and the group's
    committed offsets (`Run.lag`, a new admin client and consumer at each look) said a quarter only once all of it
    was read."""
    deadline = time.monotonic() + timeout_s
    consumed = 0
    while time.monotonic() < deadline:
        consumed = int(instance.metric("recovery_events_consumed_total"))
        if consumed >= at_least:
            break
        time.sleep(0.02)
    return consumed


def _finish(run: Run, row: Row, stream: Stream, url: str, watch: Watch) -> Row:
    if not run.drain(outbox_of(url)):
        row.problems.append("did not drain within the time allowed")
    row.problems += run.stop_all()
    run.compare(row, stream)
    row.not_ready_s = watch.not_ready_s
    return row


def sigkill(ctx: Context) -> Row:
    """`serve` on SQLite SIGKILLed at `kills` random moments and restarted each time, some kills closer together than
    the session timeout (6 s here), while the backlog drains."""
    rng = random.Random(ctx.seed)  # noqa: S311
    url = f"sqlite:///{ctx.workdir / 'sigkill.db'}"
    run = ctx.run("sigkill", url)
    run.create_topics()
    run.produce(ctx.stream.messages)
    row = Row(f"sigkill x{ctx.kills} (SQLite)")
    instance = run.instance().start()
    with Watch(run.live) as watch:
        for _ in range(ctx.kills):
            time.sleep(rng.uniform(1.0, 4.0))
            instance.kill()
            instance.start()
        return _finish(run, row, ctx.stream, url, watch)


def broker_restart(ctx: Context) -> Row:
    """The broker stopped for `outage_s` while the backlog drains, then started again. The whole stream is on the
    topic first: produced while an instance reads it live, a partition read to its end counts as holding nothing
    older, so an outage appended after other partitions' later events reaches its customers late, as a late event
    does (README, "Scaling out"), and replay's effects do not hold (4 runs of 11 differed so when half the stream
    came after the restart). The broker stops once the instance has consumed a quarter of it; a row whose instance
    consumed it all first fails, as it tested no read after the restart."""
    url = f"sqlite:///{ctx.workdir / 'broker.db'}"
    run = ctx.run("broker", url)
    run.create_topics()
    run.produce(ctx.stream.messages)
    row = Row(f"broker down {ctx.outage_s:.0f}s")
    instance = run.instance().start()
    total = len(ctx.stream.messages)
    with Watch(run.live) as watch:
        consumed = _consumed(instance, at_least=total // 4)
        ctx.broker.stop()
        row.notes.append(f"{total - consumed} events left when it stopped")
        if consumed >= total:
            row.problems.append("the stream was consumed before the broker stopped: nothing was read after it")
        time.sleep(ctx.outage_s)
        ctx.broker.start()
        if not run.live():
            row.problems.append("serve exited while the broker was down")
        return _finish(run, row, ctx.stream, url, watch)


def postgres_restart(ctx: Context) -> Row:
    """PostgreSQL stopped for `outage_s` while the stream arrives, then started again."""
    url = ctx.postgres.database("faults_pg_restart")
    run = ctx.run("pgrestart", url)
    run.create_topics()
    half = len(ctx.stream.messages) // 2
    run.produce(ctx.stream.messages[:half])
    row = Row(f"postgres down {ctx.outage_s:.0f}s")
    run.instance().start()
    with Watch(run.live) as watch:
        _progress(run, below=half * 3 // 4)
        ctx.postgres.stop()
        run.produce(ctx.stream.messages[half:])
        time.sleep(ctx.outage_s)
        ctx.postgres.start()
        if not run.live():
            row.problems.append("serve exited while PostgreSQL was down")
        return _finish(run, row, ctx.stream, url, watch)


def scale(ctx: Context) -> Row:
    """Three instances on PostgreSQL: two start, a third joins, then one of the first is SIGKILLed for good."""
    rng = random.Random(ctx.seed + 1)  # noqa: S311
    url = ctx.postgres.database("faults_scale")
    run = ctx.run("scale", url)
    run.create_topics()
    run.produce(ctx.stream.messages)
    row = Row("3 instances, join+kill")
    first, _second = run.instance().start(), run.instance().start()
    with Watch(run.live) as watch:
        time.sleep(rng.uniform(2.0, 4.0))
        run.instance().start()
        time.sleep(rng.uniform(1.0, 3.0))
        first.kill()
        return _finish(run, row, ctx.stream, url, watch)


AGENT_SLICES = 20
"""The agent scenario produces the stream's last two thirds in this many slices, one agent round apart."""


def at_scope_events(messages: Sequence[tuple[bytes, bytes]]) -> list[Sequence[tuple[bytes, bytes]]]:
    """`messages` cut before and after each scope event (an outage: no customer id), to be produced part by part,
    each flushed before the next. Produced at once while the loop reads it (days of event time in a second), an
    outage could reach the broker after a fetch had brought its customers' later events from other partitions: a
    late event (README), applied after them. Cut so, no fetch brings an event later than an outage before the
    outage is on the broker, nor the outage before an older event."""
    parts: list[Sequence[tuple[bytes, bytes]]] = []
    start = 0
    for i, (_, value) in enumerate(messages):
        if json.loads(value).get("customer_id") is None:
            parts += [messages[start:i], messages[i : i + 1]]
            start = i + 1
    parts.append(messages[start:])
    return [part for part in parts if part]


class Agent(threading.Thread):
    """A frontline agent on the API: claims the most urgent open task, then completes it, `rate` writes a second.
    It leaves the tasks of `muting` playbooks open: completing one would unmute the playbooks it inhibits (a task
    `replay`, which has no agent, never raises)."""

    def __init__(self, instance: Instance, rate: float, muting: frozenset[str]) -> None:
        super().__init__(daemon=True)
        self.instance = instance
        self.muting = muting
        self.every_s = 1.0 / rate
        self.writes = 0
        self.rounds = 0
        """Times it looked for a task (each followed by a claim and a completion when there was one to take)."""
        self.errors: list[str] = []
        self.stopped = threading.Event()

    def call(self, method: str, path: str, body: Mapping[str, object] | None = None) -> tuple[int, object]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.instance.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {AGENT_TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            try:
                self._round()
            except OSError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                self.rounds += 1

    def _round(self) -> None:
        # 500, the most a page holds: the muting playbooks' tasks it leaves open fill the first 50 once they pile up.
        status, found = self.call("GET", "/api/tasks?status=open&limit=500")
        if status != 200 or not isinstance(found, dict):
            return
        workable = [task["id"] for task in found.get("items") or () if task["playbook"] not in self.muting]
        if not workable:
            return
        task_id = workable[0]
        status, body = self.call("POST", f"/api/tasks/{task_id}/claim")
        self._count(status, body)
        time.sleep(self.every_s)
        outcome = {"outcome": "saved", "reason_code": "callback-done", "note": "fault suite"}
        status, body = self.call("POST", f"/api/tasks/{task_id}/complete", outcome)
        self._count(status, body)

    def looked(self, rounds: int, timeout_s: float) -> bool:
        """Wait until the agent has looked for a task `rounds` times (True), or `timeout_s` went by (False)."""
        deadline = time.monotonic() + timeout_s
        while self.rounds < rounds and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.05)
        return self.rounds >= rounds

    def _count(self, status: int, body: object) -> None:
        self.writes += 1
        if status not in (200, 409):
            self.errors.append(f"{status}: {str(body)[:200]}")


def agent(ctx: Context) -> Row:
    """SQLite, the default: an agent claims and completes tasks through the API, 5 writes a second, while the
    backlog drains. No store rollback, readiness 200 throughout."""
    url = f"sqlite:///{ctx.workdir / 'agent.db'}"
    run = ctx.run("agent", url)
    run.create_topics()
    third = len(ctx.stream.messages) // 3
    run.produce(ctx.stream.messages[:third])
    tokens = [{"name": "agent", "role": "frontline", "token_sha256": sha256(AGENT_TOKEN.encode()).hexdigest()}]
    instance = run.instance(api_tokens=json.dumps(tokens)).start()
    row = Row("agent 5 writes/s (SQLite)")
    with Watch(run.live) as watch:
        _progress(run, below=third * 3 // 4)
        muting = frozenset(name for pb in load_playbooks_or_raise([ROOT / "rules"]) for name, _ in pb.inhibited_by)
        worker = Agent(instance, rate=5.0, muting=muting)
        worker.start()
        # The rest of the stream in slices, each once the agent has looked for a task (and claimed and completed it)
        # once more: its writes fall among the loop's steps however fast the loop drains (a compiled loop drained the
        # rest after 6 writes).
        rest = ctx.stream.messages[third:]
        for k in range(AGENT_SLICES):
            for part in at_scope_events(rest[k * len(rest) // AGENT_SLICES : (k + 1) * len(rest) // AGENT_SLICES]):
                run.produce(part)
            if not worker.looked(worker.rounds + 1, timeout_s=30.0):
                row.problems.append(f"the agent stopped looking for tasks after {worker.rounds} rounds")
                for part in at_scope_events(rest[(k + 1) * len(rest) // AGENT_SLICES :]):
                    run.produce(part)
                break
        drained = run.drain(outbox_of(url))
        worker.stopped.set()
        worker.join()
        row.notes.append(f"{worker.writes} agent writes")
        if worker.writes < 10:
            row.problems.append(f"the agent made only {worker.writes} writes")
        rollbacks = instance.metric("recovery_store_errors_total")
        if not drained:
            row.problems.append("did not drain within the time allowed")
        if worker.errors:
            row.problems.append(f"{len(worker.errors)} API errors, first: {worker.errors[0]}")
        if rollbacks:
            row.problems.append(f"{rollbacks:.0f} store rollbacks")
        if watch.not_ready_s:
            row.problems.append(f"/readyz answered 503 for {watch.not_ready_s:.1f} s")
        row.problems += run.stop_all()
        # The agent's claims and outcomes change a task's status, and a case it completed before the customer's next
        # task makes that task open a case of its own, where replay (no agent) joins it to the open one.
        run.compare(row, ctx.stream, ignore=("status", "case_id"))
        row.not_ready_s = watch.not_ready_s
        return row


def hostile_messages(ctx: Context) -> Row:
    """10,000 hostile messages mixed into the stream: every one in the DLQ with a reason, the service up
    throughout."""
    rng = random.Random(ctx.seed + 2)  # noqa: S311
    url = f"sqlite:///{ctx.workdir / 'hostile.db'}"
    run = ctx.run("hostile", url)
    big = {"max.message.bytes": str(2 * MAX_REQUEST_BYTES)}
    run.create_topics(events_config=big)
    bad = hostile(ctx.hostile, ctx.seed, near_max_bytes=MAX_REQUEST_BYTES - 2048)
    messages: list[tuple[bytes | None, bytes]] = list(ctx.stream.messages)
    for message in bad:
        messages.insert(rng.randrange(len(messages) + 1), message)
    # The stream's own order stays: hostile messages only go between its events.
    run.produce(messages)
    row = Row(f"{ctx.hostile} hostile messages")
    instance = run.instance().start()
    with Watch(run.live) as watch:
        result = _finish(run, row, ctx.stream, url, watch)
    if instance.starts != 1 or row.dlq != ctx.hostile:
        result.problems.append(f"{row.dlq} of {ctx.hostile} in the DLQ")
    reasons = {dict(r.headers).get("recovery-error", b"")[:1] for r in run.read("dlq")}
    if b"" in reasons:
        result.problems.append("a DLQ record without a reason")
    if watch.not_ready_s:
        result.problems.append(f"/readyz answered 503 for {watch.not_ready_s:.1f} s")
    return result


def refused(ctx: Context) -> Row:
    """A DLQ copy the broker refuses forever (over the producer's request size, with its headers): it is parked,
    everything else is published."""
    url = f"sqlite:///{ctx.workdir / 'refused.db'}"
    run = ctx.run("refused", url)
    run.create_topics(events_config={"max.message.bytes": str(2 * MAX_REQUEST_BYTES)})
    huge = b'{"id": "too-big", "type": "Not.Valid", "pad": "' + b"x" * (MAX_REQUEST_BYTES - 100) + b'"}'
    third = len(ctx.stream.messages) // 3
    messages = [*ctx.stream.messages[:third], (b"C000001", huge), *ctx.stream.messages[third:]]
    run.produce(messages)
    row = Row("refused DLQ copy")
    instance = run.instance().start()
    with Watch(run.live) as watch:
        drained = run.drain(outbox_of(url))
        parked = instance.metric("recovery_outbox_parked")
        if not drained:
            row.problems.append("did not drain within the time allowed")
        if parked != 1:
            row.problems.append(f"{parked:.0f} parked messages, not 1")
        row.problems += run.stop_all()
        run.compare(row, ctx.stream)
        row.not_ready_s = watch.not_ready_s
        return row
