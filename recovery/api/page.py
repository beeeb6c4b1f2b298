"""The frontline task page at `/`: server-rendered HTML (Jinja2) with plain forms, no JavaScript. The queue of cases
(priority, then the customer's value, then due time) with overdue ones marked, a task's detail (reason, evidence
timeline, talking points, gestures, audit), claim, release and complete with an outcome. A case's page and the
power players at risk are in case_page.py; sign-in, the cookie, CSRF and rendering, which all pages share, in
html.py.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from recovery.api import actions
from recovery.api.auth import COOKIE, SIGN_IN, Caller, identify
from recovery.api.errors import ApiError
from recovery.api.html import NO_CSRF, OUTCOMES, Pages, complete_body, login, sign_in_again, sign_in_link, signed_in
from recovery.api.models import CaseOut
from recovery.store.records import CaseQuery

QUEUE_PAGE = 200
REFRESH_S = 15


def router(pages: Pages) -> APIRouter:
    page = APIRouter(include_in_schema=False)
    ctx = pages.ctx
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

    return page
