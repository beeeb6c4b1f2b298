"""`recovery serve` end to end: live tasks on the API and the task page, claim and complete over HTTP, and the
`task.completed` event back on ops.events (through the outbox); the escalation clock in the running loop; an
approved gesture published again on the gestures topic."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from recovery.api.auth import hash_token
from recovery.times import format_time
from tests.conftest import T0, wait_for
from tests.consumer.test_serve import Serve, Topics, collect, produce_events, serve_factory, topics  # noqa: F401

pytestmark = pytest.mark.timeout(300)
TOKEN = "serve-test-token"  # noqa: S105 (a test token)


def call(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_claim_complete_and_approve_on_a_running_service(
    serve_factory: Callable[..., Serve],  # noqa: F811
    topics: Topics,  # noqa: F811
    kafka_bootstrap: str,
) -> None:
    tokens = json.dumps([{"name": "ann", "role": "admin", "token_sha256": hash_token(TOKEN)}])
    serve = serve_factory(api_tokens=tokens, escalation_every_s="0.5")
    port = int(serve.env["RECOVERY_HTTP_PORT"])
    # A cancellation long ago: its task is overdue at once, so the running loop escalates it.
    events = [
        {"id": "p1", "type": "customer.updated", "occurred_at": format_time(T0), "customer_id": "C9",
         "data": {"tier": "gold", "region": "north", "annual_value": 6000}},
        {"id": "x1", "type": "cancellation.requested", "occurred_at": format_time(T0 + 60), "customer_id": "C9",
         "data": {}},
    ]  # fmt: skip
    produce_events(kafka_bootstrap, topics.events, events)
    page = wait_for(lambda: call(port, "GET", "/api/tasks?customer_id=C9")[1]["items"], 90, "the task on the API")
    task = page[0]
    escalated = wait_for(
        lambda: call(port, "GET", f"/api/tasks/{task['id']}")[1]["task"]["escalated_at"], 30, "the escalation"
    )
    assert escalated
    detail = call(port, "GET", f"/api/tasks/{task['id']}")[1]["task"]
    assert (detail["status"], detail["priority"]) == ("escalated", "P1")
    cookie = {"Cookie": f"recovery_token={TOKEN}"}
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", headers=cookie)) as page_:
        assert task["title"] in page_.read().decode()  # the task page shows the live task
    assert call(port, "POST", f"/api/tasks/{task['id']}/claim")[0] == 200
    status, done = call(port, "POST", f"/api/tasks/{task['id']}/complete", {"outcome": "lost", "reason_code": "price"})
    assert (status, done["status"]) == (200, "done")
    records = collect(
        kafka_bootstrap,
        [topics.events],
        until=lambda rs: any(json.loads(r.value).get("type") == "task.completed" for r in rs),
    )
    completed = [json.loads(r.value) for r in records if json.loads(r.value).get("type") == "task.completed"]
    assert len(completed) == 1
    assert completed[0]["customer_id"] == "C9"
    assert completed[0]["data"]["outcome"] == "lost" and completed[0]["data"]["task_id"] == task["id"]
    # The retention offer waits for approval; approving it publishes it again, same id, with its new status.
    [offer] = call(port, "GET", "/api/gestures?customer_id=C9&status=proposed")[1]
    status, approved = call(port, "POST", f"/api/gestures/{offer['id']}/approve", {"note": "worth keeping"})
    assert (status, approved["status"]) == (200, "approved")

    def statuses(records: list[Any]) -> list[str]:
        return [json.loads(r.value)["status"] for r in records if json.loads(r.value)["id"] == offer["id"]]

    records = collect(kafka_bootstrap, [topics.gestures], until=lambda rs: "approved" in statuses(rs))
    assert statuses(records) == ["proposed", "approved"]
    published = {json.loads(r.value)["status"]: json.loads(r.value) for r in records}
    assert published["approved"] == {**published["proposed"], "status": "approved"}
    assert {r.key for r in records if json.loads(r.value)["id"] == offer["id"]} == {b"C9"}
    assert serve.stop() == 0
