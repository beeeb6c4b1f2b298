"""What every server-rendered page shares (the task page in page.py, the case and power players pages in
case_page.py, the review in reports.py, explain in explain.py): the templates, sign-in and its cookie, the CSRF
check of a posted form, and rendering with the session's CSRF token.

The token comes from the sign-in form, or from `/?token=...` when `http_token_in_url` allows that demo link; it is
kept in an HttpOnly, SameSite=Strict cookie (`Secure` with `http_cookie_secure`). Every form of a signed-in page
carries the session's CSRF token (`auth.csrf_token`); a form posted without it is refused with 403.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from recovery.api.auth import COOKIE, Caller, csrf_token, csrf_valid, identify
from recovery.api.context import ApiContext
from recovery.api.errors import ApiError
from recovery.api.models import CompleteBody
from recovery.config import Settings

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
OUTCOMES = ("saved", "lost", "unreachable", "not-needed")
COOKIE_MAX_AGE_S = 12 * 3600
LINKS_OFF = "Sign-in links (/?token=...) are a demo's convenience, off here (setting http_token_in_url): sign in below."
NO_CSRF = (
    "Refused: the form carried no valid CSRF token (a form from before a restart of the service or another sign-in, "
    "or one this site did not make). The forms on this page carry a fresh one: try again."
)


def complete_body(form: dict[str, str]) -> CompleteBody:
    try:
        return CompleteBody(outcome=form["outcome"], reason_code=form["reason_code"].strip(), note=form["note"])  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]).replace("_", " ")
        raise ApiError(422, f"{field}: {first['msg']}") from None


def login(request: Request, error: str | None = None, status: int = 200) -> Response:
    """The sign-in page."""
    return TEMPLATES.TemplateResponse(request, "login.html", {"error": error, "caller": None}, status_code=status)


def signed_in(settings: Settings, location: str, token: str) -> Response:
    """On to `location`, the token kept in the page's cookie."""
    response = RedirectResponse(location, status_code=303)
    secure = settings.http_cookie_secure
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=COOKIE_MAX_AGE_S)
    return response


def sign_in_link(settings: Settings, request: Request, token: str) -> Response:
    """A sign-in link (`PAGE?token=...&...`), when `http_token_in_url` allows that demo convenience: on to the same
    page and query without the token, signed in."""
    if not settings.http_token_in_url:
        return login(request, LINKS_OFF, 403)
    if identify(settings, token) is None:
        return login(request, "That token is not valid.", 401)
    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    return signed_in(settings, f"{request.url.path}?{rest}" if rest else request.url.path, token)


def sign_in_again(request: Request) -> Response:
    """The answer to a form posted without a valid cookie (`auth.Gate`)."""
    return login(request, "Sign in again.", 401)


class Pages:
    """What every page route needs: who the caller is (the cookie), the session's CSRF token, rendering."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def caller_of(self, request: Request) -> Caller | None:
        return identify(self.ctx.settings, request.cookies.get(COOKIE))

    def csrf_of(self, request: Request) -> str:
        token = request.cookies.get(COOKIE)
        return csrf_token(self.ctx.csrf_secret, token) if token else ""

    def forged(self, request: Request, csrf: str) -> bool:
        """A form posted without the CSRF token of its session (the cookie, checked by `auth.Gate`)."""
        return not csrf_valid(self.ctx.csrf_secret, request.cookies.get(COOKIE, ""), csrf)

    def render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        context = {**context, "csrf": self.csrf_of(request)}
        return TEMPLATES.TemplateResponse(request, name, context, status_code=status)

    def error(self, request: Request, caller: Caller | None, detail: str, status: int) -> HTMLResponse:
        return self.render(request, "error.html", {"caller": caller, "error": detail}, status)
