"""The frontline and ops API under `/api/`, and the task page at `/` (DESIGN.md, HTTP).

`ApiContext` carries what they need (dependencies passed in, never imported globals): the settings (tokens,
topics), how to open a store connection of their own (SQLite connections belong to one thread: one per request),
the playbook catalog, the metrics and the clock. `install(app, ctx)` adds the routers to the service's app.
"""

from __future__ import annotations

from fastapi import FastAPI

from recovery.api.context import ApiContext
from recovery.api.errors import ApiError


def install(app: FastAPI, ctx: ApiContext) -> None:
    """Add the routers, their error handlers and the credential check (`auth.Gate`): added after the service's
    body limit, it runs before it, so a caller without a credential is answered 401 whatever body it announces."""
    from recovery.api import auth, case_page, cases, errors, explain, html, ops, page, reports, tasks

    app.state.api = ctx
    errors.install(app)
    app.include_router(tasks.router(ctx))
    app.include_router(cases.router(ctx))
    app.include_router(ops.router(ctx))
    pages = html.Pages(ctx)
    app.include_router(page.router(pages))
    app.include_router(case_page.router(pages))
    app.include_router(reports.router(ctx))
    app.include_router(explain.router(ctx))
    app.add_middleware(auth.Gate, settings=ctx.settings, page_refusal=html.sign_in_again)


__all__ = ["ApiContext", "ApiError", "install"]
