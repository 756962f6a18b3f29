"""The relay's side of the events table: the unpublished rows, in commit order, and marking them published.

Rows are read by `published_at IS NULL ORDER BY seq` rather than from a high-water
mark, so nothing is skipped however publishing went before (see workers/relay.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

# Session-level: held by the one active relay for as long as its connection lives.
RELAY_LOCK = 7460210

TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
UNPUBLISHED = """
    SELECT seq, id, subject, envelope::text AS body FROM events
    WHERE published_at IS NULL AND seq > $2 ORDER BY seq LIMIT $1
"""
MARK = """
    UPDATE events SET published_at = clock_timestamp(), stream_seq = x.stream_seq
    FROM unnest($1::bigint[], $2::bigint[]) AS x(seq, stream_seq)
    WHERE events.seq = x.seq
"""
BACKLOG = "SELECT count(*) FROM events WHERE published_at IS NULL"


@dataclass(frozen=True)
class Pending:
    seq: int
    id: UUID
    subject: str
    body: str  # the CloudEvent as stored, published byte for byte


async def try_lock(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(TRY_LOCK, RELAY_LOCK))


async def unpublished(conn: asyncpg.Connection, limit: int, *, after: int = 0) -> list[Pending]:
    """The first `limit` unpublished rows in seq order, above `after` (rows up to it are being marked).

    Skipping up to `after` is safe because seq is drawn under the commit-order lock: once a
    row is visible, every lower seq is committed, so nothing can appear below it later.
    """
    return [Pending(r["seq"], r["id"], r["subject"], r["body"]) for r in await conn.fetch(UNPUBLISHED, limit, after)]


async def mark_published(conn: asyncpg.Connection, published: Sequence[tuple[int, int]]) -> None:
    """(outbox seq, stream seq) pairs."""
    if published:
        await conn.execute(MARK, [p[0] for p in published], [p[1] for p in published])


async def backlog(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(BACKLOG))
