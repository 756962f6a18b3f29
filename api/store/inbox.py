"""The inbox: which consumer has handled which event (the tracking record of eventsourcing).

Written in the transaction of the handler's effect, so "recorded" and "done"
cannot disagree: a redelivered event finds its record and has no second effect.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

RECORD_ONCE = """
    INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)
    ON CONFLICT (consumer, event_id) DO NOTHING
    RETURNING true
"""


async def record_once(conn: asyncpg.Connection, consumer: str, event_id: UUID) -> bool:
    """True the first time this consumer sees the event; False for a redelivery."""
    return bool(await conn.fetchval(RECORD_ONCE, consumer, event_id))
