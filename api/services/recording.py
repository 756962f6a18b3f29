"""What a creating command writes last, in its transaction: its idempotency keys, its events and
its audit entry. In that order: the events and the audit entry take the commit-order lock
(store/events.py), which is held until commit and which every other writer waits for, so they
come last and the lock is held for as short a time as the command allows."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from ..domain.events import Event
from ..domain.organizations import Viewer
from ..store import events
from ..store.idempotency import IdempotencyKey, record_keys


async def record_creation(
    conn: asyncpg.Connection,
    viewer: Viewer,
    *,
    operation: str,
    keyed: Sequence[IdempotencyKey],
    created: UUID,
    emitted: Sequence[Event],
    action: str,
    object_id: str,
) -> None:
    await record_keys(conn, viewer, operation, [(k, created, False) for k in keyed])
    await events.append_with_audit(conn, emitted, viewer, action, [object_id])
