"""The service's HTTP side, on one port (DESIGN.md, HTTP): `/metrics`, `/healthz`, `/readyz`, and the routers
that other modules add (the frontline API under `/api/`, the task page at `/`).

`/metrics` and `/healthz` answer even while the broker or the store is down; `/readyz` then says which one, with
status 503. Dependencies are passed in (`create_app(settings, registry, health)`), never imported globals.
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

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
        install_api(app, api)
    return app


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
