"""bench.end_to_end: a smoke run on a tiny stream against the session broker (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Broker set-up, a PostgreSQL of the bench's own (initdb) and three group joins: generous on a busy machine.
pytestmark = pytest.mark.timeout(600)

NUMBER = r"[\d,]+"
DECIMAL = r"\d+\.\d+"


def test_end_to_end_tiny(kafka_bootstrap: str) -> None:
    args = [
        "--events",
        "2000",
        "--customers",
        "200",
        "--bootstrap",
        kafka_bootstrap,
        "--stores",
        "sqlite,postgres,memory",
    ]
    args += ["--runs", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.end_to_end", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert re.search(rf"^produce: {NUMBER} events to 6 partitions", out, re.M), out
    assert re.search(rf"^bare kafka-python consumer +{NUMBER} +{DECIMAL} +{DECIMAL} +{NUMBER} +-$", out, re.M), out
    assert re.search(
        rf"^end to end, SQLite +{NUMBER} +{DECIMAL} +{DECIMAL} +{NUMBER} +{DECIMAL}  target >= 0\.40  (PASS|FAIL)$",
        out,
        re.M,
    ), out
    assert re.search(
        rf"^end to end, memory store +{NUMBER} +{DECIMAL} +{DECIMAL} +{NUMBER} +{DECIMAL}  \(not durable: no target\)$",
        out,
        re.M,
    ), out
    # PostgreSQL is measured when the bench can start a server here, else the row says why not.
    assert re.search(
        rf"^end to end, PostgreSQL +({NUMBER} +{DECIMAL} +{DECIMAL} +{NUMBER} +{DECIMAL}  target >= 0\.40  "
        r"(PASS|FAIL)|skipped: .+)$",
        out,
        re.M,
    ), out
