"""Bearer tokens mapped to roles (settings `api_tokens`, stored as SHA-256). 401 without a valid token, 403 for a
role that may not act. Roles are ranked: `frontline` < `ops` < `admin` (a higher role may do what a lower may).

- frontline: read tasks, gestures and timelines; claim, release and complete tasks (complete only one it holds).
- ops: also approve or reject gestures, release anyone's task, list and validate playbooks.
- admin: also reload playbooks and read the whole audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recovery.api.errors import ApiError
from recovery.config import Role, Settings

RANK: dict[str, int] = {"frontline": 1, "ops": 2, "admin": 3}
COOKIE = "recovery_token"
"""The task page keeps the token in this cookie (HttpOnly, SameSite=Strict)."""

bearer = HTTPBearer(auto_error=False, description="A token from the settings' api_tokens")


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


def hash_token(token: str) -> str:
    """The SHA-256 (hex) of a token, as `api_tokens` keeps it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def identify(settings: Settings, token: str | None) -> Caller | None:
    """The caller a token belongs to, or None."""
    if not token:
        return None
    digest = hash_token(token)
    for entry in settings.api_tokens:
        if hmac.compare_digest(entry.token_sha256, digest):
            return Caller(entry.name, entry.role)
    return None


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, detail, headers={"WWW-Authenticate": "Bearer"})


def requires(settings: Settings, role: Role) -> Callable[..., Caller]:
    """A dependency: the caller, if its token is valid (401) and its role may act as `role` (403)."""

    def dependency(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
        token = credentials.credentials if credentials is not None else None
        if not token:
            raise unauthorized("no bearer token: send Authorization: Bearer TOKEN")
        caller = identify(settings, token)
        if caller is None:
            raise unauthorized("the bearer token is not one of the configured api_tokens")
        if not caller.may(role):
            raise ApiError(403, f"'{caller.name}' has role {caller.role}; this needs {role} or above")
        return caller

    return dependency
