"""`recovery serve` as a process of its own, for the benches that measure it from outside (bench.latency,
bench.fanout, bench.scale): fresh topics on the broker, a SQLite store in a temporary folder, and the process
started, watched and stopped by the fault suite's harness (faults.harness), its log in that folder.

The output topics are made with `message.timestamp.type=LogAppendTime`: the broker stamps each task and gesture
when it appends it, so a bench can read them after the run and still know when each was published.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from faults.harness import Instance, Run
from faults.scenarios import outbox_of
from recovery.exceptions import RecoveryError

READY_TIMEOUT_S = 120.0
STALL_S = 120.0
"""How long a bench waits for serve to commit anything more, with events left, before it calls serve stalled. Seen
with kafka-python 3.0.12 under load: the group is stable and owns every partition, yet its polls return nothing
while a backlog waits (docs/operations.md, "Capacity")."""
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


class Progress:
    """Whether a count that should keep rising has stood still for `stall_s` seconds (monotonic clock)."""

    def __init__(self, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self.clock = clock
        self.best: float | None = None
        self.since = clock()

    def stalled(self, count: float) -> bool:
        """Note `count`; True when it has not risen above its best for `stall_s`."""
        now = self.clock()
        if self.best is None or count > self.best:
            self.best, self.since = count, now
        return now - self.since >= self.stall_s


@dataclass
class Served:
    """One bench's topics and store (`run`), and its `recovery serve` process once started."""

    run: Run
    path: Path
    """The SQLite database file."""
    instance: Instance | None = None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    @property
    def pid(self) -> int:
        if self.instance is None or self.instance.proc is None:
            raise RuntimeError("recovery serve is not started")
        return self.instance.proc.pid

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> Instance:
        """Start `recovery serve` and wait until /readyz says it is ready (broker and store reachable)."""
        self.instance = self.run.instance().start()
        deadline = time.monotonic() + timeout_s
        while not self.instance.ready():
            if not self.instance.alive:
                raise RuntimeError(f"recovery serve exited before it was ready\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"recovery serve was not ready within {timeout_s:g} s\n{self.log_tail()}")
            time.sleep(0.2)
        return self.instance

    def drained(self, timeout_s: float, stall_s: float = STALL_S) -> bool:
        """Wait until every event is committed and the outbox is empty (twice in a row, a second apart); False when
        that did not happen within `timeout_s`, or when nothing more was committed or published for `stall_s` (the
        process alive but stuck: see STALL_S)."""
        outbox = outbox_of(self.url)
        deadline = time.monotonic() + timeout_s
        progress = Progress(stall_s)
        calm = 0
        while time.monotonic() < deadline:
            if self.instance is not None and not self.instance.alive:
                raise RuntimeError(f"recovery serve has exited\n{self.log_tail()}")
            try:
                left = self.run.lag() + outbox()
            except (KafkaError, RecoveryError):  # a server busy or restarting: ask again
                left = None
            calm = calm + 1 if left == 0 else 0
            if calm >= 2:
                return True
            if left is not None and progress.stalled(-left):
                return False
            time.sleep(1.0)
        return False

    def rss_mb(self) -> tuple[float, float]:
        """The process's resident set size now and at its peak (VmRSS, VmHWM in /proc), in MB."""
        fields = {}
        for row in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = row.partition(":")
            fields[name] = value
        return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]

    def size_mb(self) -> float:
        """The SQLite store's files (the database and its write-ahead log), in MB."""
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the process's log, to show with a failure."""
        if self.instance is None or not self.instance.log.exists():
            return "(no log)"
        tail = self.instance.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(["--- last lines of the log of recovery serve", *tail])


@contextlib.contextmanager
def served(bootstrap: str, name: str, **settings: str) -> Iterator[Served]:
    """Fresh topics (events, tasks, gestures, dlq), a group and a SQLite store for `recovery serve`, with these
    settings besides the harness's (setting name, lowercase, to value); the process, if started, is stopped at
    the end, and the topics, the group and the folder are deleted."""
    folder = Path(tempfile.mkdtemp(prefix=f"recovery-bench-{name}-"))
    path = folder / "recovery.db"
    run = Run(name, bootstrap, f"sqlite:///{path}", folder, **settings)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        run.create_topics()
        outputs = [run.topics["tasks"], run.topics["gestures"]]
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs=LOG_APPEND_TIME) for t in outputs])
        yield Served(run, path)
    finally:
        run.stop_all()
        with contextlib.suppress(Exception):
            admin.delete_groups([run.group])
        with contextlib.suppress(Exception):
            admin.delete_topics(list(run.topics.values()))
        admin.close()
        shutil.rmtree(folder, ignore_errors=True)
