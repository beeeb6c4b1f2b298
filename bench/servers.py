"""Throw-away local servers for the benchmarks: a Kafka broker (deploy/kafka) and a PostgreSQL (deploy/postgres).

Each runs on free ports from a temporary data dir, started by the project's own scripts (as the test fixtures in
tests/conftest.py do), and is stopped and deleted when its `with` block ends, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SCRIPT_TIMEOUT_S = 300
"""Bound on one run of a start.sh or stop.sh (a first run may download the broker's jars or install PostgreSQL)."""


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_script(script: Path, env: dict[str, str]) -> str:
    """Run a deploy script and return its stdout; a failure raises with its output (it ends with the server's log)."""
    done = subprocess.run(  # noqa: S603 - our own script, no shell
        [str(script)], env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{script.relative_to(ROOT)} exited with {done.returncode}\n--- stdout\n{done.stdout}"
            f"\n--- stderr\n{done.stderr}"
        )
    return done.stdout


def _stop(script: Path, env: dict[str, str], folder: Path) -> None:
    try:
        run_script(script, env)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        # Must not hide the error that ended the `with` block, if any.
        print(f"warning: {exc}", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def kafka_broker() -> Iterator[str]:
    """`host:port` of a fresh single-node broker (deploy/kafka/start.sh), stopped and deleted at the end."""
    folder = Path(tempfile.mkdtemp(prefix="recovery-bench-kafka-"))
    port, controller_port = free_ports(2)
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_DATA_DIR": str(folder / "data"),
        # start.sh checks readiness with a metadata request from a python that has kafka-python: this one.
        "KAFKA_PYTHON": sys.executable,
    }
    try:
        run_script(ROOT / "deploy" / "kafka" / "start.sh", env)
        yield f"{HOST}:{port}"
    finally:
        _stop(ROOT / "deploy" / "kafka" / "stop.sh", env, folder)


@contextmanager
def postgres_server() -> Iterator[str]:
    """URL of a fresh PostgreSQL cluster (deploy/postgres/start.sh, its default settings), stopped and deleted at
    the end. Not below pytest's temporary root: the server runs as another user and that root may become 0700."""
    folder = Path(tempfile.mkdtemp(prefix="recovery-bench-pg-"))
    env = {**os.environ, "PG_DATA_DIR": str(folder / "data"), "PG_PORT": str(free_ports(1)[0])}
    try:
        lines = run_script(ROOT / "deploy" / "postgres" / "start.sh", env).strip().splitlines()
        if not lines:
            raise RuntimeError("deploy/postgres/start.sh printed no URL")
        yield lines[-1]
    finally:
        _stop(ROOT / "deploy" / "postgres" / "stop.sh", env, folder)


def bootstrap_option(parser: argparse.ArgumentParser) -> None:
    """`--bootstrap HOST:PORT`: a running broker for `with_broker`, which otherwise starts one."""
    parser.add_argument("--bootstrap", help="HOST:PORT of a running broker (default: start one on free ports)")


class Clients(NamedTuple):
    """The Kafka clients of the `recovery serve` measured: its consumer (`kafka_consumer`) and the outbox's producer
    (`kafka_producer`)."""

    consumer: str = "kafka-python"
    producer: str = "kafka-python"

    def settings(self) -> dict[str, str]:
        return {"kafka_consumer": self.consumer, "kafka_producer": self.producer}

    def __str__(self) -> str:
        if self.consumer == self.producer:
            return f"{self.consumer}'s clients"
        return f"{self.consumer}'s consumer, {self.producer}'s producer"


DEFAULT_CLIENTS = Clients()
CLIENTS = {
    "kafka-python": DEFAULT_CLIENTS,
    "confluent-producer": Clients(producer="confluent-kafka"),
    "confluent-kafka": Clients("confluent-kafka", "confluent-kafka"),
}
"""The client sets the benches measure, by name: kafka-python's (the default), confluent-kafka's producer only (the
`kafka_producer` option), confluent-kafka's consumer and producer."""


def clients_option(parser: argparse.ArgumentParser) -> None:
    """`--clients`: the Kafka clients of the `recovery serve` measured (a name of `CLIENTS`)."""
    parser.add_argument(
        "--clients",
        choices=CLIENTS,
        default="kafka-python",
        help="the service's Kafka clients: kafka-python's (default), confluent-kafka's producer, or confluent-kafka's",
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def with_broker(bootstrap: str | None, body: Callable[[str, contextlib.ExitStack], int]) -> int:
    """`body(bootstrap, stack)` against the broker named, or against one of its own (`kafka_broker`); what `body`
    enters on `stack` is closed after it, the broker last, also on Ctrl-C or SIGTERM (a CI timeout, kill), which
    return 130."""
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as stack:
        try:
            return body(bootstrap or stack.enter_context(kafka_broker()), stack)
        except KeyboardInterrupt:
            print("interrupted: stopping what was started", file=sys.stderr)
            return 130
