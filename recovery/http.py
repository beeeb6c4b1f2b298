"""The service's HTTP side, on one port (DESIGN.md, HTTP): `/metrics`, `/healthz`, `/readyz`, and the routers
that other modules add (the frontline API under `/api/`, the task page at `/`).

`/metrics` and `/healthz` answer even while the broker or the store is down; `/readyz` then says which one, with
status 503. Dependencies are passed in (`create_app(settings, registry, health)`), never imported globals.

The HTTP side shares its process with the Kafka loop, so no request may make it hold more than
`http_max_body_bytes` of body (`BodyLimit`), and the API checks the caller's credential before any body is read.
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recovery import __version__
from recovery.api import ApiContext
from recovery.api import install as install_api
from recovery.config import Settings
from recovery.health import Health

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings, registry: CollectorRegistry, health: Health, api: ApiContext | None = None
) -> FastAPI:
    """The service's app; with `api`, also the frontline and ops API under `/api/` and the task page at `/`."""
    app = FastAPI(
        title="recovery",
        version=__version__,
        description="Proactive customer recovery: tasks for the frontline, gestures, playbooks.",
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.health = health
    app.add_middleware(BodyLimit, max_body_bytes=settings.http_max_body_bytes)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Broker reachable, store writable, playbooks loaded")
    def readyz() -> JSONResponse:
        problems = health.problems()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    if api is not None:
        install_api(app, api)  # its credential check goes around the body limit: no credential is 401, whatever body
    return app


class _BodyCut(Exception):
    """Raised to the app that asked for more of a body past the limit (already answered 413)."""


class BodyLimit:
    """Pure ASGI middleware: request bodies of at most `max_body_bytes` (setting `http_max_body_bytes`).

    A body its `Content-Length` announces over the limit is answered 413 before the app runs; one that streams in
    (chunked, or longer than announced) is counted as the app reads it, and answered 413 as soon as the count passes
    the limit: the app gets `_BodyCut` instead of the piece, and its own answer is dropped. A 413 closes the
    connection, so the rest of the body is never read. The 413's JSON `detail` names the limit and its setting.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        if announced is not None and announced > self.max_body_bytes:
            await self._too_large(scope, receive, send, f"{announced} bytes")
            return
        received = 0
        started = answered = False

        async def counted() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if not started and not answered:
                        answered = True
                        await self._too_large(scope, receive, send, f"at least {received} bytes")
                    raise _BodyCut
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the app's answer to a body it never got whole: the client has its 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not answered:
                raise
            # Whatever the app made of the cut (FastAPI's 400, an error) is moot: the client was answered 413.
            logger.debug("request body over the limit", extra={"path": scope.get("path"), "received": received})

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        detail = (
            f"the request body ({size}) is over the limit of {self.max_body_bytes} bytes: "
            "setting http_max_body_bytes (RECOVERY_HTTP_MAX_BODY_BYTES)"
        )
        response = JSONResponse({"detail": detail}, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the server refuses a malformed length itself


class HttpServer:
    """uvicorn in a background thread; `stop()` shuts it down."""

    def __init__(self, app: FastAPI, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 (a service port)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise OSError(f"the HTTP server did not start on port {self._server.config.port}")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
