"""A short run of the fault suite (`make faults` runs it whole): its harness works, and the promises hold on a small
stream with kills, hostile messages and a message the broker refuses for good."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.timeout(900)
def test_a_short_fault_suite_passes(kafka_libs: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faults", "--events", "3000", "--only", "sigkill,hostile,refused", "--kills", "3",
         "--hostile", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )  # fmt: skip
    rows = [line for line in done.stdout.splitlines() if line.endswith("PASS") or "FAIL" in line]
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(rows) == 3 and all(row.endswith("PASS") for row in rows), done.stdout
    assert "3 of 3 scenarios passed" in done.stdout
