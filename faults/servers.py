"""The real servers a fault scenario runs against, each started by the project's own deploy scripts on free ports
from a temporary data dir, and able to be stopped and started again mid-scenario (same data, same port)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.servers import HOST, ROOT, free_ports, run_script


class Broker:
    """A single-node Kafka broker (deploy/kafka)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="recovery-faults-kafka-"))
        port, controller_port = free_ports(2)
        self.bootstrap = f"{HOST}:{port}"
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(controller_port),
            "KAFKA_DATA_DIR": str(self.folder / "data"),
            "KAFKA_PYTHON": sys.executable,
        }

    def start(self) -> None:
        run_script(ROOT / "deploy" / "kafka" / "start.sh", self.env)

    def stop(self) -> None:
        run_script(ROOT / "deploy" / "kafka" / "stop.sh", self.env)

    def delete(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class Postgres:
    """A PostgreSQL cluster (deploy/postgres) with its default settings (fsync on)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="recovery-faults-pg-"))
        self.env = {**os.environ, "PG_DATA_DIR": str(self.folder / "data"), "PG_PORT": str(free_ports(1)[0])}
        self.url = ""

    def start(self) -> None:
        lines = run_script(ROOT / "deploy" / "postgres" / "start.sh", self.env).strip().splitlines()
        if not lines:
            raise RuntimeError("deploy/postgres/start.sh printed no URL")
        self.url = lines[-1]

    def stop(self) -> None:
        run_script(ROOT / "deploy" / "postgres" / "stop.sh", self.env)

    def delete(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def database(self, name: str) -> str:
        """The URL of a new, empty database `name` on this server."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name
