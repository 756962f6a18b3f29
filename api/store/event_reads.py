"""Reading the events table for viewers: pages in commit order, pre-filtered in SQL.

The SQL narrows (a company reads only subjects scoped to its own id or to a
conference it takes part in); the access policy then decides per event
(api/services/events.py), so the SQL may let through more, never less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

CONFERENCE_SCOPED = ("conference", "agreement", "commitment")

PAGE = """
    SELECT seq, id, subject, occurred_at, envelope FROM events
    WHERE seq > $1
      AND ($2::text IS NULL
           OR split_part(subject, '.', 4) = $2
           OR (split_part(subject, '.', 2) = ANY($3::text[]) AND split_part(subject, '.', 4) = ANY($4::text[])))
      AND ($5::text[] IS NULL OR split_part(subject, '.', 2) || '.' || split_part(subject, '.', 3) = ANY($5::text[]))
      AND ($6::text[] IS NULL
           OR (split_part(subject, '.', 2) IN ('notice', 'enforcement') AND split_part(subject, '.', 4) = ANY($6::text[])))
      AND ($7::bigint IS NULL OR seq <= $7)
    ORDER BY seq
    LIMIT $8
"""
HEAD = "SELECT coalesce(max(seq), 0) FROM events"
BY_SEQS = "SELECT seq, id, subject, occurred_at, envelope FROM events WHERE seq = ANY($1::bigint[]) ORDER BY seq"
CONFERENCES_OF = """
    SELECT id FROM conferences WHERE organizer_id = $1
    UNION SELECT conference_id FROM conference_participants WHERE organization_id = $1
"""
CONFERENCE_ACCESS = """
    SELECT c.id, c.organizer_id,
           coalesce(array_agg(p.organization_id) FILTER (WHERE p.organization_id IS NOT NULL), '{}') AS participant_ids
    FROM conferences c LEFT JOIN conference_participants p ON p.conference_id = c.id
    WHERE c.id = ANY($1::uuid[])
    GROUP BY c.id, c.organizer_id
"""


@dataclass(frozen=True)
class EventRecord:
    seq: int
    id: UUID
    subject: str
    occurred_at: datetime
    envelope: dict[str, Any]

    @property
    def aggregate(self) -> str:
        return self.subject.split(".")[1]

    @property
    def name(self) -> str:
        return self.subject.split(".")[2]

    @property
    def scope(self) -> str:
        return self.subject.split(".", 3)[3]

    @property
    def key(self) -> str:
        """`notice.reported`: the GraphQL EventType NOTICE_REPORTED in the subject's spelling."""
        return f"{self.aggregate}.{self.name}"

    @property
    def data(self) -> dict[str, Any]:
        data = self.envelope.get("data")
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class EventQuery:
    """What a viewer asks for, already narrowed by who it is."""

    own_scope: str | None = None  # a company: only subjects scoped to its own id ...
    conference_ids: tuple[str, ...] = ()  # ... or to a conference it organizes or joins
    keys: tuple[str, ...] | None = None  # notice.reported, ...
    provider_ids: tuple[str, ...] | None = None


def to_record(row: asyncpg.Record) -> EventRecord:
    return EventRecord(row["seq"], row["id"], row["subject"], row["occurred_at"], row["envelope"])


async def page(
    conn: asyncpg.Connection, query: EventQuery, *, after: int, limit: int, until: int | None = None
) -> list[EventRecord]:
    rows = await conn.fetch(
        PAGE,
        after,
        query.own_scope,
        list(CONFERENCE_SCOPED),
        list(query.conference_ids),
        list(query.keys) if query.keys is not None else None,
        list(query.provider_ids) if query.provider_ids is not None else None,
        until,
        limit,
    )
    return [to_record(r) for r in rows]


async def head(conn: asyncpg.Connection) -> int:
    """The highest committed position: everything at or below it is visible to this reader."""
    return int(await conn.fetchval(HEAD))


async def by_seqs(conn: asyncpg.Connection, seqs: Sequence[int]) -> list[EventRecord]:
    return [to_record(r) for r in await conn.fetch(BY_SEQS, list(seqs))]


async def conferences_of(conn: asyncpg.Connection, organization_id: UUID) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(CONFERENCES_OF, organization_id)]


async def conference_access(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, tuple[UUID, frozenset[UUID]]]:
    rows = await conn.fetch(CONFERENCE_ACCESS, list(ids))
    return {r["id"]: (r["organizer_id"], frozenset(r["participant_ids"])) for r in rows}


BY_ID = "SELECT seq, id, subject, occurred_at, envelope FROM events WHERE id = $1"


async def by_id(conn: asyncpg.Connection, event_id: UUID) -> EventRecord | None:
    row = await conn.fetchrow(BY_ID, event_id)
    return to_record(row) if row else None
