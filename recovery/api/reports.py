"""The customer-loss review and its metrics (`recovery report`) for ops and admin: the printable page at `/reports`
(signed in with the task page's cookie; a frontline agent is refused with 403) and its JSON at `/api/reports`. Both
take `from` and `to` (RFC 3339; `to` defaults to now, `from` to four weeks before `to`) and `by` (week or month)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, whose dependencies are
# local to `router()`.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from recovery.api import html
from recovery.api.auth import COOKIE, Caller, csrf_token, identify, requires
from recovery.api.context import ApiContext
from recovery.api.errors import ApiError
from recovery.api.errors import responses as _errors
from recovery.report import build_report
from recovery.report.html import render_html
from recovery.times import format_time, parse_time

DEFAULT_SPAN_S = 28 * 86400.0
FROM = Query(alias="from", description="RFC 3339 (default: four weeks before `to`)")
TO = Query(description="RFC 3339, excluded (default: now)")


def period(since: str | None, until: str | None, now: float) -> tuple[float, float]:
    """The report's `[from, to)` from the query's text; `ApiError` 422 naming the parameter at fault."""
    try:
        end = parse_time(until) if until else now
    except ValueError as exc:
        raise ApiError(422, f"to: {exc}") from None
    try:
        start = parse_time(since) if since else end - DEFAULT_SPAN_S
    except ValueError as exc:
        raise ApiError(422, f"from: {exc}") from None
    if not start < end:
        raise ApiError(422, f"from: {format_time(start)} is not before to {format_time(end)}")
    return start, end


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter()
    ops = requires(ctx.settings, "ops")

    @api.get(
        "/api/reports",
        tags=["ops"],
        summary="The customer-loss review and its metrics, as JSON (ops)",
        responses=_errors(403),
    )
    def report_json(
        _caller: Annotated[Caller, Depends(ops)],
        since: Annotated[str | None, FROM] = None,
        to: Annotated[str | None, TO] = None,
        by: Literal["week", "month"] = "week",
    ) -> dict[str, Any]:
        start, end = period(since, to, ctx.clock())
        with ctx.session() as store:
            return build_report(store, start, end, by)

    @api.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def report_page(
        request: Request,
        since: Annotated[str | None, FROM] = None,
        to: Annotated[str | None, TO] = None,
        by: str = "week",
        token: str | None = None,
    ) -> Response:
        if token is not None:
            return html.sign_in_link(ctx.settings, request, token)
        token = request.cookies.get(COOKIE)
        caller = identify(ctx.settings, token)
        if caller is None:
            return html.login(request)

        def refuse(status: int, error: str) -> Response:
            context = {"caller": caller, "error": error, "csrf": csrf_token(ctx.csrf_secret, token or "")}
            return html.TEMPLATES.TemplateResponse(request, "error.html", context, status_code=status)

        if not caller.may("ops"):
            return refuse(403, f"'{caller.name}' has role {caller.role}; the reports are for ops and admin.")
        if by not in ("week", "month"):
            return refuse(422, f"by: {by!r} is neither week nor month")
        try:
            start, end = period(since, to, ctx.clock())
        except ApiError as exc:
            return refuse(exc.status, exc.detail)
        with ctx.session() as store:
            built = build_report(store, start, end, by)  # type: ignore[arg-type]  # checked above
        controls = {"from": built["period"]["from"], "to": built["period"]["to"], "by": by}
        return HTMLResponse(render_html(built, controls))

    return api
