"""A short run of the fault suite (`make faults` runs it whole): its harness works, and the promises hold on a small
stream with kills, hostile messages, a message the broker refuses for good and, as root (it mounts a tmpfs), a full
disk under the SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.timeout(900)
def test_a_short_fault_suite_passes(kafka_libs: Path) -> None:
    rows = ["sigkill", "hostile", "refused"] + (["disk"] if os.geteuid() == 0 else [])
    done = subprocess.run(
        [sys.executable, "-m", "faults", "--events", "3000", "--only", ",".join(rows), "--kills", "3",
         "--hostile", "300", "--outage-s", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if "PASS" in line or "FAIL" in line]
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(lines) == len(rows) and all(" PASS" in line for line in lines), done.stdout
    assert f"{len(rows)} of {len(rows)} scenarios passed" in done.stdout
