"""promtool for the tests that check metrics and alerting rules: found on PATH, or installed once per session by
deploy/prometheus/install.sh (the Debian package `prometheus`). A failed install fails the test with the reason."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "deploy" / "prometheus" / "install.sh"


@functools.cache
def _install() -> tuple[str | None, str]:
    proc = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=900, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None, f"{INSTALL} exited with {proc.returncode}:\n{proc.stderr}{proc.stdout}"
    return lines[-1], ""


def promtool_path() -> str:
    """The path of promtool, installing it when missing (once per test session); fails the test if it cannot."""
    path, problem = _install()
    if path is None:
        pytest.fail(f"promtool is not available and could not be installed: {problem}", pytrace=False)
    return path


def run_promtool(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; the result carries its exit code and output (stdout and stderr as text)."""
    return subprocess.run(
        [promtool_path(), *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )
