"""Ops endpoints: the running playbooks with their versions, validating a playbook before it ships, reloading the
rules directory (a failed reload keeps the running version and says why), and the audit trail."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, whose dependencies are
# local to `router()`.

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from recovery.api.auth import Caller, requires
from recovery.api.context import ApiContext
from recovery.api.errors import responses as _errors
from recovery.api.models import AuditOut, PlaybookOut, Playbooks, Validation
from recovery.exceptions import PlaybookError
from recovery.playbooks.compiler import CompiledPlaybook
from recovery.playbooks.loader import load_catalog, load_playbook_text
from recovery.times import format_time

MAX_PLAYBOOK_BYTES = 256 * 1024
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
YAML_BODY = {
    "requestBody": {
        "required": True,
        "description": "The playbook, as YAML",
        "content": {"application/yaml": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}},
    }
}


def _playbook(pb: CompiledPlaybook) -> PlaybookOut:
    source = pb.source
    return PlaybookOut(
        id=pb.id,
        version=pb.version,
        file=pb.file,
        enabled=source.enabled if source is not None else True,
        description=source.description if source is not None else "",
        trigger=pb.kind,
        queues=sorted({t.queue for t in pb.tasks}),
    )


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["ops"])
    ops = requires(ctx.settings, "ops")
    admin = requires(ctx.settings, "admin")

    def listing() -> Playbooks:
        catalog = ctx.catalog
        return Playbooks(
            playbooks=[_playbook(pb) for pb in sorted(catalog.playbooks, key=lambda pb: pb.id)],
            loaded_at=format_time(catalog.loaded_at),
            last_reload_error=catalog.last_error,
        )

    @api.get("/playbooks", summary="The running playbooks and their versions", responses=_errors(403))
    def list_playbooks(_caller: Annotated[Caller, Depends(ops)]) -> Playbooks:
        return listing()

    @api.post(
        "/playbooks/validate",
        summary="Validate a playbook (YAML body); problems as FILE:LINE:COL: message",
        responses=_errors(403),
        openapi_extra=YAML_BODY,
    )
    async def validate(
        _caller: Annotated[Caller, Depends(ops)],
        request: Request,
        file: Annotated[str, Query(pattern=FILE_NAME.pattern, description="The name problems are reported on")] = (
            "playbook.yaml"
        ),
    ) -> Validation:
        raw = await request.body()
        if len(raw) > MAX_PLAYBOOK_BYTES:
            return Validation(valid=False, problems=[f"{file}:1:1: the playbook is over {MAX_PLAYBOOK_BYTES} bytes"])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Validation(valid=False, problems=[f"{file}:1:1: the body is not UTF-8 text: {exc}"])
        events, problems = load_catalog([ctx.catalog.rules_dir])  # the event types the rules folder declares
        try:
            if problems:
                raise PlaybookError(problems)
            compiled = load_playbook_text(text, file, events)
        except PlaybookError as exc:
            return Validation(valid=False, problems=[str(p) for p in exc.problems])
        return Validation(valid=True, problems=[], id=compiled.id, version=compiled.version)

    @api.post(
        "/playbooks/reload",
        summary="Reload the rules directory; on any problem the running playbooks stay (422 with the problems)",
        response_model=Playbooks,
        responses={**_errors(403), 422: {"description": "Refused: the problems, and what keeps running"}},
    )
    def reload(_caller: Annotated[Caller, Depends(admin)]) -> Playbooks | JSONResponse:
        problems = ctx.catalog.reload()
        if problems:
            running = listing().model_dump()
            detail = (
                f"reload refused, the running playbooks stay: {len(problems)} problem(s) in {ctx.catalog.rules_dir}"
            )
            body = {"detail": detail, "problems": [str(p) for p in problems], **running}
            return JSONResponse(body, status_code=422)
        return listing()

    @api.get("/audit", summary="The audit trail, oldest first (admin)", responses=_errors(403))
    def audit(
        _caller: Annotated[Caller, Depends(admin)],
        customer_id: str | None = None,
        task_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[AuditOut]:
        with ctx.session() as store:
            return [AuditOut.of(a) for a in store.audit(customer_id=customer_id, task_id=task_id, limit=limit)]

    return api
