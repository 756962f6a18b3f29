"""The per-request GraphQL context: who asks, with what, and the request's DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from ..domain.errors import Unauthenticated
from ..domain.notices import ContentHash, HistoryEntry, Notice
from ..domain.organizations import Organization, Viewer
from ..resources import Resources
from ..services.notice_reads import read_urls
from ..store import notices

T = TypeVar("T")


class Loaders:
    """Built per request (a global loader would cache across viewers and forever), each loader on
    first use (most requests use none or one).

    Each batches one kind of read into one query per request, so a page of notices
    with provider, history and hashes costs a fixed number of queries.
    """

    def __init__(self, resources: Resources, viewer: Callable[[], Viewer]) -> None:
        self.resources = resources
        self.pool = resources.db
        self.protector = resources.protector
        self.viewer = viewer
        self._by_name: dict[str, DataLoader[Any, Any]] = {}

    @cached_property
    def organization(self) -> DataLoader[UUID, Organization | None]:
        known = self.resources.organizations
        read = self._batch(known.by_ids)

        async def load(keys: list[UUID]) -> list[Organization | None]:
            """Without a connection when this process already knows them all (the usual case)."""
            remembered = known.remembered(keys)
            return list(remembered) if remembered is not None else await read(keys)

        return DataLoader(load)

    @cached_property
    def notice(self) -> DataLoader[UUID, Notice | None]:
        return DataLoader(self._batch(notices.by_ids))

    @cached_property
    def history(self) -> DataLoader[UUID, list[HistoryEntry]]:
        return DataLoader(self._batch(notices.history))

    @cached_property
    def hashes(self) -> DataLoader[UUID, list[ContentHash]]:
        return DataLoader(self._batch(notices.hashes))

    @cached_property
    def related(self) -> DataLoader[UUID, list[Notice]]:
        return DataLoader(self._batch(notices.related))

    @cached_property
    def url(self) -> DataLoader[Notice, str | None]:
        return DataLoader(self._urls, cache_key_fn=lambda n: n.id)

    def keyed(self, name: str, read: Callable[[asyncpg.Connection, list[UUID]], Awaitable[list[T]]]) -> DataLoader[UUID, T]:
        """A loader created on first use, for the domains that batch by id (conferences, enforcement, alerts)."""
        if name not in self._by_name:
            self._by_name[name] = DataLoader[UUID, T](self._batch(read))
        return self._by_name[name]

    def _batch(self, read: Callable[[asyncpg.Connection, list[UUID]], Awaitable[list[T]]]) -> Callable[[list[UUID]], Awaitable[list[T]]]:
        async def load(keys: list[UUID]) -> list[T]:
            async with self.pool.acquire() as conn:
                return await read(conn, keys)

        return load

    async def _urls(self, batch: list[Notice]) -> list[str | None]:
        return await read_urls(self.pool, self.protector, self.viewer(), batch)


@dataclass
class Context:
    resources: Resources
    request: Request | WebSocket
    response: Any
    viewer: Viewer | None
    loaders: Loaders
    # Set by strawberry's graphql-transport-ws handler before on_ws_connect.
    connection_params: dict[str, Any] | None = field(default=None)
    _now: datetime | None = field(default=None, repr=False)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.resources.db

    @property
    def now(self) -> datetime:
        """One clock reading per request, so `overdue` is consistent across a page."""
        if self._now is None:
            self._now = self.resources.clock()
        return self._now

    def require_viewer(self) -> Viewer:
        if self.viewer is None:
            raise Unauthenticated("authentication is required")
        return self.viewer


Info = strawberry.Info[Context, None]
