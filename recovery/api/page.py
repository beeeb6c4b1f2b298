"""The frontline task page at `/`: server-rendered HTML (Jinja2) with plain forms, no JavaScript. The queue of cases
(priority, then the customer's value, then due time) with overdue ones marked, a task's detail (reason, evidence
timeline, talking points, gestures, audit), claim, release and complete with an outcome; a case's page and the
power players at risk are in case_page.py.

The token comes from the sign-in form, or from `/?token=...` when `http_token_in_url` allows that demo link; it is
kept in an HttpOnly, SameSite=Strict cookie (`Secure` with `http_cookie_secure`). Every form of a signed-in page
carries the session's CSRF token (`auth.csrf_token`); a form posted without it is refused with 403.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from recovery.api import actions
from recovery.api.auth import COOKIE, SIGN_IN, Caller, csrf_token, csrf_valid, identify
from recovery.api.context import ApiContext
from recovery.api.errors import ApiError
from recovery.api.models import CaseOut, CompleteBody
from recovery.config import Settings
from recovery.store.records import CaseQuery

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
OUTCOMES = ("saved", "lost", "unreachable", "not-needed")
QUEUE_PAGE = 200
REFRESH_S = 15
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


def router(ctx: ApiContext) -> APIRouter:
    from recovery.api import case_page

    page = APIRouter(include_in_schema=False)
    pages = Pages(ctx)
    caller_of, forged, render = pages.caller_of, pages.forged, pages.render

    @page.get("/", response_class=HTMLResponse)
    def queue(
        request: Request, token: str | None = None, queue: str | None = None, mine: bool = False, offset: int = 0
    ) -> Response:
        if token is not None:
            return sign_in_link(ctx.settings, request, token)
        caller = caller_of(request)
        if caller is None:
            return login(request)
        now = ctx.clock()
        offset = max(offset, 0)
        query = CaseQuery(
            queue=queue or None, claimed_by=caller.name if mine else None, limit=QUEUE_PAGE, offset=offset
        )
        with ctx.session() as store:
            cases, total = store.list_cases(query)
            counts, overdue = store.task_counts(now)
        shown = [CaseOut.of(c, now) for c in cases]
        more = offset + len(shown) < total
        return render(
            request,
            "queue.html",
            {
                "caller": caller,
                "cases": shown,
                "total": total,
                "offset": offset,
                "next_offset": offset + len(shown) if more else None,
                "queues": sorted(counts),
                "counts": counts,
                "overdue": overdue,
                "queue": queue or "",
                "mine": mine,
                "refresh_s": REFRESH_S,
            },
        )

    @page.post(SIGN_IN)
    def do_login(request: Request, token: str = Form("")) -> Response:
        if identify(ctx.settings, token.strip()) is None:
            return login(request, "That token is not valid.", 401)
        return signed_in(ctx.settings, "/", token.strip())

    @page.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        if forged(request, csrf):
            return pages.error(request, caller_of(request), NO_CSRF, 403)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=ctx.settings.http_cookie_secure)
        return response

    def show(request: Request, caller: Caller, task_id: str, message: str | None, error: str | None,
             status: int = 200) -> Response:  # fmt: skip
        try:
            with ctx.session() as store:
                detail = actions.detail(ctx, store, task_id)
        except ApiError as exc:
            return pages.error(request, caller, exc.detail, exc.status)
        context = {
            "caller": caller,
            "detail": detail,
            "task": detail.task,
            "outcomes": OUTCOMES,
            "message": message,
            "error": error,
        }
        return render(request, "task.html", context, status)

    @page.get("/tasks/{task_id}", response_class=HTMLResponse)
    def task(request: Request, task_id: str, message: str | None = None) -> Response:
        caller = caller_of(request)
        if caller is None:
            return login(request)
        return show(request, caller, task_id, message, None)

    def act(request: Request, task_id: str, what: str, csrf: str, **form: str) -> Response:
        caller = caller_of(request)
        if caller is None:
            return sign_in_again(request)
        if forged(request, csrf):
            return show(request, caller, task_id, None, NO_CSRF, 403)
        try:
            with ctx.session() as store:
                if what == "claim":
                    actions.claim(ctx, store, caller, task_id)
                    message = "Claimed: the task is yours."
                elif what == "release":
                    actions.release(ctx, store, caller, task_id)
                    message = "Released: the task is back in its queue."
                else:
                    body = complete_body(form)
                    actions.complete(ctx, store, caller, task_id, body.outcome, body.reason_code, body.note)
                    message = f"Completed: {body.outcome}."
        except ApiError as exc:
            return show(request, caller, task_id, None, exc.detail, exc.status)
        return RedirectResponse(f"/tasks/{quote(task_id)}?message={quote(message)}", status_code=303)

    @page.post("/tasks/{task_id}/claim")
    def claim(request: Request, task_id: str, csrf: str = Form("")) -> Response:
        return act(request, task_id, "claim", csrf)

    @page.post("/tasks/{task_id}/release")
    def release(request: Request, task_id: str, csrf: str = Form("")) -> Response:
        return act(request, task_id, "release", csrf)

    @page.post("/tasks/{task_id}/complete")
    def complete(
        request: Request,
        task_id: str,
        outcome: str = Form(""),
        reason_code: str = Form(""),
        note: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        return act(request, task_id, "complete", csrf, outcome=outcome, reason_code=reason_code, note=note)

    page.include_router(case_page.router(pages))
    return page
