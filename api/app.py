"""The ASGI application: composition root of one API process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from .graphql.view import GraphQLEndpoint
from .middleware import AccessLog, BodyLimit
from .resources import Resources
from .routes import ops
from .routes.oauth import TokenEndpoint
from .settings import Settings
from .store.pool import UNAVAILABLE_ERRORS

log = logging.getLogger("takedown.app")


def create_app(settings: Settings, resources: Resources | None = None) -> Starlette:
    if not settings.database_url or not settings.nats_url:
        raise ValueError("create_app needs TAKEDOWN_DATABASE_URL and TAKEDOWN_NATS_URL (takedown dev sets them)")
    resources = resources or Resources.build(settings)
    graphql = GraphQLEndpoint(resources)
    token = TokenEndpoint(resources)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await resources.open()
        try:
            yield
        finally:
            await resources.close()

    async def unavailable(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "unavailable", "error_description": "a backing service is unavailable"}, 503)

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse({"error": "internal_error"}, 500)

    app = Starlette(
        routes=[
            Route("/healthz", ops.healthz),
            Route("/readyz", ops.readyz),
            Route("/metrics", ops.metrics),
            Route("/.well-known/jwks.json", ops.jwks),
            Route("/oauth/token", token.handle, methods=["POST"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[
            Middleware(AccessLog, metrics=resources.metrics),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers={**{e: unavailable for e in UNAVAILABLE_ERRORS}, Exception: internal},
        lifespan=lifespan,
    )
    app.state.resources = resources
    return app
