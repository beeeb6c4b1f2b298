"""Case endpoints on every store: the queue of cases (by priority, then customer value, then due time; a cut page
says so), a case with everything about it, claim / release / complete (one outcome, a `task.completed` per task),
the "new" mark of a task that joined a held case, racing claims; 404, 409, 422."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

from recovery.effects import Effect
from recovery.events import Event
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.store.records import Snooze
from tests.api.conftest import T0, Api, ApiFactory, token_of
from tests.conftest import free_ports, take_outbox
from tests.store.test_desk import make_gesture, make_task


def profile(api: Api, customer: str, **data: Any) -> None:
    store = api.ctx.open_store()
    store.put_profile(customer, T0, data)
    store.commit()
    store.close()


def two_customers(api: Api) -> None:
    """C1 (worth 1200): case-a of two tasks; C2 (worth 9000): case-b, as urgent but due later."""
    profile(api, "C1", tier="gold", annual_value=1200)
    profile(api, "C2", tier="platinum", annual_value=9000)
    api.put(
        make_task("a1", case_id="case-a", priority="P3", title="Call back", due_at="2026-11-02T09:30:00Z"),
        make_task(
            "a2",
            case_id="case-a",
            priority="P2",
            title="Save the account",
            evidence=["e2"],
            talking_points=["say sorry", "offer a credit"],
        ),
        make_task("b1", case_id="case-b", customer_id="C2", priority="P2", due_at="2026-11-04T10:00:00Z"),
    )


def outbox(api: Api) -> list[dict[str, Any]]:
    store = api.ctx.open_store()
    items = take_outbox(store)
    store.commit()
    store.close()
    return [json.loads(item.value) for item in items]


class TestQueue:
    def test_by_priority_then_value_then_due(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        two_customers(api)
        api.put(make_task("c1", case_id="case-c", customer_id="C3", priority="P1", due_at="2026-11-05T10:00:00Z"))
        body = api.get("/api/cases").json()
        assert [c["case_id"] for c in body["items"]] == ["case-c", "case-b", "case-a"]
        assert (body["total"], body["truncated"], body["next_offset"]) == (3, False, None)
        b, a = body["items"][1], body["items"][2]
        assert (b["annual_value"], b["tier"], b["customer_id"]) == (9000, "platinum", "C2")
        assert (a["priority"], a["queue"], a["due_at"], a["open_tasks"]) == ("P2", "q", "2026-11-02T09:30:00Z", 2)
        assert a["overdue"] is True and a["status"] == "open" and a["holders"] == []  # now is 10:00
        assert [t["id"] for t in a["tasks"]] == ["a2", "a1"]
        page = api.get("/api/cases", params={"limit": 2}).json()
        assert (len(page["items"]), page["total"], page["truncated"], page["next_offset"]) == (2, 3, True, 2)
        assert [c["case_id"] for c in api.get("/api/cases", params={"offset": 2}).json()["items"]] == ["case-a"]
        assert [c["case_id"] for c in api.get("/api/cases", params={"customer_id": "C2"}).json()["items"]] == ["case-b"]
        assert api.get("/api/cases", params={"status": "closed"}).json()["items"] == []

    @pytest.mark.parametrize(
        ("params", "field"),
        [({"status": "finished"}, "status"), ({"priority": "P9"}, "priority"), ({"limit": 0}, "limit"),
         ({"limit": 501}, "limit"), ({"offset": -1}, "offset")],
    )  # fmt: skip
    def test_bad_filters_name_the_field(self, api_factory: ApiFactory, params: dict[str, object], field: str) -> None:
        response = api_factory().get("/api/cases", params=params)
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


class TestOneCase:
    def test_detail_has_every_reason_evidence_talking_point_gesture_and_the_trail(
        self, api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
    ) -> None:
        api = api_factory()
        effects: list[Effect] = api.seed(shipped_playbooks)
        task = api.task_of(effects)
        case_id = task.case_id or task.id
        joining = make_task("joining", case_id=case_id, evidence=["C1-call", "gone"], title="Follow up",
                            reason="Called twice", talking_points=[*task.talking_points[:1], "new point"])  # fmt: skip
        api.put(joining)
        store = api.ctx.open_store()
        store.put_snooze("C1", Snooze("outage-apology", T0 + 86400, "already compensated", "olga"))
        store.put_muted(make_task("muted-1", playbook="outage-apology", title="Apologise"), "snooze", "snoozed", T0)
        # What shadow mode and a holdout keep is never shown on a case.
        store.put_muted(make_task("shadow-1", playbook="new-caller", title="Call"), "shadow", "shadow", T0)
        store.put_muted(make_task("held-1", playbook="outage-apology", title="Apologise"), "holdout", "held-out", T0)
        store.commit()
        store.close()
        detail = api.get(f"/api/cases/{case_id}").json()
        assert {t["id"] for t in detail["case"]["tasks"]} == {task.id, "joining"}
        assert {r["reason"] for r in detail["reasons"]} == {task.reason, "Called twice"}
        evidence = {e["id"]: e for e in detail["evidence"]}
        assert set(evidence) == {*task.evidence, "C1-call", "gone"}
        assert evidence["C1-call"]["type"] == "service.call"
        assert evidence["gone"]["type"] is None and evidence["gone"]["tasks"] == ["joining"]
        assert detail["talking_points"] == [*task.talking_points, "new point"]  # each once
        assert [g["id"] for g in detail["gestures"]] == [api.gesture_of(effects).id]
        assert [(m["id"], m["muted_by"], m["summary"]) for m in detail["muted"]] == [("muted-1", "snooze", "Apologise")]
        assert [(s["playbook"], s["active"]) for s in detail["snoozes"]] == [("outage-apology", True)]
        assert (detail["gestures_truncated"], detail["muted_truncated"], detail["audit_truncated"]) == (
            False,
            False,
            False,
        )
        assert detail["audit"] == []
        api.post(f"/api/cases/{case_id}/claim")
        trail = api.get(f"/api/cases/{case_id}").json()["audit"]
        assert sorted((a["action"], a["task_id"]) for a in trail) == sorted(
            [("claim", task.id), ("claim", "joining"), ("claim-case", None)]
        )
        assert all(a["details"]["case_id"] == case_id for a in trail)

    @pytest.mark.parametrize(
        ("method", "path"),
        [("get", "/api/cases/nope"), ("post", "/api/cases/nope/claim"), ("post", "/api/cases/nope/release")],
    )
    def test_unknown_ids_are_404(self, api_factory: ApiFactory, method: str, path: str) -> None:
        response = getattr(api_factory(), method)(path)
        assert response.status_code == 404 and "nope" in response.json()["detail"]

    def test_complete_an_unknown_case_is_404(self, api_factory: ApiFactory) -> None:
        body = {"outcome": "saved", "reason_code": "x"}
        assert api_factory().post("/api/cases/nope/complete", json=body).status_code == 404


class TestActions:
    def test_claim_complete_one_outcome_for_each_task(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        two_customers(api)
        claimed = api.post("/api/cases/case-a/claim")
        assert claimed.status_code == 200
        assert (claimed.json()["status"], claimed.json()["holders"]) == ("claimed", ["ann"])
        assert {t["claimed_by"] for t in claimed.json()["tasks"]} == {"ann"}
        refused = api.post("/api/cases/case-a/claim", "bob")
        assert refused.status_code == 409 and "claimed by 'ann'" in refused.json()["detail"]
        assert "yours already" in api.post("/api/cases/case-a/claim").json()["detail"]
        body = {"outcome": "saved", "reason_code": "offer-accepted", "note": "happy"}
        assert api.post("/api/cases/case-a/complete", "bob", json=body).status_code == 403
        assert api.post("/api/cases/case-b/complete", json=body).status_code == 409  # not claimed
        outbox(api)
        done = api.post("/api/cases/case-a/complete", json=body)
        assert done.status_code == 200
        case = done.json()
        assert (case["status"], case["open_tasks"], case["closed_at"]) == ("closed", 0, "2026-11-02T10:00:00Z")
        outcomes = {(t["outcome"], t["reason_code"], t["note"]) for t in case["tasks"]}
        assert outcomes == {("saved", "offer-accepted", "happy")}
        sent = sorted(outbox(api), key=lambda e: e["data"]["task_id"])
        assert [(e["type"], e["data"]["task_id"], e["data"]["outcome"], e["data"]["agent"]) for e in sent] == [
            ("task.completed", "a1", "saved", "ann"),
            ("task.completed", "a2", "saved", "ann"),
        ]
        assert "closed" in api.post("/api/cases/case-a/complete", json=body).json()["detail"]
        assert "closed" in api.post("/api/cases/case-a/claim").json()["detail"]
        store = api.ctx.open_store()
        actions = [(a.action, a.task_id) for a in store.audit(customer_id="C1")]
        store.close()
        assert actions == [("claim", "a1"), ("claim", "a2"), ("claim-case", None), ("complete", "a1"),
                           ("complete", "a2"), ("complete-case", None)]  # fmt: skip
        saved = api.registry.get_sample_value("recovery_task_outcomes_total", {"playbook": "p", "outcome": "saved"})
        assert saved == 2

    def test_release_by_holder_and_by_ops(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        two_customers(api)
        assert "not claimed" in api.post("/api/cases/case-a/release").json()["detail"]
        api.post("/api/cases/case-a/claim")
        refused = api.post("/api/cases/case-a/release", "bob")
        assert refused.status_code == 403 and "held by 'ann'" in refused.json()["detail"]
        released = api.post("/api/cases/case-a/release", "olga")
        assert released.status_code == 200 and released.json()["status"] == "open"
        api.post("/api/cases/case-a/claim", "bob")
        assert api.post("/api/cases/case-a/release", "bob").json()["holders"] == []
        store = api.ctx.open_store()
        trail = [(a.actor, a.action, a.details.get("held_by")) for a in store.audit(customer_id="C1")]
        store.close()
        assert ("olga", "release-case", ["ann"]) in trail and ("bob", "release-case", ["bob"]) in trail

    def test_a_task_joining_a_held_case_is_new_to_its_agent_until_seen(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        two_customers(api)
        api.post("/api/cases/case-a/claim")
        api.put(make_task("a3", case_id="case-a", priority="P1", title="Cancellation requested"))
        listed = api.get("/api/cases", params={"claimed_by": "ann"}).json()["items"]
        assert [(c["case_id"], c["priority"], c["new"]) for c in listed] == [("case-a", "P1", ["a3"])]
        body = {"outcome": "saved", "reason_code": "offer-accepted"}
        done = api.post("/api/cases/case-a/complete", json=body).json()
        # What the agent had seen is done; the new task stays theirs, still new until they open the case.
        assert (done["status"], done["new"], done["open_tasks"]) == ("claimed", ["a3"], 1)
        assert api.post("/api/cases/case-a/complete", json=body).status_code == 409
        assert api.get("/api/cases/case-a", "bob").json()["case"]["new"] == ["a3"]  # bob's look clears nothing
        assert api.get("/api/cases/case-a").json()["case"]["new"] == ["a3"]  # ann's shows it, once
        assert api.get("/api/cases/case-a").json()["case"]["new"] == []
        assert api.post("/api/cases/case-a/complete", json=body).json()["status"] == "closed"

    def test_completing_only_unseen_tasks_is_409_until_the_case_is_opened(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        two_customers(api)
        api.post("/api/cases/case-b/claim", "bob")
        api.put(make_task("b2", case_id="case-b", customer_id="C2"))
        body = {"outcome": "lost", "reason_code": "price"}
        assert api.post("/api/tasks/b1/complete", "bob", json=body).status_code == 200  # by the task route
        refused = api.post("/api/cases/case-b/complete", "bob", json=body)
        assert refused.status_code == 409
        assert "b2 joined it since you last opened it" in refused.json()["detail"]
        assert api.get("/api/cases/case-b", "bob").json()["case"]["new"] == ["b2"]
        assert api.post("/api/cases/case-b/complete", "bob", json=body).json()["status"] == "closed"

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"outcome": "won", "reason_code": "x"}, "outcome"), ({"outcome": "saved", "reason_code": "Bad Code"},
         "reason_code"), ({"outcome": "saved"}, "reason_code"), ({"outcome": "saved", "reason_code": "x", "extra": 1},
         "extra")],
    )  # fmt: skip
    def test_invalid_bodies_name_the_field(self, api_factory: ApiFactory, body: dict[str, Any], field: str) -> None:
        api = api_factory()
        two_customers(api)
        api.post("/api/cases/case-a/claim")
        response = api.post("/api/cases/case-a/complete", json=body)
        assert response.status_code == 422
        assert [e["loc"][-1] for e in response.json()["detail"]] == [field]


def test_parallel_case_claims_over_http_exactly_one_wins(api_factory: ApiFactory) -> None:
    """Eight agents claim one case of three tasks at the same moment through a real server."""
    api = api_factory()
    api.put(*(make_task(f"t{n}", case_id="case-1") for n in range(3)), make_gesture("g1"))
    port = free_ports(1)[0]
    from recovery.http import HttpServer

    server = HttpServer(api.client.app, port, host="127.0.0.1")  # type: ignore[arg-type]
    server.start()
    names = ["ann", "bob", "olga", "ada"] * 2
    barrier = threading.Barrier(len(names))
    statuses: list[tuple[str, int]] = []

    def claim(name: str) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/cases/case-1/claim",
            method="POST",
            headers={"Authorization": f"Bearer {token_of(name)}"},
        )
        barrier.wait(timeout=30)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                statuses.append((json.load(response)["holders"][0], response.status))
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
    assert sorted(code for _, code in statuses) == [200] + [409] * (len(names) - 1)
    winner = next(name for name, code in statuses if code == 200)
    store = api.ctx.open_store()
    case = store.get_case("case-1")
    claims = [a.actor for a in store.audit(customer_id="C1") if a.action == "claim-case"]
    store.close()
    assert case is not None and case.holders == (winner,) and len(case.active) == 3
    assert claims == [winner]


class TestSnoozes:
    def test_ops_snooze_a_playbook_for_a_customer_through_ops_events(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        playbook = api.ctx.catalog.playbooks[0].id
        outbox(api)
        body = {"playbook": playbook, "until": "2026-11-09T10:00:00+01:00", "reason": "already compensated"}
        accepted = api.post("/api/customers/C1/snoozes", "olga", json=body)
        assert accepted.status_code == 202
        answer = accepted.json()
        assert (answer["playbook"], answer["until"], answer["by"]) == (playbook, "2026-11-09T09:00:00Z", "olga")
        [event] = outbox(api)
        assert Event.from_dict(event).type == "playbook.snoozed"
        assert (event["id"], event["customer_id"]) == (answer["event_id"], "C1")
        assert event["occurred_at"] == "2026-11-02T10:00:00Z"
        data = {"playbook": playbook, "until": "2026-11-09T09:00:00Z", "reason": "already compensated", "by": "olga"}
        assert event["data"] == data
        store = api.ctx.open_store()
        [entry] = store.audit(customer_id="C1")
        store.close()
        assert (entry.actor, entry.action, entry.details["event_id"]) == ("olga", "snooze", answer["event_id"])
        assert api.post("/api/customers/C1/snoozes", "ann", json=body).status_code == 403

    @pytest.mark.parametrize(
        ("change", "field"),
        [({"playbook": "no-such-playbook"}, "playbook"), ({"until": "2026-11-02T09:59:59Z"}, "until"),
         ({"until": "2026-11-09T10:00:00"}, "until"), ({"reason": ""}, "reason"), ({"extra": 1}, "extra")],
    )  # fmt: skip
    def test_a_bad_snooze_is_422_naming_the_field(
        self, api_factory: ApiFactory, change: dict[str, Any], field: str
    ) -> None:
        api = api_factory()
        body = {"playbook": api.ctx.catalog.playbooks[0].id, "until": "2026-11-09T10:00:00Z", "reason": "r", **change}
        response = api.post("/api/customers/C1/snoozes", "olga", json=body)
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail.startswith(f"{field}: ") if isinstance(detail, str) else detail[0]["loc"][-1] == field
        assert outbox(api) == []

    def test_a_customers_snoozes(self, api_factory: ApiFactory) -> None:
        api = api_factory()
        store = api.ctx.open_store()
        store.put_snooze("C1", Snooze("b-playbook", T0 + 86400, "asked to", "olga"))
        store.put_snooze("C1", Snooze("a-playbook", T0, "over", "olga"))
        store.commit()
        store.close()
        body = api.get("/api/customers/C1/snoozes").json()
        assert [(s["playbook"], s["until"], s["active"]) for s in body["snoozes"]] == [
            ("a-playbook", "2026-11-02T09:00:00Z", False),
            ("b-playbook", "2026-11-03T09:00:00Z", True),
        ]
        assert api.get("/api/customers/C9/snoozes").json()["snoozes"] == []
