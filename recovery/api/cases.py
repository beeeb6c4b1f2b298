"""Case endpoints: the queue of cases (by priority, then the customer's value, then due time), a case with
everything about it, claim, release and complete a case; a customer's snoozes (ops snooze a playbook for a
customer: a `playbook.snoozed` event the engine applies); the power players at risk."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, whose dependencies are
# local to `router()`.

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from recovery.api import case_actions, risk
from recovery.api.auth import Caller, requires
from recovery.api.context import ApiContext
from recovery.api.errors import ApiError
from recovery.api.errors import responses as _errors
from recovery.api.models import (
    AtRiskPage,
    CaseDetail,
    CaseOut,
    CasePage,
    CaseStatus,
    CompleteBody,
    SnoozeAccepted,
    SnoozeBody,
    SnoozeOut,
    SnoozesOut,
)
from recovery.lifecycle import emit_playbook_snoozed
from recovery.store.records import CaseQuery, Snooze
from recovery.times import format_time


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["cases"])
    frontline = requires(ctx.settings, "frontline")
    ops = requires(ctx.settings, "ops")

    @api.get("/cases", summary="Cases by priority, then customer value, then due time (paginated)", responses=_errors())
    def list_cases(
        _caller: Annotated[Caller, Depends(frontline)],
        queue: str | None = None,
        status: CaseStatus = "active",
        priority: Literal["P1", "P2", "P3", "P4"] | None = None,
        customer_id: str | None = None,
        claimed_by: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> CasePage:
        query = CaseQuery(queue, status, priority, customer_id, claimed_by, limit, offset)
        with ctx.session() as store:
            cases, total = store.list_cases(query)
        now = ctx.clock()
        more = offset + len(cases) < total
        return CasePage(
            items=[CaseOut.of(c, now) for c in cases],
            total=total,
            limit=limit,
            offset=offset,
            truncated=more,
            next_offset=offset + len(cases) if more else None,
        )

    @api.get(
        "/cases/{case_id}",
        summary="A case: its tasks side by side, every reason, evidence and talking point, gestures, muted effects, "
        "snoozes and audit trail",
        responses=_errors(404),
    )
    def get_case(case_id: str, caller: Annotated[Caller, Depends(frontline)]) -> CaseDetail:
        with ctx.session() as store:
            return case_actions.detail(ctx, store, caller, case_id)

    @api.post(
        "/cases/{case_id}/claim", summary="Claim a case (all its tasks) for the caller", responses=_errors(404, 409)
    )
    def claim(case_id: str, caller: Annotated[Caller, Depends(frontline)]) -> CaseOut:
        with ctx.session() as store:
            case = case_actions.claim(ctx, store, caller, case_id)
        return CaseOut.of(case, ctx.clock())

    @api.post(
        "/cases/{case_id}/release",
        summary="Give a claimed case back (its holder, or ops)",
        responses=_errors(403, 404, 409),
    )
    def release(case_id: str, caller: Annotated[Caller, Depends(frontline)]) -> CaseOut:
        with ctx.session() as store:
            case = case_actions.release(ctx, store, caller, case_id)
        return CaseOut.of(case, ctx.clock())

    @api.post(
        "/cases/{case_id}/complete",
        summary="Close the tasks of a case the caller holds with one outcome; each emits task.completed",
        responses=_errors(403, 404, 409),
    )
    def complete(case_id: str, body: CompleteBody, caller: Annotated[Caller, Depends(frontline)]) -> CaseOut:
        with ctx.session() as store:
            case = case_actions.complete(ctx, store, caller, case_id, body.outcome, body.reason_code, body.note)
        return CaseOut.of(case, ctx.clock())

    @api.get(
        "/customers/at-risk",
        summary="The most valuable customers with an open case or a distress signal in the last 30 days",
        responses=_errors(),
    )
    def at_risk(
        _caller: Annotated[Caller, Depends(frontline)], limit: Annotated[int, Query(ge=1, le=200)] = 50
    ) -> AtRiskPage:
        with ctx.session() as store:
            return risk.at_risk(ctx, store, limit)

    @api.get("/customers/{customer_id}/snoozes", summary="A customer's snoozed playbooks", responses=_errors())
    def snoozes(customer_id: str, _caller: Annotated[Caller, Depends(frontline)]) -> SnoozesOut:
        with ctx.session() as store:
            found = store.snoozes(customer_id)
        now = ctx.clock()
        return SnoozesOut(
            customer_id=customer_id,
            snoozes=[SnoozeOut.of(s, now) for s in sorted(found.values(), key=lambda s: s.playbook)],
        )

    @api.post(
        "/customers/{customer_id}/snoozes",
        summary="Snooze a playbook for a customer until a time (ops): sent to the engine as playbook.snoozed",
        status_code=status.HTTP_202_ACCEPTED,
        responses={**_errors(403), 422: {"description": "An unknown playbook, or an expiry not in the future"}},
    )
    def snooze(customer_id: str, body: SnoozeBody, caller: Annotated[Caller, Depends(ops)]) -> SnoozeAccepted:
        return snooze_playbook(ctx, caller, customer_id, body)

    return api


def snooze_playbook(ctx: ApiContext, caller: Caller, customer_id: str, body: SnoozeBody) -> SnoozeAccepted:
    """Check the playbook runs and the expiry is ahead, then send `playbook.snoozed` through the outbox, audited."""
    running = sorted(pb.id for pb in ctx.catalog.playbooks)
    if body.playbook not in running:
        raise ApiError(422, f"playbook: no running playbook {body.playbook!r} (running: {', '.join(running)})")
    now = ctx.clock()
    until = body.until.timestamp()
    if until <= now:
        raise ApiError(422, f"until: {format_time(until)} is not in the future (now: {format_time(now)})")
    snooze = Snooze(body.playbook, until, body.reason, caller.name)
    with ctx.session() as store:
        event_id = emit_playbook_snoozed(store, ctx.settings.topic_events, customer_id, snooze, now)
        details = {"playbook": body.playbook, "until": format_time(until), "reason": body.reason, "event_id": event_id}
        store.add_audit(now, caller.name, "snooze", customer_id=customer_id, details=details)
    return SnoozeAccepted(
        customer_id=customer_id,
        playbook=body.playbook,
        until=format_time(until),
        reason=body.reason,
        by=caller.name,
        event_id=event_id,
    )
