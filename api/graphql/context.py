"""The per-request GraphQL context: who asks, with what, and the request's DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from ..domain.errors import Unauthenticated
from ..domain.organizations import Organization, Viewer
from ..resources import Resources
from ..store import organizations


class Loaders:
    """Built per request (a global loader would cache across viewers and forever)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.organization = DataLoader[UUID, Organization | None](self._organizations)

    async def _organizations(self, ids: list[UUID]) -> list[Organization | None]:
        async with self.pool.acquire() as conn:
            return await organizations.by_ids(conn, ids)


@dataclass
class Context:
    resources: Resources
    request: Request | WebSocket
    response: Any
    viewer: Viewer | None
    loaders: Loaders
    # Set by strawberry's graphql-transport-ws handler before on_ws_connect.
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.resources.db

    def require_viewer(self) -> Viewer:
        if self.viewer is None:
            raise Unauthenticated("authentication is required")
        return self.viewer


Info = strawberry.Info[Context, None]
