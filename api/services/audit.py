"""Reading the audit log: platform administrators see all of it, organization administrators their own."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.errors import BadUserInput, Forbidden
from ..domain.organizations import Viewer
from ..store import audit as store

MAX_PAGE = 500


@dataclass(frozen=True)
class AuditPage:
    entries: list[store.AuditEntry]
    has_next: bool


def _scope(viewer: Viewer) -> UUID | None:
    scope = access.audit_scope(viewer)
    if scope is None:
        raise Forbidden("the audit log is for platform and organization administrators")
    return scope.organization_id


async def read_log(
    pool: asyncpg.Pool, viewer: Viewer, *, object_id: str | None, first: int, after: int | None
) -> AuditPage:
    organization_id = _scope(viewer)
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}, got {first}")
    if object_id is not None and len(object_id) > 200:
        raise BadUserInput("objectId is longer than any id")
    async with pool.acquire() as conn:
        rows = await store.page(conn, organization_id=organization_id, object_id=object_id, after=after, limit=first + 1)
    return AuditPage(rows[:first], len(rows) > first)


async def chain_intact(pool: asyncpg.Pool, viewer: Viewer) -> bool:
    _scope(viewer)
    async with pool.acquire() as conn:
        return await store.chain_intact(conn)
