"""API errors: a status and a message that names the culprit. A store failure is 503 (try again), not a 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from recovery.exceptions import RecoveryError, StoreError

logger = logging.getLogger(__name__)


class ApiError(RecoveryError):
    """An answer other than success: `status` (401, 403, 404, 409, 422...) and `detail` (what and which)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


class ErrorOut(BaseModel):
    detail: str


MEANING = {
    401: "No valid bearer token",
    403: "The caller's role may not do this",
    404: "Unknown id",
    409: "The task or gesture is not in a state that allows this",
    503: "The store is unavailable",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for an endpoint answering these error codes (401 and 503 always)."""
    return {code: {"model": ErrorOut, "description": MEANING[code]} for code in (401, 503, *codes)}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StoreError)
    def store_error(request: Request, exc: StoreError) -> JSONResponse:
        logger.warning("store unavailable for an API call", extra={"path": request.url.path, "error": str(exc)})
        return JSONResponse({"detail": f"the store is unavailable: {exc}"}, status_code=503)
