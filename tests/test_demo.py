"""`make demo`'s script end to end: broker, service and simulator; effects show live, the task page and the reports
are linked, signed in; Ctrl-C ends it cleanly."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import ROOT, free_ports

pytestmark = pytest.mark.timeout(300)


def test_the_demo_shows_effects_live_and_ends_cleanly_on_ctrl_c(kafka_libs: Path, tmp_path: Path) -> None:
    # Three ports taken at once: the broker's controller port is not the client port + 1, which may be any socket's.
    kafka_port, controller_port, http_port = free_ports(3)
    env = {
        **os.environ,
        "BIN": str(Path(sys.executable).parent),
        "PYTHONPATH": str(ROOT),  # this tree's package, whatever the venv's editable install points to
        "DEMO_DIR": str(tmp_path / "demo"),
        "DEMO_KAFKA_PORT": str(kafka_port),
        "DEMO_KAFKA_CONTROLLER_PORT": str(controller_port),
        "DEMO_RATE": "60",
        "DEMO_HTTP_PORT": str(http_port),
    }
    log = tmp_path / "demo.out"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [str(ROOT / "deploy" / "demo.sh")], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        # Effects live, then a summary (every 10 s): by then simulated time (600x) runs hours ahead of the wall clock.
        while time.monotonic() < deadline and "effects so far" not in log.read_text(errors="replace"):
            assert demo.poll() is None, log.read_text(errors="replace")
            time.sleep(0.5)
        # The task page's link signs in: the demo turns on the token link (off by default).
        link = re.search(r"the task page \(.*\): (http://127\.0\.0\.1:(\d+)(/\?token=(\S+)))", log.read_text())
        assert link is not None, log.read_text(errors="replace")
        # The reports (the loss review) of the simulated period on the same port, signed in the same way.
        reports = re.search(
            r"the reports \(.*\): (http://127\.0\.0\.1:(\d+)(/reports\?from=\S+&to=\S+)&token=(\S+))\n", log.read_text()
        )
        assert reports is not None, log.read_text(errors="replace")
        assert (reports[2], reports[4]) == (link[2], link[4])
        for path, then, shown in (
            (link[3], "/", "Cases to work"),
            (f"{reports[3]}&token={reports[4]}", reports[3], "Customer-loss review and metrics"),
        ):
            connection = http.client.HTTPConnection("127.0.0.1", int(link[2]), timeout=30)
            connection.request("GET", path)
            signed_in = connection.getresponse()
            signed_in.read()
            cookie = (signed_in.getheader("set-cookie") or "").split(";")[0]
            assert signed_in.status == 303 and cookie.startswith("recovery_token=")
            location = signed_in.getheader("location") or ""
            assert unquote(location) == then
            connection.request("GET", location, headers={"Cookie": cookie})
            page = connection.getresponse()
            assert page.status == 200 and shown in page.read().decode()
            connection.close()
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert demo.wait(timeout=120) == 0, log.read_text(errors="replace")
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert "\ntask    " in output
    assert "effects so far, by playbook and queue" in output
    assert "the cases: one per customer in distress" in output
    cases = re.search(r"\n(\d+) of (\d+) case\(s\) in sqlite:///", output)
    assert cases is not None and int(cases[1]) > 0, output
    assert f"Reports:       {reports[1]} (while the service runs)" in output
    # Nothing left running: the broker's pid file is gone and the service logged its clean stop.
    assert not (tmp_path / "demo" / "kafka" / "kafka.pid").exists()
    stopped = [line for line in (tmp_path / "demo" / "serve.log").read_text().splitlines() if '"stopped"' in line]
    assert len(stopped) == 1 and json.loads(stopped[0])["logger"] == "recovery.consumer"
    # Every simulated event was taken, none refused (to the DLQ) for being dated ahead of the wall clock.
    consumed = json.loads(stopped[0])["consumed"]
    assert consumed["processed"] > 0 and consumed.get("invalid", 0) == 0, consumed
