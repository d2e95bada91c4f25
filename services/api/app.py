"""The HTTP app: lifespan (runtime in, runtime out), middleware, error handlers, routers."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from memcube.config import Settings
from memcube.runtime import Runtime, open_runtime, require_urls
from services.api.errors import install_error_handlers
from services.api.audit_middleware import AuditMiddleware
from services.api.middleware import (BodyLimitMiddleware, ContentTypeMiddleware, Metrics, MetricsMiddleware,
                                     RequestIdMiddleware)
from services.api.ratelimit import RateLimitMiddleware, RateLimits
from services.api.routes import admin, health, memories, search
from services.api.routes import context, core, sessions
from services.api.routes import agents, jobs, portability
from services.dashboard.app import install_dashboard
from services.api.routes import lessons, trajectories


def create_app(settings: Settings, *, runtime_factory: Callable[[Settings], Runtime] = open_runtime) -> FastAPI:
    """Build the API; the runtime (pool, Redis, embedder) opens at start-up and closes at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime_factory(settings)
        app.state.rate_limits = RateLimits(require_urls(settings)[1], read=settings.rate_limit_read,
                                           write=settings.rate_limit_write, search=settings.rate_limit_search)
        try:
            yield
        finally:
            app.state.rate_limits.close()
            app.state.runtime.close()

    # /docs loads Swagger UI from the fastapi-offline package, not from a CDN. No /redoc: ReDoc's page still
    # fetches its logo from a CDN.
    app = FastAPIOffline(title="MemCube", version="0.1.0", lifespan=lifespan, static_url="/docs-assets",
                         redoc_url=None,
                         description="A memory operating system for AI agents.")
    app.state.metrics = Metrics()
    install_error_handlers(app)
    for module in (memories, search, admin, health, sessions, core, context, agents, jobs, trajectories, lessons,
                   portability):
        app.include_router(module.router)
    install_dashboard(app)
    # Outermost last: the request id first, then metrics, rate limits (before anything reads the body or the
    # database), the audit entry, the body limit and the media type.
    app.add_middleware(ContentTypeMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RateLimitMiddleware, get_limits=lambda scope: getattr(scope["app"].state, "rate_limits", None))
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
