"""The service's HTTP side: health, readiness, metrics scraped by a real Prometheus server, and the limit on request
bodies."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from recovery.config import Settings
from recovery.health import Health
from recovery.http import BodyLimit, create_app
from recovery.metrics import Metrics
from recovery.times import format_time
from tests.conftest import free_ports, wait_for
from tests.consumer.test_serve import Serve, Topics, collect, produce, produce_events, serve_factory, topics  # noqa: F401
from tests.promtool import promtool_path, run_promtool

pytestmark = pytest.mark.timeout(300)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a local test URL)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class TestEndpoints:
    def app(self, health: Health) -> TestClient:
        registry = CollectorRegistry()
        Metrics(registry, playbooks=["p"])
        return TestClient(create_app(Settings(), registry, health))

    def test_healthz_answers_while_nothing_is_ready(self) -> None:
        client = self.app(Health())
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert set(ready.json()["problems"]) == {"broker", "playbooks"}

    def test_readyz_names_what_is_down(self) -> None:
        health = Health(broker=None, playbooks=None)
        client = self.app(health)
        assert client.get("/readyz").status_code == 200
        health.set(store="SQLite store 'x.db': disk I/O error")
        body = client.get("/readyz").json()
        assert body == {"status": "not ready", "problems": {"store": "SQLite store 'x.db': disk I/O error"}}

    def test_metrics_are_prometheus_text(self) -> None:
        response = self.app(Health()).get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        assert b'recovery_build_info{version="' in response.content


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    """Starts Debian's Prometheus (installed with promtool) scraping 127.0.0.1:PORT every second; returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> str:
        binary = str(Path(promtool_path()).with_name("prometheus"))
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: recovery\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        port = free_ports(1)[0]
        with (tmp_path / "prometheus.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(f"{url}/-/ready")[0] == 200, 60, "Prometheus to be ready")
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def query(prometheus_url: str, promql: str) -> float | None:
    status, body = get(f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    result = json.loads(body)["data"]["result"] if status == 200 else []
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_counts_of_what_the_test_produced(
    kafka_bootstrap: str,
    topics: Topics,  # noqa: F811
    serve_factory: Callable[..., Serve],  # noqa: F811
    prometheus: Callable[[int], str],
) -> None:
    now = time.time()
    cancellations = [
        {
            "id": f"cx-{n}",
            "type": "cancellation.requested",
            "occurred_at": format_time(now - 600 + n),
            "customer_id": f"C{n}",
            "data": {},
        }
        for n in range(7)
    ]
    calls = [
        {
            "id": f"call-{n}",
            "type": "service.call",
            "occurred_at": format_time(now - 300 + n),
            "customer_id": "C-calls",
            "data": {"reason": "billing"},
        }
        for n in range(3)
    ]
    produce_events(kafka_bootstrap, topics.events, [*cancellations, *calls])
    produce(kafka_bootstrap, topics.events, [("C0", b"not json")])
    serve = serve_factory()
    port = int(serve.env["RECOVERY_HTTP_PORT"])
    wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "the service's /healthz")
    collect(kafka_bootstrap, [topics.tasks], until=lambda r: len(r) >= 8)
    wait_for(lambda: get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 30, "the service to be ready")

    url = prometheus(port)
    processed = 'sum(recovery_events_consumed_total{result="processed"})'
    wait_for(lambda: query(url, processed) == 10, 60, "Prometheus to scrape 10 processed events")
    assert query(url, 'sum(recovery_events_consumed_total{result="invalid"})') == 1
    assert query(url, 'recovery_events_consumed_total{type="cancellation.requested",result="processed"}') == 7
    assert query(url, 'sum(recovery_tasks_raised_total{queue="save-desk"})') == 7
    assert query(url, 'sum(recovery_tasks_raised_total{queue="care-callback"})') == 1  # the repeat caller
    assert query(url, 'sum(recovery_dlq_messages_total{reason="invalid_json"})') == 1
    assert query(url, 'up{job="recovery"}') == 1

    status, scraped = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    checked = run_promtool("check", "metrics", stdin=scraped)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert serve.stop() == 0


def test_readyz_says_the_broker_is_down(serve_factory: Callable[..., Serve]) -> None:  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # nothing listens once the socket is closed
    serve = serve_factory(kafka_bootstrap_servers=f"127.0.0.1:{dead}")
    port = int(serve.env["RECOVERY_HTTP_PORT"])
    wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "the service's /healthz")
    status, body = get(f"http://127.0.0.1:{port}/readyz")
    assert status == 503
    assert "broker" in json.loads(body)["problems"]
    assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    assert serve.stop() == 0


class TestBodyLimit:
    """The body limit on its own, around a stub app: what the app is handed, and what the client is answered."""

    LIMIT = 1000

    def run(
        self, headers: list[tuple[bytes, bytes]], pieces: list[bytes], reads: bool = True
    ) -> tuple[list[dict[str, Any]], list[bytes]]:
        """The messages sent to the client, and the body pieces the app received, for a request with `headers`
        whose body comes in `pieces`."""
        sent: list[dict[str, Any]] = []
        seen: list[bytes] = []
        incoming = [{"type": "http.request", "body": p, "more_body": n < len(pieces) - 1} for n, p in enumerate(pieces)]

        async def receive() -> dict[str, Any]:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            more = reads
            while more:
                message = await receive()
                seen.append(message.get("body", b""))
                more = message.get("more_body", False)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
        asyncio.run(BodyLimit(app, self.LIMIT)(scope, receive, send))
        return sent, seen

    def test_a_content_length_over_the_limit_is_413_before_the_app_runs(self) -> None:
        sent, seen = self.run([(b"content-length", b"1001")], [b"x" * 1001])
        assert seen == []
        assert sent[0]["status"] == 413
        assert (b"connection", b"close") in sent[0]["headers"]
        detail = json.loads(sent[1]["body"])["detail"]
        assert detail == (
            "the request body (1001 bytes) is over the limit of 1000 bytes: "
            "setting http_max_body_bytes (RECOVERY_HTTP_MAX_BODY_BYTES)"
        )

    def test_a_body_that_streams_past_the_limit_is_413_as_soon_as_it_does(self) -> None:
        sent, seen = self.run([(b"transfer-encoding", b"chunked")], [b"x" * 600, b"x" * 600, b"x" * 600])
        assert seen == [b"x" * 600]  # the piece that passed the limit never reached the app
        assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
        assert b"over the limit of 1000 bytes" in sent[1]["body"]
        assert len(sent) == 2  # the app's own answer to its cut-off body is dropped

    def test_a_body_within_the_limit_and_an_app_that_reads_none_pass(self) -> None:
        sent, seen = self.run([(b"content-length", b"1000")], [b"x" * 500, b"x" * 500])
        assert (seen, sent[0]["status"], sent[1]["body"]) == ([b"x" * 500, b"x" * 500], 200, b"ok")
        sent, seen = self.run([(b"transfer-encoding", b"chunked")], [b"x" * 5000], reads=False)
        assert (seen, sent[0]["status"]) == ([], 200)

    def test_the_service_app_has_the_limit_of_its_settings(self) -> None:
        client = TestClient(create_app(Settings(http_max_body_bytes=10), CollectorRegistry(), Health()))
        response = client.post("/healthz", content=b"x" * 11)
        assert response.status_code == 413
        assert "over the limit of 10 bytes" in response.json()["detail"]
        assert client.get("/healthz").status_code == 200
