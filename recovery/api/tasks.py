"""Frontline endpoints: tasks (list, get, claim, release, complete), gestures (list, get, approve, reject) and a
customer's timeline."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, whose dependencies are
# local to `router()`.

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from recovery.api import actions
from recovery.api.auth import Caller, requires
from recovery.api.context import ApiContext
from recovery.api.errors import responses as _errors
from recovery.api.models import (
    CompleteBody,
    DecisionBody,
    GestureOut,
    Me,
    TaskDetail,
    TaskOut,
    TaskPage,
    Timeline,
)
from recovery.effects import GestureStatus, TaskStatus
from recovery.store.records import TaskQuery


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["frontline"])
    frontline = requires(ctx.settings, "frontline")
    ops = requires(ctx.settings, "ops")

    @api.get("/me", summary="Who the token belongs to", responses=_errors())
    def me(caller: Annotated[Caller, Depends(frontline)]) -> Me:
        return Me(name=caller.name, role=caller.role)

    @api.get("/tasks", summary="Tasks by priority, then due time (paginated)", responses=_errors())
    def list_tasks(
        _caller: Annotated[Caller, Depends(frontline)],
        queue: str | None = None,
        status: TaskStatus | None = None,
        priority: Literal["P1", "P2", "P3", "P4"] | None = None,
        customer_id: str | None = None,
        due_before: Annotated[datetime | None, Query(description="RFC 3339; without an offset it is UTC")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> TaskPage:
        before = None
        if due_before is not None:
            before = (due_before if due_before.tzinfo else due_before.replace(tzinfo=UTC)).timestamp()
        query = TaskQuery(queue, status, priority, customer_id, before, limit, offset)
        with ctx.session() as store:
            records, total = store.list_tasks(query)
        now = ctx.clock()
        return TaskPage(items=[TaskOut.of(r, now) for r in records], total=total, limit=limit, offset=offset)

    @api.get("/tasks/{task_id}", summary="A task with its evidence, gestures and audit trail", responses=_errors(404))
    def get_task(task_id: str, _caller: Annotated[Caller, Depends(frontline)]) -> TaskDetail:
        with ctx.session() as store:
            return actions.detail(ctx, store, task_id)

    @api.post("/tasks/{task_id}/claim", summary="Claim a task for the calling agent", responses=_errors(404, 409))
    def claim(task_id: str, caller: Annotated[Caller, Depends(frontline)]) -> TaskOut:
        with ctx.session() as store:
            record = actions.claim(ctx, store, caller, task_id)
        return TaskOut.of(record, ctx.clock())

    @api.post(
        "/tasks/{task_id}/release",
        summary="Give a claimed task back (its holder, or ops)",
        responses=_errors(403, 404, 409),
    )
    def release(task_id: str, caller: Annotated[Caller, Depends(frontline)]) -> TaskOut:
        with ctx.session() as store:
            record = actions.release(ctx, store, caller, task_id)
        return TaskOut.of(record, ctx.clock())

    @api.post(
        "/tasks/{task_id}/complete",
        summary="Close a task the caller holds, with an outcome; emits task.completed",
        responses=_errors(403, 404, 409),
    )
    def complete(task_id: str, body: CompleteBody, caller: Annotated[Caller, Depends(frontline)]) -> TaskOut:
        with ctx.session() as store:
            record = actions.complete(ctx, store, caller, task_id, body.outcome, body.reason_code, body.note)
        return TaskOut.of(record, ctx.clock())

    @api.get("/gestures", summary="Gestures, oldest first", responses=_errors())
    def list_gestures(
        _caller: Annotated[Caller, Depends(frontline)],
        status: GestureStatus | None = None,
        customer_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[GestureOut]:
        with ctx.session() as store:
            return [GestureOut.of(g) for g in store.list_gestures(status, customer_id, limit)]

    @api.get("/gestures/{gesture_id}", summary="A gesture", responses=_errors(404))
    def get_gesture(gesture_id: str, _caller: Annotated[Caller, Depends(frontline)]) -> GestureOut:
        with ctx.session() as store:
            return GestureOut.of(actions.find_gesture(store, gesture_id))

    @api.post(
        "/gestures/{gesture_id}/approve", summary="Approve a proposed gesture (ops)", responses=_errors(403, 404, 409)
    )
    def approve(
        caller: Annotated[Caller, Depends(ops)], gesture_id: str, body: DecisionBody | None = None
    ) -> GestureOut:
        with ctx.session() as store:
            record = actions.decide(ctx, store, caller, gesture_id, "approved", body.note if body else "")
        return GestureOut.of(record)

    @api.post(
        "/gestures/{gesture_id}/reject", summary="Reject a proposed gesture (ops)", responses=_errors(403, 404, 409)
    )
    def reject(
        caller: Annotated[Caller, Depends(ops)], gesture_id: str, body: DecisionBody | None = None
    ) -> GestureOut:
        with ctx.session() as store:
            record = actions.decide(ctx, store, caller, gesture_id, "rejected", body.note if body else "")
        return GestureOut.of(record)

    @api.get(
        "/customers/{customer_id}/timeline",
        summary="A customer's events, tasks, gestures, outcomes and audit entries, oldest first",
        responses=_errors(404),
    )
    def timeline(customer_id: str, _caller: Annotated[Caller, Depends(frontline)]) -> Timeline:
        with ctx.session() as store:
            return actions.timeline(ctx, store, customer_id)

    return api
