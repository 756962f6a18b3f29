"""What authentication needs to know about a token's organization and client, in one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ..domain.organizations import OrganizationKind

FACTS = """
    SELECT o.kind,
           c.organization_id AS client_organization_id,
           c.revoked_at IS NOT NULL AS client_revoked
    FROM organizations o
    LEFT JOIN api_clients c ON c.client_id = $2
    WHERE o.id = $1
"""


@dataclass(frozen=True)
class ViewerFacts:
    kind: OrganizationKind
    client_organization_id: UUID | None
    client_revoked: bool


async def facts(conn: asyncpg.Connection, organization_id: UUID, client_id: str | None) -> ViewerFacts | None:
    row = await conn.fetchrow(FACTS, organization_id, client_id)
    if row is None:
        return None
    return ViewerFacts(OrganizationKind(row["kind"]), row["client_organization_id"], bool(row["client_revoked"]))
