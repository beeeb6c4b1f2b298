"""`GET /api/customers/{id}/explain` (ops and admin; frontline 403; a bad `at` 422) and its page, linked from the case
page for ops: the customer seeded through the engine (a cancellation: a save-desk task and a retention offer)."""

from __future__ import annotations

import pytest

from recovery.playbooks.compiler import CompiledPlaybook
from recovery.times import format_time
from tests.api.conftest import T0, ApiFactory
from tests.api.test_page import sign_in


def test_the_json_for_ops_and_admin(api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]) -> None:
    api = api_factory()
    effects = api.seed(shipped_playbooks)
    for who in ("olga", "ada"):
        answer = api.get("/api/customers/C1/explain", who=who)
        assert answer.status_code == 200
    found = answer.json()
    assert (found["customer_id"], found["at"], found["source"]) == ("C1", format_time(api.now[0]), "store")
    assert found["profile"] == {"tier": "gold", "region": "north", "annual_value": 6000}
    first = found["playbooks"][0]
    assert (first["id"], first["verdict"]) == ("cancellation-save", "raised")
    assert first["trigger"]["event"]["id"] == "C1-cancel"  # from its effects' evidence: the store keeps no request
    assert [v["value"] for v in first["lets"]] == [0, 1, 0]  # outages, calls, complaints
    assert sorted(e["id"] for e in first["effects"]) == sorted(e.id for e in effects)
    assert all(e["at_trigger"] for e in first["effects"])
    assert found["open_case"]["open_tasks"][0]["playbook"] == "cancellation-save"


def test_roles_an_unknown_customer_and_a_bad_at(api_factory: ApiFactory) -> None:
    api = api_factory()
    assert api.get("/api/customers/C1/explain").status_code == 403  # ann is frontline
    assert api.client.get("/api/customers/C1/explain").status_code == 401
    unknown = api.get("/api/customers/C-404/explain", who="olga")
    assert unknown.status_code == 200
    assert {p["verdict"] for p in unknown.json()["playbooks"]} == {"not triggered"}
    assert unknown.json()["profile"] is None
    bad = api.get("/api/customers/C1/explain", who="olga", params={"at": "yesterday"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("at: ")


def test_at_explains_as_of_an_instant(api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]) -> None:
    api = api_factory()
    api.seed(shipped_playbooks)
    found = api.get("/api/customers/C1/explain", who="olga", params={"at": format_time(T0 + 90)}).json()
    assert found["at"] == format_time(T0 + 90)
    assert next(p for p in found["playbooks"] if p["id"] == "cancellation-save")["verdict"] == "not triggered"


@pytest.mark.parametrize("api_factory", ["sqlite"], indirect=True)
def test_the_page_for_ops_linked_from_the_case(
    api_factory: ApiFactory, shipped_playbooks: list[CompiledPlaybook]
) -> None:
    api = api_factory()
    task = api.task_of(api.seed(shipped_playbooks))
    assert "Access token" in api.client.get("/customers/C1/explain").text  # not signed in: the sign-in page
    sign_in(api, "ann")
    assert 'id="explain"' not in api.client.get(f"/cases/{task.case_id}").text
    refused = api.client.get("/customers/C1/explain")
    assert refused.status_code == 403 and "explain is for ops and admin" in refused.text
    sign_in(api, "olga")
    case_page = api.client.get(f"/cases/{task.case_id}").text
    assert 'id="explain" href="/customers/C1/explain"' in case_page
    page = api.client.get("/customers/C1/explain")
    assert page.status_code == 200
    assert 'data-playbook="cancellation-save" data-verdict="raised"' in page.text
    assert f'href="/tasks/{task.id}"' in page.text and f'href="/cases/{task.case_id}"' in page.text
    assert 'data-playbook="repeat-caller" data-verdict="not matched"' in page.text
    assert "<code>calls &gt;= 3</code>" in page.text
    assert api.client.get("/customers/C1/explain", params={"at": "soon"}).status_code == 422
