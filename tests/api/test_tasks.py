"""Frontline endpoints on every store: tasks, gestures (a decision is queued for the gestures topic), timelines; 404
for unknown ids, 422 naming the field."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

from recovery.events import Event
from recovery.exceptions import StoreError
from recovery.http import HttpServer
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store import Store
from recovery.store.records import OutboxItem
from tests.api.conftest import Api, ApiFactory, token_of
from tests.conftest import free_ports, take_outbox
from tests.store.test_desk import make_task


class TestList:
    def test_sorted_by_priority_then_due_filtered_and_paged(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        api.put(
            make_task("a", priority="P3", due_at="2026-11-02T08:00:00Z"),
            make_task("b", priority="P1", due_at="2026-11-02T12:00:00Z"),
            make_task("c", priority="P1", due_at="2026-11-02T11:00:00Z", queue="other"),
            make_task("d", priority="P2", customer_id="C2"),
        )
        body = api.get("/api/tasks").json()
        assert [t["id"] for t in body["items"]] == ["c", "b", "d", "a"]
        assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)
        page = api.get("/api/tasks", params={"limit": 2, "offset": 2}).json()
        assert [t["id"] for t in page["items"]] == ["d", "a"]
        assert [t["id"] for t in api.get("/api/tasks", params={"queue": "other"}).json()["items"]] == ["c"]
        assert [t["id"] for t in api.get("/api/tasks", params={"priority": "P1"}).json()["items"]] == ["c", "b"]
        assert [t["id"] for t in api.get("/api/tasks", params={"customer_id": "C2"}).json()["items"]] == ["d"]
        due = api.get("/api/tasks", params={"due_before": "2026-11-02T11:00:01Z"}).json()
        assert [t["id"] for t in due["items"]] == ["c", "d", "a"]
        assert [t["id"] for t in api.get("/api/tasks", params={"status": "done"}).json()["items"]] == []
        first, last = body["items"][0], body["items"][-1]
        assert (first["kind"], first["status"], first["overdue"]) == ("task", "open", False)
        assert last["overdue"] is True  # due 08:00, and now is 10:00

    @pytest.mark.parametrize(
        ("params", "field"),
        [({"status": "finished"}, "status"), ({"priority": "P9"}, "priority"), ({"limit": 0}, "limit"),
         ({"offset": -1}, "offset"), ({"due_before": "tomorrow"}, "due_before")],
    )  # fmt: skip
    def test_bad_filters_name_the_field(self, api_factory: ApiFactory, params: dict[str, object], field: str) -> None:
        response = api_factory().get("/api/tasks", params=params)
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


class TestOneTask:
    def test_detail_has_evidence_gestures_and_audit(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        effects = api.seed(shipped_playbooks)
        task = api.task_of(effects)
        detail = api.get(f"/api/tasks/{task.id}").json()
        assert detail["task"]["id"] == task.id
        assert detail["task"]["queue"] == "save-desk"
        assert detail["task"]["reason"] == task.reason
        assert [e["id"] for e in detail["evidence"]] == task.evidence
        assert [(e["id"], e["type"]) for e in detail["recent_events"]] == [
            ("C1-profile", "customer.updated"),  # the profile versions are kept (a late event sees its time's)
            ("C1-call", "service.call"),
        ]
        assert [g["id"] for g in detail["gestures"]] == [api.gesture_of(effects).id]
        assert detail["gestures"][0]["status"] == "proposed"
        assert detail["audit"] == []

    @pytest.mark.parametrize(
        ("method", "path"),
        [("get", "/api/tasks/nope"), ("post", "/api/tasks/nope/claim"), ("post", "/api/tasks/nope/release"),
         ("get", "/api/gestures/nope"), ("get", "/api/customers/nobody/timeline")],
    )  # fmt: skip
    def test_unknown_ids_are_404(self, api_factory: ApiFactory, method: str, path: str) -> None:
        response = getattr(api_factory(), method)(path, who="olga")
        assert response.status_code == 404
        assert "nope" in response.json()["detail"] or "nobody" in response.json()["detail"]

    def test_unknown_ids_are_404_for_complete_and_decisions(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        body = {"outcome": "saved", "reason_code": "x"}
        assert api.post("/api/tasks/nope/complete", json=body).status_code == 404
        assert api.post("/api/gestures/nope/approve", who="olga").status_code == 404
        assert api.post("/api/gestures/nope/reject", who="olga").status_code == 404


class TestClaimReleaseComplete:
    def test_the_whole_loop(self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]) -> None:
        api = api_factory()
        task = api.task_of(api.seed(shipped_playbooks))
        claimed = api.post(f"/api/tasks/{task.id}/claim", who="ann")
        assert claimed.status_code == 200
        assert (claimed.json()["status"], claimed.json()["claimed_by"]) == ("claimed", "ann")
        again = api.post(f"/api/tasks/{task.id}/claim", who="bob")
        assert again.status_code == 409
        assert "claimed by 'ann'" in again.json()["detail"]
        assert api.post(f"/api/tasks/{task.id}/release", who="bob").status_code == 403
        body = {"outcome": "saved", "reason_code": "offer-accepted", "note": "stays with us"}
        refused = api.post(f"/api/tasks/{task.id}/complete", who="bob", json=body)
        assert refused.status_code == 403
        assert "completes only a task it holds" in refused.json()["detail"]
        api.now[0] += 600
        done = api.post(f"/api/tasks/{task.id}/complete", who="ann", json=body)
        assert done.status_code == 200
        assert {k: done.json()[k] for k in ("status", "outcome", "reason_code", "note")} == {
            "status": "done",
            "outcome": "saved",
            "reason_code": "offer-accepted",
            "note": "stays with us",
        }
        assert api.post(f"/api/tasks/{task.id}/complete", who="ann", json=body).status_code == 409
        assert api.post(f"/api/tasks/{task.id}/claim", who="bob").status_code == 409
        # Every change is in the audit trail, and closing queued task.completed for ops.events.
        audit = api.get(f"/api/tasks/{task.id}").json()["audit"]
        assert [(a["actor"], a["action"]) for a in audit] == [("ann", "claim"), ("ann", "complete")]
        store = api.ctx.open_store()
        sent = [i for i in take_outbox(store, 100) if i.topic == api.ctx.settings.topic_events]
        store.commit()  # taken, as the publisher would (the memory store cannot roll a take back)
        store.close()
        assert len(sent) == 1
        event = Event.from_json(sent[0].value)
        assert (event.type, event.customer_id, event.id) == ("task.completed", "C1", f"task-completed-{task.id}")
        assert event.data["outcome"] == "saved" and event.data["task_id"] == task.id
        assert sent[0].key == "C1"
        registry = api.registry
        assert (
            registry.get_sample_value("recovery_task_outcomes_total", {"playbook": task.playbook, "outcome": "saved"})
            == 1
        )

    def test_release_by_holder_and_by_ops(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        api.put(make_task("t1"))
        assert api.post("/api/tasks/t1/release").status_code == 409  # not claimed
        api.post("/api/tasks/t1/claim", who="ann")
        released = api.post("/api/tasks/t1/release", who="ann")
        assert released.status_code == 200 and released.json()["status"] == "open"
        api.post("/api/tasks/t1/claim", who="bob")
        assert api.post("/api/tasks/t1/release", who="olga").json()["claimed_by"] is None
        assert [a["action"] for a in api.get("/api/audit", who="ada", params={"task_id": "t1"}).json()] == [
            "claim",
            "release",
            "claim",
            "release",
        ]

    def test_completing_an_unclaimed_task_is_409(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        api.put(make_task("t1"))
        response = api.post("/api/tasks/t1/complete", json={"outcome": "lost", "reason_code": "moved-away"})
        assert response.status_code == 409
        assert "claim it before" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"reason_code": "x"}, ["body", "outcome"]), ({"outcome": "won", "reason_code": "x"}, ["body", "outcome"]),
         ({"outcome": "saved"}, ["body", "reason_code"]), ({"outcome": "saved", "reason_code": "Not A Code"},
         ["body", "reason_code"]), ({"outcome": "saved", "reason_code": "x", "extra": 1}, ["body", "extra"]),
         ({"outcome": "saved", "reason_code": "x", "note": 5}, ["body", "note"])],
    )  # fmt: skip
    def test_invalid_bodies_name_the_field(
        self, api_factory: ApiFactory, body: dict[str, object], field: list[str]
    ) -> None:
        api = api_factory()
        api.put(make_task("t1"))
        api.post("/api/tasks/t1/claim")
        response = api.post("/api/tasks/t1/complete", json=body)
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [field]

    def test_a_body_that_is_not_json_is_422(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        api.put(make_task("t1"))
        headers = {**api.headers("ann"), "content-type": "application/json"}
        response = api.client.post("/api/tasks/t1/complete", content=b"outcome=saved", headers=headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][0] == "body"


class TestGestures:
    def test_approve_and_reject(self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]) -> None:
        api = api_factory()
        gesture = api.gesture_of(api.seed(shipped_playbooks))
        other = api.gesture_of(api.seed(shipped_playbooks, customer="C2"))
        proposed = api.get("/api/gestures", params={"status": "proposed"}).json()
        assert {g["id"] for g in proposed} == {gesture.id, other.id}
        assert api.post(f"/api/gestures/{gesture.id}/approve", who="ann").status_code == 403
        approved = api.post(f"/api/gestures/{gesture.id}/approve", who="olga", json={"note": "fine"})
        assert approved.status_code == 200
        assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "olga")
        assert api.post(f"/api/gestures/{gesture.id}/reject", who="olga").status_code == 409
        rejected = api.post(f"/api/gestures/{other.id}/reject", who="ada")
        assert rejected.json()["status"] == "rejected"
        assert api.get(f"/api/gestures/{other.id}").json()["decided_by"] == "ada"
        assert api.post(f"/api/gestures/{other.id}/approve", who="olga", json={"nope": 1}).status_code == 422
        value = api.registry.get_sample_value(
            "recovery_gesture_value_total", {"type": gesture.type, "currency": gesture.currency}
        )
        assert value == gesture.amount

    def test_a_decision_is_queued_for_the_gestures_topic_with_its_new_status(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        gesture = api.gesture_of(api.seed(shipped_playbooks))
        other = api.gesture_of(api.seed(shipped_playbooks, customer="C2"))
        assert published(api) == []
        assert api.post(f"/api/gestures/{gesture.id}/approve", who="olga").status_code == 200
        [approved] = published(api)
        assert approved.key == "C1"
        # The same effect, the same id and content (DESIGN.md, effects), with the new status.
        assert json.loads(approved.value) == {**json.loads(gesture.to_json()), "status": "approved"}
        assert approved.value == gesture.model_copy(update={"status": "approved"}).to_json().encode()
        # A decision refused (decided already, a role that may not decide, an unknown id) queues nothing.
        assert api.post(f"/api/gestures/{gesture.id}/reject", who="olga").status_code == 409
        assert api.post(f"/api/gestures/{other.id}/reject", who="ann").status_code == 403
        assert api.post("/api/gestures/nope/reject", who="olga").status_code == 404
        assert published(api) == []
        assert api.post(f"/api/gestures/{other.id}/reject", who="ada").status_code == 200
        [rejected] = published(api)
        assert (rejected.key, json.loads(rejected.value)) == (
            "C2",
            {**json.loads(other.to_json()), "status": "rejected"},
        )

    @pytest.mark.parametrize("api_factory", ["sqlite", "postgres"], indirect=True)
    def test_a_decision_that_is_not_committed_queues_nothing(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        gesture = api.gesture_of(api.seed(shipped_playbooks))
        opener = api.ctx.open_store
        api.ctx.open_store = lambda: CommitFails(opener())  # type: ignore[assignment,return-value]
        refused = api.post(f"/api/gestures/{gesture.id}/approve", who="olga")
        assert refused.status_code == 503 and "the disk is full" in refused.json()["detail"]
        api.ctx.open_store = opener
        assert api.get(f"/api/gestures/{gesture.id}").json()["status"] == "proposed"
        assert published(api) == []
        assert api.post(f"/api/gestures/{gesture.id}/approve", who="olga").status_code == 200
        assert [json.loads(i.value)["status"] for i in published(api)] == ["approved"]


class CommitFails:
    """A store whose commit fails: what was written in the transaction is rolled back."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def commit(self) -> None:
        self.store.rollback()
        raise StoreError("the disk is full")


def published(api: Api) -> list[OutboxItem]:
    """What is queued for the gestures topic, taken from the outbox as the publisher takes it (so the next call
    shows what was queued since)."""
    store = api.ctx.open_store()
    taken = take_outbox(store)
    store.commit()
    store.close()
    return [item for item in taken if item.topic == api.ctx.settings.topic_gestures]


class TestTimeline:
    def test_events_tasks_gestures_outcomes_and_audit_in_order(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        effects = api.seed(shipped_playbooks)
        task = api.task_of(effects)
        api.post(f"/api/tasks/{task.id}/claim")
        api.post(f"/api/tasks/{task.id}/complete", json={"outcome": "lost", "reason_code": "price"})
        timeline = api.get("/api/customers/C1/timeline").json()
        assert timeline["profile"]["tier"] == "gold"
        kinds = [item["kind"] for item in timeline["items"]]
        assert {"event", "task", "gesture", "outcome", "audit"} <= set(kinds)
        assert kinds.index("event") < kinds.index("task") < kinds.index("outcome")
        outcome = next(i for i in timeline["items"] if i["kind"] == "outcome")
        assert (outcome["summary"], outcome["details"]["reason_code"], outcome["details"]["by"]) == (
            "lost",
            "price",
            "ann",
        )
        times = [item["at"] for item in timeline["items"]]
        assert len(times) == len(kinds)


def test_parallel_claims_over_http_exactly_one_wins(api_factory: ApiFactory) -> None:
    """Eight agents claim one task at the same moment through a real server (uvicorn's thread pool)."""
    api = api_factory()
    api.put(make_task("t1"))
    port = free_ports(1)[0]
    server = HttpServer(api.client.app, port, host="127.0.0.1")  # type: ignore[arg-type]
    server.start()
    names = ["ann", "bob", "olga", "ada"] * 2
    barrier = threading.Barrier(len(names))
    statuses: list[tuple[str, int]] = []

    def claim(name: str) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/tasks/t1/claim",
            method="POST",
            headers={"Authorization": f"Bearer {token_of(name)}"},
        )
        barrier.wait(timeout=30)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                statuses.append((json.load(response)["claimed_by"], response.status))
        except urllib.error.HTTPError as exc:
            statuses.append((name, exc.code))

    try:
        threads = [threading.Thread(target=claim, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.stop()
    codes = sorted(code for _, code in statuses)
    assert codes == [200] + [409] * (len(names) - 1)
    winner = next(name for name, code in statuses if code == 200)
    store = api.ctx.open_store()
    record = store.get_task("t1")
    claims = [a for a in store.audit(task_id="t1") if a.action == "claim"]
    store.close()
    assert record is not None and record.claimed_by == winner
    assert [a.actor for a in claims] == [winner]


def test_openapi_is_published(api_factory: ApiFactory) -> None:
    spec = api_factory().client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/claim",
        "/api/tasks/{task_id}/release",
        "/api/tasks/{task_id}/complete",
        "/api/gestures/{gesture_id}/approve",
        "/api/gestures/{gesture_id}/reject",
        "/api/customers/{customer_id}/timeline",
        "/api/cases",
        "/api/cases/{case_id}",
        "/api/cases/{case_id}/claim",
        "/api/cases/{case_id}/release",
        "/api/cases/{case_id}/complete",
        "/api/customers/at-risk",
        "/api/customers/{customer_id}/snoozes",
        "/api/playbooks",
        "/api/playbooks/validate",
        "/api/playbooks/reload",
    } <= paths
    assert "/" not in paths
