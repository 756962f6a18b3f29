"""The api_clients table: OAuth2 clients registered per organization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain.organizations import Role

COLUMNS = "id, organization_id, name, client_id, secret_hash, roles, created_at, revoked_at"
INSERT = f"""
    INSERT INTO api_clients (id, organization_id, name, client_id, secret_hash, roles)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING {COLUMNS}
"""
BY_ID = f"SELECT {COLUMNS} FROM api_clients WHERE id = $1"
BY_CLIENT_ID = f"SELECT {COLUMNS} FROM api_clients WHERE client_id = $1"
FOR_ORGANIZATION = f"""
    SELECT {COLUMNS} FROM api_clients
    WHERE ($1::uuid IS NULL OR organization_id = $1)
    ORDER BY created_at, id
"""
REVOKE = f"""
    UPDATE api_clients SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
    RETURNING {COLUMNS}
"""


@dataclass(frozen=True)
class ApiClientRow:
    id: UUID
    organization_id: UUID
    name: str
    client_id: str
    secret_hash: bytes
    roles: frozenset[Role]
    created_at: datetime
    revoked_at: datetime | None


def _to_client(row: asyncpg.Record) -> ApiClientRow:
    return ApiClientRow(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        client_id=row["client_id"],
        secret_hash=bytes(row["secret_hash"]),
        roles=frozenset(Role(r) for r in row["roles"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def insert(
    conn: asyncpg.Connection,
    *,
    id: UUID,
    organization_id: UUID,
    name: str,
    client_id: str,
    secret_hash: bytes,
    roles: frozenset[Role],
) -> ApiClientRow:
    row = await conn.fetchrow(INSERT, id, organization_id, name, client_id, secret_hash, sorted(r.value for r in roles))
    assert row is not None
    return _to_client(row)


async def get(conn: asyncpg.Connection, id: UUID) -> ApiClientRow | None:
    row = await conn.fetchrow(BY_ID, id)
    return _to_client(row) if row else None


async def by_client_id(conn: asyncpg.Connection, client_id: str) -> ApiClientRow | None:
    row = await conn.fetchrow(BY_CLIENT_ID, client_id)
    return _to_client(row) if row else None


async def for_organization(conn: asyncpg.Connection, organization_id: UUID | None) -> list[ApiClientRow]:
    """The clients of one organization, or of all when None (platform administration)."""
    return [_to_client(row) for row in await conn.fetch(FOR_ORGANIZATION, organization_id)]


async def revoke(conn: asyncpg.Connection, id: UUID) -> ApiClientRow | None:
    row = await conn.fetchrow(REVOKE, id)
    return _to_client(row) if row else None
