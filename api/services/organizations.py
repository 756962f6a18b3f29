"""Creating organizations: a platform administrator's act, or the server's command line."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.errors import Conflict
from ..domain.ids import to_global_id, uuid7
from ..domain.organizations import Organization, OrganizationKind, Viewer, clean_country, clean_name
from ..store import audit
from ..store import organizations as store

COMMAND_LINE_SUBJECT = "takedown-cli"
KIND_CACHE_SIZE = 100_000  # organizations; far more than a country has


class OrganizationKinds:
    """Organization kinds seen by this process. An organization's kind never changes and no
    organization is deleted (nothing updates or deletes that table), so one read per organization
    per process is enough: authentication and reporting each make one round trip fewer."""

    def __init__(self, limit: int = KIND_CACHE_SIZE) -> None:
        self._known: dict[UUID, OrganizationKind] = {}
        self._limit = limit

    def get(self, organization_id: UUID) -> OrganizationKind | None:
        return self._known.get(organization_id)

    def unknown(self, organization_ids: set[UUID]) -> set[UUID]:
        return organization_ids - self._known.keys()

    def remember(self, kinds: Mapping[UUID, OrganizationKind]) -> None:
        if len(self._known) + len(kinds) <= self._limit:
            self._known.update(kinds)


async def create_organization(
    pool: asyncpg.Pool,
    viewer: Viewer | None,
    *,
    name: str,
    kind: OrganizationKind,
    country: str | None = None,
) -> Organization:
    """Create an organization; `viewer=None` is the trusted server command line."""
    if viewer is not None:
        access.require(viewer, access.Action.CREATE_ORGANIZATION)
    name = clean_name(name)
    country = clean_country(country)
    async with pool.acquire() as conn, conn.transaction():
        organization = await store.insert(conn, id=uuid7(), name=name, kind=kind, country=country)
        if organization is None:
            raise Conflict(f"an organization named {name!r} already exists")
        actor = viewer or Viewer(
            subject=COMMAND_LINE_SUBJECT,
            organization_id=organization.id,
            organization_kind=organization.kind,
            roles=frozenset(),
        )
        await audit.append(conn, actor, "organization.create", to_global_id("Organization", organization.id))
    return organization
