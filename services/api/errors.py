"""The one place where errors become HTTP answers of the shape {"error": {"code", "message", "details", "request_id"}}."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import psycopg_pool
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from memcube import errors
from memcube.request_context import request_id_var

log = logging.getLogger(__name__)

# A dependency that cannot be reached right now: the database (down, restarting, or every pooled connection
# busy past the pool's timeout) or Redis. The client may retry; the answer says when.
OUTAGES = (psycopg.OperationalError, psycopg_pool.PoolTimeout, redis.ConnectionError, redis.TimeoutError)
RETRY_AFTER_SECONDS = "5"

STATUS = {
    errors.InvalidInput: 422,
    errors.Malformed: 400,
    errors.TooLarge: 413,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.StaleVersion: 412,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.Unavailable: 503,
    errors.ConfigError: 503,
}
HTTP_CODES = {400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 412: "stale_version", 413: "too_large", 415: "unsupported_media_type",
              422: "invalid_input", 429: "rate_limited", 503: "unavailable"}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    # The request id lets a caller's report be matched to the server's log and the audit trail.
    body = {"error": {"code": code, "message": message, "details": details,
                      "request_id": request_id_var.get() or None}}
    return JSONResponse(body, status_code=status, headers=headers)


def _status(exc: errors.MemCubeError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _clean(value: Any) -> Any:
    """Make validation details JSON-safe (pydantic puts exceptions and bytes in them)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_clean(v) for v in value]
        return repr(value)


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return error_response(400, "malformed", "the request body is not valid JSON",
                                  {"position": err.get("ctx", {}).get("error")})
        location = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        problems.append({"field": location, "message": err.get("msg"), "type": err.get("type")})
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    return error_response(422, "invalid_input", message, _clean(problems))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.MemCubeError)
    def _memcube(request: Request, exc: errors.MemCubeError) -> JSONResponse:
        status = _status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": RETRY_AFTER_SECONDS}
        return error_response(status, exc.code, exc.message, _clean(exc.details), headers)

    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    def _outage(request: Request, exc: Exception) -> JSONResponse:
        # No traceback: an outage is an operational event, not a bug; one line says which dependency.
        log.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        dependency = "redis" if isinstance(exc, redis.RedisError) else "database"
        return error_response(503, "unavailable", f"the {dependency} is unavailable right now; retry later",
                              {"dependency": dependency}, {"Retry-After": RETRY_AFTER_SECONDS})

    for outage in OUTAGES:
        app.add_exception_handler(outage, _outage)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Process edge: anything unplanned is logged with its traceback and answered in the error shape.
        request_id = request.scope.get("memcube.request_id")
        log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id)
        request_id_var.set(request_id or "")
        return error_response(500, "internal", "internal error; the server log has the details",
                              headers={"X-Request-ID": request_id} if request_id else None)
