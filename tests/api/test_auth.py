"""Bearer tokens and roles: 401 without a valid token, 403 for a role that may not act."""

from __future__ import annotations

import pytest

from recovery.api.auth import hash_token, identify
from tests.api.conftest import ApiFactory, api_settings, token_of

# (method, path, the least role allowed)
ENDPOINTS = [
    ("get", "/api/me", "frontline"),
    ("get", "/api/tasks", "frontline"),
    ("get", "/api/tasks/t1", "frontline"),
    ("post", "/api/tasks/t1/claim", "frontline"),
    ("post", "/api/tasks/t1/release", "frontline"),
    ("post", "/api/tasks/t1/complete", "frontline"),
    ("get", "/api/gestures", "frontline"),
    ("get", "/api/gestures/g1", "frontline"),
    ("post", "/api/gestures/g1/approve", "ops"),
    ("post", "/api/gestures/g1/reject", "ops"),
    ("get", "/api/customers/C1/timeline", "frontline"),
    ("get", "/api/playbooks", "ops"),
    ("post", "/api/playbooks/validate", "ops"),
    ("post", "/api/playbooks/reload", "admin"),
    ("get", "/api/audit", "admin"),
]
WHO = {"frontline": "ann", "ops": "olga", "admin": "ada"}
RANK = ["frontline", "ops", "admin"]


@pytest.mark.parametrize(("method", "path", "least"), ENDPOINTS)
def test_each_role_may_do_what_its_rank_allows(api_factory: ApiFactory, method: str, path: str, least: str) -> None:
    api = api_factory()
    for role, name in WHO.items():
        response = getattr(api.client, method)(path, headers=api.headers(name))
        allowed = RANK.index(role) >= RANK.index(least)
        assert (response.status_code != 403) == allowed, (role, response.status_code, response.text)
        if not allowed:
            assert f"'{name}' has role {role}; this needs {least}" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "least"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Basic YW5uOng=", f"Bearer {token_of('nobody')}"]
)
def test_no_valid_token_is_401(
    api_factory: ApiFactory, method: str, path: str, least: str, authorization: str | None
) -> None:
    api = api_factory()
    headers = {"Authorization": authorization} if authorization else {}
    response = getattr(api.client, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_tokens_are_kept_hashed() -> None:
    settings = api_settings()
    assert all(token_of(t.name) not in t.model_dump_json() for t in settings.api_tokens)
    assert settings.api_tokens[0].token_sha256 == hash_token(token_of("ann"))
    caller = identify(settings, token_of("olga"))
    assert caller is not None and (caller.name, caller.role) == ("olga", "ops")
    assert identify(settings, "") is None


def test_me(api_factory: ApiFactory) -> None:
    assert api_factory().get("/api/me", who="ada").json() == {"name": "ada", "role": "admin"}
