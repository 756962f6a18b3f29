"""The audit log: appended in the same transaction as what it records.

Chaining and append-only enforcement live in the database (migration 0001),
so this module only inserts and reads; `chain_intact` recomputes every link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg


class Actor(Protocol):
    """Whoever acted: a viewer, an API client at the token endpoint, the command line."""

    @property
    def organization_id(self) -> UUID: ...

    @property
    def subject(self) -> str: ...

APPEND = """
    INSERT INTO audit_log (organization_id, subject, action, object_id) VALUES ($1, $2, $3, $4)
"""
# One statement for many entries, in the given order. The chain trigger runs per row and
# sees the rows this statement inserted before it, so the links come out as with one
# INSERT each (1000 entries: one round trip instead of a thousand executions). ENTRIES is
# also the audit part of the statements that write a command's events with its entries
# (store/events.py, store/notices.py): `gate` names what must be read first (the commit-order
# lock, the inserted notice), the others are their parameters.
ENTRIES = """
    INSERT INTO audit_log (organization_id, subject, action, object_id)
    SELECT {organization}, {subject}, {action}, o.object_id
    FROM {gate} unnest({object_ids}::text[]) WITH ORDINALITY AS o (object_id, n) ORDER BY o.n
"""
APPEND_MANY = ENTRIES.format(organization="$1", subject="$2", action="$3", object_ids="$4", gate="")
PAGE = """
    SELECT seq, at, organization_id, subject, action, object_id, chain_hash FROM audit_log
    WHERE ($1::uuid IS NULL OR organization_id = $1)
      AND ($2::text IS NULL OR object_id = $2)
      AND ($3::bigint IS NULL OR seq > $3)
    ORDER BY seq
    LIMIT $4
"""
# Each entry is checked against its own content and its predecessor's stored
# hash; a window function does it in one pass without recursion.
CHAIN_BREAKS = """
    SELECT count(*) FROM (
        SELECT chain_hash, prev_hash,
               lag(chain_hash) OVER (ORDER BY seq) AS previous,
               row_number() OVER (ORDER BY seq) AS n,
               audit_log_canonical(prev_hash, at, organization_id, subject, action, object_id) AS expected
        FROM audit_log
    ) links
    WHERE chain_hash <> expected
       OR prev_hash <> CASE WHEN n = 1 THEN repeat('0', 64) ELSE previous END
"""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    organization_id: UUID
    subject: str
    action: str
    object_id: str
    chain_hash: str


async def append(conn: asyncpg.Connection, actor: Actor, action: str, object_id: str) -> None:
    await conn.execute(APPEND, actor.organization_id, actor.subject, action, object_id)


async def append_many(conn: asyncpg.Connection, actor: Actor, action: str, object_ids: list[str]) -> None:
    if len(object_ids) == 1:
        await append(conn, actor, action, object_ids[0])
    elif object_ids:
        await conn.execute(APPEND_MANY, actor.organization_id, actor.subject, action, object_ids)


async def page(
    conn: asyncpg.Connection, *, organization_id: UUID | None, object_id: str | None, after: int | None, limit: int
) -> list[AuditEntry]:
    rows = await conn.fetch(PAGE, organization_id, object_id, after, limit)
    return [AuditEntry(**dict(row)) for row in rows]


async def chain_intact(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(CHAIN_BREAKS) == 0)
