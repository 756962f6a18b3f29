"""The per-request GraphQL context: who asks, with what, and the request's DataLoaders."""

from __future__ import annotations

import functools
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
    """Built per request: per HTTP request, per operation on a WebSocket, per event of a subscription
    (a global loader would cache across viewers and forever); each loader on first use (most
    requests use none or one).

    Each batches one kind of read into one query per request, so a page of notices
    with provider, history and hashes costs a fixed number of queries.

    They hold nothing of the request's context: a reference back to it (the viewer once came
    through the context's bound method) made every request a reference cycle, left with the
    request, its headers and the context to Python's cyclic collector.
    """

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.pool = resources.db
        self.protector = resources.protector
        self._by_name: dict[str, DataLoader[Any, Any]] = {}
        self._url: tuple[Viewer, DataLoader[Notice, str | None]] | None = None

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

    def url(self, viewer: Viewer) -> DataLoader[Notice, str | None]:
        """URL reads as `viewer`'s, batched and never cached: each read is decrypted and audited, also
        the second read of a URL on a WebSocket connection, whose loaders last as long as it does."""
        made = self._url
        if made is None or (made[0] is not viewer and made[0] != viewer):
            made = self._url = (viewer, DataLoader(functools.partial(read_urls, self.pool, self.protector, viewer), cache=False))
        return made[1]

    def keyed(self, name: str, read: Callable[[asyncpg.Connection, list[UUID]], Awaitable[list[T]]]) -> DataLoader[UUID, T]:
        """A loader created on first use, for the domains that batch by id (conferences, enforcement, alerts)."""
        if name not in self._by_name:
            self._by_name[name] = DataLoader[UUID, T](self._batch(read))
        return self._by_name[name]

    def _batch(self, read: Callable[[asyncpg.Connection, list[UUID]], Awaitable[list[T]]]) -> Callable[[list[UUID]], Awaitable[list[T]]]:
        pool = self.pool  # not self: these Loaders keep the loader made from this, a cycle through self

        async def load(keys: list[UUID]) -> list[T]:
            async with pool.acquire() as conn:
                return await read(conn, keys)

        return load


@dataclass
class Context:
    resources: Resources
    request: Request | WebSocket
    # strawberry's sub-response or WebSocket; None for a POST answered by GraphQLView.answer.
    # Nothing here sets a status or header through it.
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
