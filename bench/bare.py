"""The read baseline: a bare Starlette JSON endpoint returning the same 50 notices (with provider
and history) from the same kind of pool, served the same way (one uvicorn process).

    python bench/bare.py --port P     (TAKEDOWN_DATABASE_URL from the environment)
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PAGE = """
    SELECT n.id, n.reference, n.status, n.provider_id FROM notices n
    WHERE n.provider_id = $1::uuid ORDER BY n.id DESC LIMIT 50
"""
ORGS = "SELECT id, name FROM organizations WHERE id = ANY($1::uuid[])"
HISTORY = """SELECT notice_id, to_status, at, actor_kind FROM notice_history WHERE notice_id = ANY($1::uuid[])
             ORDER BY notice_id, position"""


def build(dsn: str) -> Starlette:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=1, max_size=20)
        yield
        await state["pool"].close()

    async def notices(request: Request) -> Response:
        body = json.loads(await request.body())
        provider = body["provider"]
        async with state["pool"].acquire() as conn:
            rows = await conn.fetch(PAGE, provider)
            ids = [r["id"] for r in rows]
            orgs = {r["id"]: r["name"] for r in await conn.fetch(ORGS, list({r["provider_id"] for r in rows}))}
            history: dict[Any, list[dict[str, Any]]] = {i: [] for i in ids}
            for h in await conn.fetch(HISTORY, ids):
                history[h["notice_id"]].append({"toStatus": h["to_status"], "at": h["at"].isoformat(), "actorKind": h["actor_kind"]})
        edges = [
            {"node": {"id": str(r["id"]), "reference": r["reference"], "status": r["status"],
                      "provider": {"name": orgs[r["provider_id"]]}, "history": history[r["id"]]}}
            for r in rows
        ]
        return JSONResponse({"data": {"notices": {"edges": edges}}})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/notices", notices, methods=["POST"]), Route("/healthz", healthz)], lifespan=lifespan)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build(os.environ["TAKEDOWN_DATABASE_URL"]), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)
