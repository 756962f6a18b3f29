"""Creating organizations: a platform administrator's act, or the server's command line."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.errors import Conflict
from ..domain.ids import to_global_id, uuid7
from ..domain.organizations import Organization, OrganizationKind, Viewer, clean_country, clean_name
from ..store import audit
from ..store import organizations as store

COMMAND_LINE_SUBJECT = "takedown-cli"
KNOWN_LIMIT = 100_000  # organizations; far more than a country has


class KnownOrganizations:
    """What this process has read of organizations. Nothing updates or deletes an organization (no
    statement does), so each is read once per process: authentication, the provider check of a
    report and the providers of a page of notices each make one round trip fewer."""

    def __init__(self, limit: int = KNOWN_LIMIT) -> None:
        self._kinds: dict[UUID, OrganizationKind] = {}
        self._records: dict[UUID, Organization] = {}
        self._limit = limit

    def kind(self, organization_id: UUID) -> OrganizationKind | None:
        return self._kinds.get(organization_id)

    def remember_kind(self, organization_id: UUID, kind: OrganizationKind) -> None:
        if len(self._kinds) < self._limit:
            self._kinds[organization_id] = kind

    def remembered(self, ids: Sequence[UUID]) -> list[Organization] | None:
        """All of them from memory, in key order; None when any has to be read."""
        records = self._records
        found: list[Organization] = []
        for organization_id in ids:
            organization = records.get(organization_id)
            if organization is None:
                return None
            found.append(organization)
        return found

    async def by_ids(self, conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Organization | None]:
        """In key order, None where missing (the shape of store.by_ids); only the unknown are read."""
        records = self._records
        unknown = sorted({i for i in ids if i not in records})
        fetched = {o.id: o for o in await store.by_ids(conn, unknown) if o is not None} if unknown else {}
        if len(records) + len(fetched) <= self._limit:
            records.update(fetched)
            for organization in fetched.values():
                self.remember_kind(organization.id, organization.kind)
        return [records.get(i) or fetched.get(i) for i in ids]


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
