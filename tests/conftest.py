from __future__ import annotations

import itertools
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient

from recovery.effects import Effect
from recovery.engine import Engine
from recovery.events import Event
from recovery.native import compiled_modules, stale_builds
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_playbooks_or_raise
from recovery.store import MemoryStore, Store
from recovery.store.records import OutboxItem
from recovery.times import format_time, parse_time

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
T0 = parse_time("2026-11-02T09:00:00Z")
PAST = (int(time.time()) // 86400 - 60) * 86400.0
"""Midnight UTC 60 days ago: streams from here are in the past, whenever the suite runs (a service refuses events
from the future, and its partitions' clocks follow wall time once read to their end)."""


def pytest_configure(config: pytest.Config) -> None:
    """Never test compiled modules older than the sources (Python would import them in place of the sources)."""
    stale = stale_builds()
    if stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        raise pytest.UsageError(
            f"compiled modules older than recovery's sources: {names}. Run `make compile` to build them again, or "
            "`make clean` (or delete them) to test the pure Python"
        )


def pytest_report_header(config: pytest.Config) -> str:
    compiled = compiled_modules()
    if not compiled:
        return "recovery: pure Python"
    return f"recovery: {len(compiled)} modules compiled by mypyc ({', '.join(compiled)})"


@pytest.fixture(scope="session")
def shipped_playbooks() -> list[CompiledPlaybook]:
    return load_playbooks_or_raise([RULES])


@pytest.fixture
def engine_factory(shipped_playbooks: list[CompiledPlaybook]) -> Callable[..., Engine]:
    """`engine_factory(store=..., max_customers=...)`: an engine of the shipped playbooks, on a new MemoryStore by
    default."""

    def make(store: Store | None = None, **kwargs: Any) -> Engine:
        return Engine(shipped_playbooks, store if store is not None else MemoryStore(), **kwargs)

    return make


def take_outbox(store: Store, limit: int = 1000) -> list[OutboxItem]:
    """What waits in the store's outbox, oldest first, taken out of it (claimed and settled as published; the
    caller commits)."""
    items = store.outbox_claim("tests", limit, time.time(), 60.0)
    store.outbox_done([item.seq for item in items])
    return items


def wait_for(check: Callable[[], Any], timeout_s: float = 90, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError as exc:
            value = last = exc
        else:
            last = value
        if value and not isinstance(value, OSError):
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def process_all(engine: Engine, events: Iterable[Event]) -> list[Effect]:
    """Every event through `engine`, in order: the effects of them all."""
    effects: list[Effect] = []
    for event in events:
        effects.extend(engine.process(event))
    return effects


@pytest.fixture
def event_factory() -> Callable[..., Event]:
    counter = itertools.count(1)

    def make(
        type: str = "service.call",
        customer_id: str | None = "C1",
        at: float = 0.0,
        data: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Event:
        raw: dict[str, Any] = {
            "id": id or f"ev-{next(counter)}",
            "type": type,
            "occurred_at": format_time(T0 + at),
            "data": data or {},
        }
        if customer_id is not None:
            raw["customer_id"] = customer_id
        return Event.from_dict(raw)

    return make


def random_stream(
    seed: int, customers: int, events: int, days: float = 40, start: float = T0
) -> Iterator[dict[str, Any]]:
    """A small mixed stream touching every shipped playbook from `start` (epoch seconds), sorted by time (ties keep
    generation order)."""
    rng = random.Random(seed)
    out: list[tuple[float, int, dict[str, Any]]] = []
    ids = itertools.count()
    regions = ["north", "south"]

    def add(at: float, type: str, cid: str | None, data: dict[str, Any]) -> None:
        n = next(ids)
        raw: dict[str, Any] = {"id": f"r{seed}-{n}", "type": type, "occurred_at": format_time(start + at), "data": data}
        if cid is not None:
            raw["customer_id"] = cid
        out.append((at, n, raw))

    for c in range(customers):
        tier = rng.choice(["standard", "silver", "gold", "platinum"])
        add(
            0,
            "customer.updated",
            f"C{c}",
            {"tier": tier, "region": rng.choice(regions), "annual_value": rng.choice([0, 999, 1000, 6000])},
        )
    span = days * 86400
    for _ in range(events):
        at = rng.uniform(1, span)
        cid = f"C{rng.randrange(customers)}"
        kind = rng.random()
        if kind < 0.45:
            add(at, "service.call", cid, {"reason": rng.choice(["billing", "router"])})
        elif kind < 0.6:
            k = f"K{rng.randrange(10**6)}"
            add(at, "complaint.opened", cid, {"complaint_id": k})
            if rng.random() < 0.7:
                add(at + rng.uniform(3600, 4 * 86400), "complaint.resolved", cid, {"complaint_id": k})
        elif kind < 0.75:
            add(at, "survey.response", cid, {"score": rng.randrange(11)})
        elif kind < 0.8:
            add(at, "cancellation.requested", cid, {})
        elif kind < 0.85:
            o = f"O{rng.randrange(10**6)}"
            add(at, "outage.started", None, {"outage_id": o, "region": rng.choice(regions)})
            add(at + rng.uniform(1800, 6 * 3600), "outage.resolved", None, {"outage_id": o})
        else:
            add(at, "payment.failed", cid, {})
    out.sort(key=lambda item: (item[0], item[1]))
    for _, _, raw in out:
        yield raw


# ---------------------------------------------------------------------------------------------- PostgreSQL
# One server per test session, started by deploy/postgres/start.sh only when a test asks for it; each test gets a
# database of its own (``postgres_database``).

POSTGRES_DEPLOY_DIR = ROOT / "deploy" / "postgres"
POSTGRES_SETUP_TIMEOUT_S = 600
"""Timeout of the first test needing the session server: a new machine installs the postgresql package first."""
POSTGRES_SCRIPT_TIMEOUT_S = 300
"""Bound on one run of start.sh or stop.sh (start.sh waits at most 60 s for the server itself)."""
POSTGRES_TEST_CONF = "fsync = off\nsynchronous_commit = off\nfull_page_writes = off"
"""A throw-away server need not survive a power cut: tests run several times faster without the syncs."""


def _run_postgres_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one of deploy/postgres's scripts; a failure shows its output, which ends with the server's last log."""
    script = POSTGRES_DEPLOY_DIR / name
    done = subprocess.run(
        [str(script)], env=env, capture_output=True, text=True, timeout=POSTGRES_SCRIPT_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{script} exited with {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done


def _needs_postgres(item: pytest.Item) -> bool:
    if "postgres_url" in getattr(item, "fixturenames", ()):
        return True
    # tests/store's store_factory asks for the server lazily, for its "postgres" parameter only.
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("store_factory") == "postgres"


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_postgres_setup_timeout(items: list[pytest.Item]) -> None:
    """Give the first test needing the session PostgreSQL time to install and start it (pytest-timeout counts
    fixture set-up in the test's own timeout); the other tests keep the default.

    Named apart from the hook so as not to replace another in this file; pytest only looks at names that start
    with ``pytest_``.
    """
    for item in items:
        if _needs_postgres(item):
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(POSTGRES_SETUP_TIMEOUT_S))
            break


class PostgresServer:
    """A PostgreSQL cluster of deploy/postgres on a free port, in a folder of its own (not under pytest's temporary
    root: the server runs as the ``postgres`` user and opens its files by absolute path, and every new pytest session
    makes ``/tmp/pytest-of-USER`` 0700 again, which crashes a server living below it). It can be stopped and
    started again (same data, same port)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="recovery-pg-"))
        self.env = {
            **os.environ,
            "PG_DATA_DIR": str(self.folder / "data"),
            "PG_PORT": str(free_ports(1)[0]),
            "PG_EXTRA_CONF": POSTGRES_TEST_CONF,
        }
        self.url = ""

    def start(self) -> str:
        self.url = _run_postgres_script("start.sh", self.env).stdout.strip().splitlines()[-1]
        return self.url

    def stop(self) -> None:
        _run_postgres_script("stop.sh", self.env)

    def delete(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the session's server (``postgresql://postgres@127.0.0.1:PORT/recovery``): a fresh cluster on a free
    port, stopped and deleted at the end of the session."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.delete()


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """URL of an empty database of this test's own, dropped after it (with any connection left open)."""
    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------------- Kafka
# One real broker per test session, started by deploy/kafka/start.sh only when a test asks for it. Each test gets its
# own uuid topic (``topic_factory``) and consumer group (``consumer_group``), so tests never see each other's
# messages and the broker need not be reset between them.

KAFKA_DEPLOY_DIR = ROOT / "deploy" / "kafka"
KAFKA_HOST = "127.0.0.1"
KAFKA_SETUP_TIMEOUT_S = 600
"""Timeout of the first test needing the jars or the session broker: a new machine downloads ~45 MB first."""
KAFKA_SCRIPT_TIMEOUT_S = 300
"""Bound on one run of fetch.sh, start.sh or stop.sh (start.sh waits at most 90 s for the broker itself)."""

TopicFactory = Callable[..., str]


def recovery_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`recovery ARGS` run from the tree's root, as a user runs it; its output as text, whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "recovery.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((KAFKA_HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((KAFKA_HOST, port)) == 0


def run_kafka_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one of deploy/kafka's scripts; a failure shows its output, which ends with the broker's last log lines."""
    script = KAFKA_DEPLOY_DIR / name
    done = subprocess.run(
        [str(script)], env=env, capture_output=True, text=True, timeout=KAFKA_SCRIPT_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{script} exited with {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done


@dataclass
class KafkaBroker:
    """A broker run by deploy/kafka/start.sh and stop.sh on its own ports and data dir."""

    data_dir: Path
    port: int
    controller_port: int
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_DATA_DIR": str(self.data_dir),
            # start.sh checks readiness with a metadata request from a python that has kafka-python: this one.
            "KAFKA_PYTHON": sys.executable,
        }

    @property
    def bootstrap_servers(self) -> str:
        return f"{KAFKA_HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    def start(self) -> subprocess.CompletedProcess[str]:
        return run_kafka_script("start.sh", self.env)

    def stop(self) -> subprocess.CompletedProcess[str]:
        return run_kafka_script("stop.sh", self.env)


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_kafka_setup_timeouts(items: list[pytest.Item]) -> None:
    """Give the first test needing the jars, and the first needing the session broker, time to set them up.

    pytest-timeout counts fixture set-up in the test's own timeout; the other Kafka tests keep the default.
    """
    for fixture in ("kafka_libs", "kafka_bootstrap"):
        for item in items:
            if fixture in getattr(item, "fixturenames", ()):
                if item.get_closest_marker("timeout") is None:
                    item.add_marker(pytest.mark.timeout(KAFKA_SETUP_TIMEOUT_S))
                break


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The broker's jars (deploy/kafka/fetch.sh downloads them from Maven Central on first use)."""
    return Path(run_kafka_script("fetch.sh", dict(os.environ)).stdout.strip())


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of the session's broker: started on free ports with a fresh data dir, stopped at the end."""
    port, controller_port = free_ports(2)
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), port, controller_port)
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=30_000)
    yield admin
    admin.close()


@pytest.fixture
def topic_factory(kafka_admin: KafkaAdminClient) -> Iterator[TopicFactory]:
    """Creates uuid-named topics (``make(partitions=1, prefix="test")`` returns the name); deletes them after."""
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex}"
        kafka_admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True
        )
        created.append(name)
        return name

    yield make
    if created:
        kafka_admin.delete_topics(created)


@pytest.fixture
def consumer_group() -> str:
    """A consumer group id no other test uses."""
    return f"test-group-{uuid.uuid4().hex}"
