"""The organizations table."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from ..domain.organizations import Organization, OrganizationKind

COLUMNS = "id, name, kind, country, created_at"
INSERT = f"""
    INSERT INTO organizations (id, name, kind, country) VALUES ($1, $2, $3, $4)
    ON CONFLICT DO NOTHING
    RETURNING {COLUMNS}
"""
BY_IDS = f"SELECT {COLUMNS} FROM organizations WHERE id = ANY($1::uuid[])"
BY_NAME = f"SELECT {COLUMNS} FROM organizations WHERE lower(name) = lower($1)"
ALL = f"SELECT {COLUMNS} FROM organizations WHERE ($1::text IS NULL OR kind = $1) ORDER BY name"


def _to_organization(row: asyncpg.Record) -> Organization:
    return Organization(
        id=row["id"],
        name=row["name"],
        kind=OrganizationKind(row["kind"]),
        country=row["country"],
        created_at=row["created_at"],
    )


async def insert(
    conn: asyncpg.Connection, *, id: UUID, name: str, kind: OrganizationKind, country: str | None
) -> Organization | None:
    """Insert; None when the name is taken (the unique index decides, not a racy pre-check)."""
    row = await conn.fetchrow(INSERT, id, name, kind.value, country)
    return _to_organization(row) if row else None


async def by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Organization | None]:
    """In key order, None where missing: the shape a DataLoader wants."""
    rows = await conn.fetch(BY_IDS, list(ids))
    found = {row["id"]: _to_organization(row) for row in rows}
    return [found.get(i) for i in ids]


async def get(conn: asyncpg.Connection, id: UUID) -> Organization | None:
    return (await by_ids(conn, [id]))[0]


async def by_name(conn: asyncpg.Connection, name: str) -> Organization | None:
    row = await conn.fetchrow(BY_NAME, name)
    return _to_organization(row) if row else None


async def all(conn: asyncpg.Connection, kind: OrganizationKind | None = None) -> list[Organization]:
    rows = await conn.fetch(ALL, kind.value if kind else None)
    return [_to_organization(row) for row in rows]
