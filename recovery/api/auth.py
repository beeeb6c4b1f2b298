"""Bearer tokens mapped to roles (settings `api_tokens`, stored as SHA-256). 401 without a valid token, 403 for a
role that may not act. Roles are ranked: `frontline` < `ops` < `admin` (a higher role may do what a lower may).

- frontline: read tasks, gestures and timelines; claim, release and complete tasks (complete only one it holds).
- ops: also approve or reject gestures, release anyone's task, list and validate playbooks.
- admin: also reload playbooks and read the whole audit trail.

`Gate` checks the credential before anything reads a request body: an unknown caller never makes the service hold
one (the role is checked after, by each route's dependency).

The task page keeps the token in a cookie, which a browser sends with any form posted to this site: the page's
forms also carry a CSRF token (`csrf_token`, a synchronizer token: an HMAC of the session's token under a secret of
the process), and a form posted without it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from recovery.api.errors import ApiError
from recovery.config import Role, Settings

RANK: dict[str, int] = {"frontline": 1, "ops": 2, "admin": 3}
COOKIE = "recovery_token"
"""The task page keeps the token in this cookie (HttpOnly, SameSite=Strict)."""
SIGN_IN = "/login"
"""The task page's sign-in form: the one POST outside `/api/` that needs no credential."""

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


def authenticate(settings: Settings, token: str | None) -> Caller:
    """The caller of a bearer token; `ApiError` 401 without one, or for one not configured."""
    if not token:
        raise unauthorized("no bearer token: send Authorization: Bearer TOKEN")
    caller = identify(settings, token)
    if caller is None:
        raise unauthorized("the bearer token is not one of the configured api_tokens")
    return caller


def requires(settings: Settings, role: Role) -> Callable[..., Caller]:
    """A dependency: the caller, if its token is valid (401) and its role may act as `role` (403)."""

    def dependency(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
        caller = authenticate(settings, credentials.credentials if credentials is not None else None)
        if not caller.may(role):
            raise ApiError(403, f"'{caller.name}' has role {caller.role}; this needs {role} or above")
        return caller

    return dependency


def csrf_token(secret: bytes, token: str) -> str:
    """The CSRF token of the task page's forms for a session (the cookie's `token`): an HMAC-SHA256 of it under
    `secret`. Another site can neither read the page nor compute it; it changes with the session and the secret."""
    return hmac.new(secret, b"recovery-csrf\x00" + token.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, token: str, given: str) -> bool:
    """Whether `given` (a posted form's) is the CSRF token of the session `token`, compared in constant time."""
    return hmac.compare_digest(csrf_token(secret, token).encode(), given.encode("utf-8", "replace"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, read as the API's `bearer` dependency reads it."""
    scheme, token = get_authorization_scheme_param(authorization)
    return token if scheme.lower() == "bearer" and token else None


class Gate:
    """Pure ASGI middleware: the caller's credential is checked before anything reads the request body.

    Every path under `/api/` needs a configured bearer token, else 401 with the JSON `detail` the routes' own
    dependency gives; every other POST (the task page's forms) but the sign-in form needs the page's cookie holding
    one, else `page_refusal` (the sign-in page, 401). A refused request's body is never read, and when it announced
    one the connection is closed after the answer."""

    def __init__(self, app: ASGIApp, settings: Settings, page_refusal: Callable[[Request], Response]) -> None:
        self.app = app
        self.settings = settings
        self.page_refusal = page_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # its headers and cookies only: nothing here reads the body
        refusal = self.refusal(request)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers:
            refusal.headers["connection"] = "close"
        await refusal(scope, receive, send)

    def refusal(self, request: Request) -> Response | None:
        """The answer to a request without the credential its path needs; None when it has it, or needs none."""
        path = request.scope["path"]
        if path == "/api" or path.startswith("/api/"):
            try:
                authenticate(self.settings, bearer_token(request.headers.get("authorization")))
            except ApiError as exc:
                return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)
            return None
        if request.method != "POST" or path == SIGN_IN:
            return None
        return self.page_refusal(request) if identify(self.settings, request.cookies.get(COOKIE)) is None else None
