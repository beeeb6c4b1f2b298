"""Ops endpoints: playbooks with versions, validation (FILE:LINE:COL problems), reload (a failed one keeps the
running version and says why)."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import ApiFactory

VALID = """\
id: vip-callback
version: 3
trigger:
  event: service.call
actions:
  - task:
      queue: vip
      priority: P2
      due_in: 4h
      escalate_to: supervisors
      title: Call back
      reason: They called.
"""


def yaml_post(api, path: str, text: str, who: str = "olga", **params: str):  # type: ignore[no-untyped-def]
    headers = {**api.headers(who), "content-type": "application/yaml"}
    return api.client.post(path, content=text.encode(), headers=headers, params=params)


def test_list_playbooks_with_versions(api_factory: ApiFactory) -> None:
    body = api_factory().get("/api/playbooks", who="olga").json()
    ids = {pb["id"]: pb for pb in body["playbooks"]}
    assert set(ids) >= {"repeat-caller", "cancellation-save", "outage-recovery"}
    assert ids["cancellation-save"]["version"] >= 1
    assert ids["cancellation-save"]["queues"] == ["save-desk"]
    assert body["last_reload_error"] is None


def test_validate_a_good_playbook(api_factory: ApiFactory) -> None:
    body = yaml_post(api_factory(), "/api/playbooks/validate", VALID).json()
    assert body == {"valid": True, "problems": [], "id": "vip-callback", "version": 3}


def test_validate_names_file_line_and_column(api_factory: ApiFactory) -> None:
    api = api_factory()
    broken = VALID.replace("priority: P2", "priority: P7").replace("queue: vip", "queue: vip\n      colour: red")
    body = yaml_post(api, "/api/playbooks/validate", broken, file="vip.yaml").json()
    assert body["valid"] is False
    assert body["problems"][0].startswith("vip.yaml:8:7: unknown key 'colour'")
    assert body["problems"][1].startswith("vip.yaml:9:17: actions.0.task.priority:")
    not_yaml = yaml_post(api, "/api/playbooks/validate", "id: [unclosed").json()
    assert not_yaml["valid"] is False and not_yaml["problems"][0].startswith("playbook.yaml:1:")
    assert yaml_post(api, "/api/playbooks/validate", VALID, file="../etc/passwd").status_code == 422


def test_reload_applies_new_versions(api_factory: ApiFactory, rules_dir: Path) -> None:
    api = api_factory()
    (rules_dir / "vip-callback.yaml").write_text(VALID)
    response = api.post("/api/playbooks/reload", who="ada")
    assert response.status_code == 200
    assert {pb["id"]: pb["version"] for pb in response.json()["playbooks"]}["vip-callback"] == 3
    assert [pb.id for pb in api.reloaded[0]].count("vip-callback") == 1
    assert api.ctx.catalog.escalation_queue("vip-callback", "vip") == "supervisors"
    assert api.registry.get_sample_value("recovery_playbook_reloads_total", {"result": "success"}) == 1


def test_a_failed_reload_keeps_the_running_version_and_says_why(api_factory: ApiFactory, rules_dir: Path) -> None:
    api = api_factory()
    (rules_dir / "broken.yaml").write_text(VALID.replace("id: vip-callback", "id: broken").replace("4h", "4 hours"))
    response = api.post("/api/playbooks/reload", who="ada")
    assert response.status_code == 422
    body = response.json()
    assert "reload refused, the running playbooks stay" in body["detail"]
    assert any(p.startswith(f"{rules_dir / 'broken.yaml'}:") for p in body["problems"])
    assert "broken" not in {pb["id"] for pb in body["playbooks"]}
    assert api.reloaded == []
    listing = api.get("/api/playbooks", who="olga").json()
    assert listing["last_reload_error"] is not None and "broken.yaml" in listing["last_reload_error"]
    assert api.registry.get_sample_value("recovery_playbook_reloads_total", {"result": "failure"}) == 1
