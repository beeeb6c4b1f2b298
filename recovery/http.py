"""The service's HTTP side, on one port (DESIGN.md, HTTP): `/metrics`, `/healthz`, `/readyz`, and the routers
that other modules add (the frontline API under `/api/`, the task page at `/`).

`/metrics` and `/healthz` answer even while the broker or the store is down; `/readyz` then says which one, with
status 503. Dependencies are passed in (`create_app(settings, registry, health)`), never imported globals.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from recovery import __version__
from recovery.api import ApiContext
from recovery.api import install as install_api
from recovery.config import Settings

logger = logging.getLogger(__name__)

READY_STALE_S = 60.0
"""A check not refreshed for this long counts as failed (the loop that refreshes it is stuck)."""


@dataclass
class Health:
    """What `/readyz` reports; the service loop updates it. Thread-safe enough: plain assignments."""

    broker: str | None = "not connected yet"
    store: str | None = None
    playbooks: str | None = "not loaded yet"
    checked_at: float = field(default_factory=time.monotonic)

    def set(self, *, broker: str | bool | None = False, store: str | bool | None = False) -> None:
        """None means healthy, a string says what is wrong; False leaves a check as it is."""
        if broker is not False:
            self.broker = broker if isinstance(broker, str) or broker is None else None
        if store is not False:
            self.store = store if isinstance(store, str) or store is None else None
        self.checked_at = time.monotonic()

    def problems(self) -> dict[str, str]:
        found = {name: value for name in ("broker", "store", "playbooks") if (value := getattr(self, name))}
        stale = time.monotonic() - self.checked_at
        if stale > READY_STALE_S:
            found["loop"] = f"the service loop has not reported for {stale:.0f}s"
        return found


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
