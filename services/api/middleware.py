"""ASGI middleware: request ids, request metrics per route template, the request body limit, media types."""

from __future__ import annotations

import json
import time
from typing import Any, Awaitable, Callable

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Histogram

from memcube import request_context

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The API's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("memcube_http_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("memcube_http_request_duration_seconds", "HTTP request latency by route",
                                 ["method", "route"], buckets=BUCKETS, registry=self.registry)


class RequestIdMiddleware:
    """Give every request an id (the caller's `X-Request-ID` when sane, else a new one), answer it in the
    `X-Request-ID` header of every response, and make it available to errors and the audit trail."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers", [])).get(b"x-request-id")
        request_id = request_context.new_request_id(offered.decode("latin-1") if offered else None)
        request_context.request_id_var.set(request_id)
        # Also in the scope: Starlette answers an unexpected exception from outside this middleware.
        scope["memcube.request_id"] = request_id

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_wrapper)


def error_body(code: str, message: str, details: Any = None) -> bytes:
    """The error shape as bytes, for the middleware that answer before the app (with the request id)."""
    return json.dumps({"error": {"code": code, "message": message, "details": details,
                                 "request_id": request_context.request_id_var.get() or None}}).encode()


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label so that random URLs cannot grow the series without bound.
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status["code"])).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


class BodyLimitMiddleware:
    """Answer 413 for a body over the limit, whether it announces its length or streams it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # The app's error handlers turn this into the usual error shape.
                    raise HTTPException(413, detail=self._message())
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"the request body is over {self.max_bytes} bytes (MEMCUBE_MAX_BODY_BYTES)"

    async def _reject(self, send: Any) -> None:
        body = error_body("too_large", self._message(), {"limit": self.max_bytes})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# Media types a body may have: JSON everywhere, NDJSON for an import.
JSON_TYPES = ("application/json",)
BODY_TYPES = {"/v1/import": ("application/x-ndjson", "application/jsonl")}


class ContentTypeMiddleware:
    """Answer 415 for an API request whose body is not declared as JSON (or NDJSON for an import): without
    this, a form-encoded body would reach validation and be refused with a puzzling "not a dictionary"."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or scope["method"] in ("GET", "HEAD",
                                                                                                "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length", b"").strip()
        has_body = b"transfer-encoding" in headers or (length not in (b"", b"0"))
        declared = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        wanted = BODY_TYPES.get(scope["path"], JSON_TYPES)
        if not has_body or declared in wanted or (wanted == JSON_TYPES and declared.endswith("+json")):
            await self.app(scope, receive, send)
            return
        got = f"`{declared}`" if declared else "no Content-Type"
        body = error_body("unsupported_media_type",
                          f"the request body must be {wanted[0]}: send `Content-Type: {wanted[0]}` (this request "
                          f"has {got})", {"expected": list(wanted), "got": declared or None})
        await send({"type": "http.response.start", "status": 415,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
