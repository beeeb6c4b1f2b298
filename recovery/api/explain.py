"""Why a customer did or did not get a task or gesture (`recovery explain` over the service's store, with the
playbooks it runs), for ops and admin: JSON at `/api/customers/{id}/explain` and a page at `/customers/{id}/explain`
(signed in with the task page's cookie; a frontline agent is refused with 403). Both take `at` (RFC 3339, default
now): the instant to explain as of."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, whose dependencies are
# local to `router()`.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from recovery.api import html
from recovery.api.auth import COOKIE, Caller, csrf_token, identify, requires
from recovery.api.context import ApiContext
from recovery.api.errors import ApiError
from recovery.api.errors import responses as _errors
from recovery.explain import explain_store
from recovery.times import parse_time

AT = Query(description="RFC 3339: explain as of this instant (default: now)")


def instant(at: str | None, now: float) -> float:
    """`at` as epoch seconds (`now` without it); `ApiError` 422 naming the parameter."""
    if not at:
        return now
    try:
        return parse_time(at)
    except ValueError as exc:
        raise ApiError(422, f"at: {exc}") from None


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter()
    ops = requires(ctx.settings, "ops")

    def explained(customer_id: str, at: float) -> dict[str, Any]:
        with ctx.session() as store:
            return explain_store(store, ctx.catalog.playbooks, customer_id, at).to_dict()

    @api.get(
        "/api/customers/{customer_id}/explain",
        tags=["ops"],
        summary="Why a customer did or did not get a task or gesture, per playbook (ops)",
        responses={**_errors(403), 422: {"description": "`at` is not an RFC 3339 time"}},
    )
    def explain_json(
        customer_id: str, _caller: Annotated[Caller, Depends(ops)], at: Annotated[str | None, AT] = None
    ) -> dict[str, Any]:
        return explained(customer_id, instant(at, ctx.clock()))

    @api.get("/customers/{customer_id}/explain", response_class=HTMLResponse, include_in_schema=False)
    def explain_page(request: Request, customer_id: str, at: Annotated[str | None, AT] = None) -> Response:
        token = request.cookies.get(COOKIE)
        caller = identify(ctx.settings, token)
        if caller is None:
            return html.login(request)
        csrf = csrf_token(ctx.csrf_secret, token or "")

        def render(name: str, context: dict[str, Any], status: int = 200) -> Response:
            context = {**context, "caller": caller, "csrf": csrf}
            return html.TEMPLATES.TemplateResponse(request, name, context, status_code=status)

        if not caller.may("ops"):
            return render("error.html", {"error": f"'{caller.name}' has role {caller.role}; explain is for ops and "
                                         "admin."}, 403)  # fmt: skip
        try:
            when = instant(at, ctx.clock())
        except ApiError as exc:
            return render("error.html", {"error": exc.detail}, exc.status)
        return render("explain.html", {"x": explained(customer_id, when), "at": at or ""})

    return api
