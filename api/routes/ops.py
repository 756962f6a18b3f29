"""Operations endpoints: liveness, readiness, metrics, and the platform's public keys."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..resources import Resources
from ..store.pool import UNAVAILABLE_ERRORS, ping

READY_TIMEOUT = 2.0


def _resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


async def healthz(request: Request) -> Response:
    """The process is alive; says nothing about its backing services, so it stays up when they are down."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready to serve: PostgreSQL answers and NATS is connected. A load balancer routes by this."""
    resources = _resources(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(ping(resources.db), READY_TIMEOUT)
        checks["postgres"] = "ok"
    except UNAVAILABLE_ERRORS as exc:  # TimeoutError from wait_for is among them
        checks["postgres"] = f"unavailable: {type(exc).__name__}"
    connected = resources.nats is not None and resources.nats.is_connected
    checks["nats"] = "ok" if connected else "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    return Response(_resources(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def jwks(request: Request) -> Response:
    return JSONResponse(_resources(request).signing_key.jwks(), headers={"Cache-Control": "public, max-age=300"})
