"""The case page and the power players page: server-rendered, plain forms, no JavaScript (see page.py; what every
page shares is in html.py).

A case's page shows every reason, all evidence and talking points together, its tasks side by side (each with its
own playbook, queue, priority, due time, escalation, holder and outcome), gestures, the customer's muted effects and
snoozes, the audit trail, and for ops a link to why the customer got these tasks (`explain.py`); an agent claims,
releases or completes the case there, and ops snooze a playbook for the customer. Every form carries the session's
CSRF token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from recovery.api import case_actions, risk
from recovery.api.auth import Caller
from recovery.api.cases import snooze_playbook
from recovery.api.errors import ApiError
from recovery.api.html import NO_CSRF, OUTCOMES, Pages, complete_body, login, sign_in_again
from recovery.api.models import SnoozeBody
from recovery.store.base import Store

SNOOZE_DAYS = (1, 3, 7, 14, 30)
"""What the snooze form offers, in days from now."""
AT_RISK_PAGE = 100


def router(pages: Pages) -> APIRouter:
    page = APIRouter(include_in_schema=False)
    ctx = pages.ctx

    def show(
        request: Request, caller: Caller, case_id: str, message: str | None, error: str | None, status: int = 200
    ) -> Response:
        try:
            with ctx.session() as store:
                detail = case_actions.detail(ctx, store, caller, case_id)
        except ApiError as exc:
            return pages.error(request, caller, exc.detail, exc.status)
        case = detail.case
        others = [h for h in case.holders if h != caller.name]
        context = {
            "caller": caller,
            "detail": detail,
            "case": case,
            "mine": caller.name in case.holders,
            "claimable": not others and any(t.status in ("open", "escalated") for t in case.tasks),
            "outcomes": OUTCOMES,
            "playbooks": sorted(pb.id for pb in ctx.catalog.playbooks),
            "snooze_days": SNOOZE_DAYS,
            "message": message,
            "error": error,
        }
        return pages.render(request, "case.html", context, status)

    @page.get("/cases/{case_id}", response_class=HTMLResponse)
    def case(request: Request, case_id: str, message: str | None = None) -> Response:
        caller = pages.caller_of(request)
        if caller is None:
            return login(request)
        return show(request, caller, case_id, message, None)

    def act(request: Request, case_id: str, what: str, csrf: str, form: dict[str, str]) -> Response:
        caller = pages.caller_of(request)
        if caller is None:
            return sign_in_again(request)
        if pages.forged(request, csrf):
            return show(request, caller, case_id, None, NO_CSRF, 403)
        try:
            if what == "snooze":
                message = snooze(caller, case_id, form)
            else:
                with ctx.session() as store:
                    message = change(store, caller, case_id, what, form)
        except ApiError as exc:
            return show(request, caller, case_id, None, exc.detail, exc.status)
        return RedirectResponse(f"/cases/{quote(case_id)}?message={quote(message)}", status_code=303)

    def change(store: Store, caller: Caller, case_id: str, what: str, form: dict[str, str]) -> str:
        if what == "claim":
            case_actions.claim(ctx, store, caller, case_id)
            return "Claimed: the case is yours."
        if what == "release":
            case_actions.release(ctx, store, caller, case_id)
            return "Released: the case is back in its queue."
        body = complete_body(form)
        done = case_actions.complete(ctx, store, caller, case_id, body.outcome, body.reason_code, body.note)
        left = len(done.active)
        return f"Completed: {body.outcome}." + (f" {left} task(s) still open." if left else "")

    def snooze(caller: Caller, case_id: str, form: dict[str, str]) -> str:
        if not caller.may("ops"):
            raise ApiError(403, f"'{caller.name}' has role {caller.role}; snoozing a playbook needs ops or above")
        with ctx.session() as store:
            customer = case_actions.find_case(store, case_id).customer_id
        days = int(form["days"]) if form["days"].isdigit() else 0
        if days not in SNOOZE_DAYS:
            raise ApiError(422, f"days: choose one of {', '.join(str(d) for d in SNOOZE_DAYS)}")
        until = datetime.fromtimestamp(ctx.clock() + days * 86400, UTC)
        try:
            body = SnoozeBody(playbook=form["playbook"], until=until, reason=form["reason"].strip())
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise ApiError(422, f"{first['loc'][0]}: {first['msg']}") from None
        accepted = snooze_playbook(ctx, caller, customer, body)
        return f"Snoozed {accepted.playbook} for {customer} until {accepted.until}: in force once the service reads it."

    @page.post("/cases/{case_id}/claim")
    def claim(request: Request, case_id: str, csrf: str = Form("")) -> Response:
        return act(request, case_id, "claim", csrf, {})

    @page.post("/cases/{case_id}/release")
    def release(request: Request, case_id: str, csrf: str = Form("")) -> Response:
        return act(request, case_id, "release", csrf, {})

    @page.post("/cases/{case_id}/complete")
    def complete(
        request: Request,
        case_id: str,
        outcome: str = Form(""),
        reason_code: str = Form(""),
        note: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        return act(request, case_id, "complete", csrf, {"outcome": outcome, "reason_code": reason_code, "note": note})

    @page.post("/cases/{case_id}/snooze")
    def snooze_form(
        request: Request,
        case_id: str,
        playbook: str = Form(""),
        days: str = Form(""),
        reason: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        return act(request, case_id, "snooze", csrf, {"playbook": playbook, "days": days, "reason": reason})

    @page.get("/at-risk", response_class=HTMLResponse)
    def at_risk(request: Request) -> Response:
        caller = pages.caller_of(request)
        if caller is None:
            return login(request)
        with ctx.session() as store:
            found = risk.at_risk(ctx, store, AT_RISK_PAGE)
        return pages.render(request, "at_risk.html", {"caller": caller, "page": found, "window_days": 30})

    return page
