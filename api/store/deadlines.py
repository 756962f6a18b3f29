"""What the deadlines worker looks for: notices past their deadline, and past deadline plus grace."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

# Both scans use notices_open_due_idx (migration 0002): open notices by due date.
OVERDUE = """
    SELECT id FROM notices
    WHERE status IN ('NOTIFIED', 'ACKNOWLEDGED') AND due_at < $1 AND overdue_notified_at IS NULL
    ORDER BY due_at LIMIT $2
"""
TO_ESCALATE = """
    SELECT id FROM notices
    WHERE status IN ('NOTIFIED', 'ACKNOWLEDGED') AND due_at < $1::timestamptz - $2::interval
    ORDER BY due_at LIMIT $3
"""
# The once-only guard: whoever sets overdue_notified_at emits the event.
CLAIM_OVERDUE = """
    UPDATE notices SET overdue_notified_at = $2
    WHERE id = $1 AND overdue_notified_at IS NULL AND status IN ('NOTIFIED', 'ACKNOWLEDGED') AND due_at < $2
"""


async def overdue(conn: asyncpg.Connection, now: datetime, limit: int) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(OVERDUE, now, limit)]


async def to_escalate(conn: asyncpg.Connection, now: datetime, grace: timedelta, limit: int) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(TO_ESCALATE, now, grace, limit)]


async def claim_overdue(conn: asyncpg.Connection, notice_id: UUID, now: datetime) -> bool:
    return str(await conn.execute(CLAIM_OVERDUE, notice_id, now)) == "UPDATE 1"
