"""The events table: the transactional outbox.

Why a lock: the relay publishes in `seq` order and must never publish an event
while an earlier-numbered one is still uncommitted (it would be skipped, or
published out of order later). So `seq` is drawn under a transaction-scoped
advisory lock that is held to commit: numbers are handed out in commit order.
The audit log's chaining trigger takes the same lock for the same reason, so a
command that writes both waits once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from ..domain.events import Event
from . import audit
from .audit import Actor

COMMIT_ORDER_LOCK = 7460201  # shared with the audit_log_chain trigger (migration 0001)

# The commit-order lock and the rows in one statement: the lock is held until commit, so every
# round trip after taking it (and the API's scheduling delay before each) is spent holding up
# every other writer. nextval is evaluated on the joined rows (at the join's output, or after a
# sort where there is one), and no joined row exists before the materialized lock row does,
# whichever side the planner scans first: the numbers are still drawn under the lock. (No events:
# no statement, no lock, no number.)
_LOCK = "commit_order AS MATERIALIZED (SELECT pg_advisory_xact_lock($8))"
_INSERT_EVENTS = """
    INSERT INTO events (seq, id, subject, type, aggregate_id, aggregate_version, occurred_at, envelope)
    SELECT nextval('events_seq'), e.id, e.subject, e.type, e.aggregate_id, e.aggregate_version, e.occurred_at, e.envelope
    FROM commit_order,
         unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::int[], $6::timestamptz[], $7::jsonb[])
         WITH ORDINALITY AS e(id, subject, type, aggregate_id, aggregate_version, occurred_at, envelope, n)
    ORDER BY e.n
"""
INSERT = f"WITH {_LOCK} {_INSERT_EVENTS}"
# The events and the command's audit entries in one statement, so that from the lock to commit
# there is no round trip but COMMIT's own. The entries go in the given order, chained by the
# audit_log trigger (which takes the same lock), as store/audit.py's inserts are.
INSERT_WITH_AUDIT = f"""
    WITH {_LOCK}, event AS ({_INSERT_EVENTS}), audit AS ({
        audit.ENTRIES.format(organization="$9", subject="$10", action="$11", object_ids="$12", gate="commit_order,")
    })
    SELECT 1
"""


async def append(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Write events in the caller's transaction, numbered in commit order."""
    if not events:
        return
    await conn.execute(INSERT, *_arguments(events), COMMIT_ORDER_LOCK)


def _arguments(events: Sequence[Event]) -> tuple[list[Any], ...]:
    """$1 to $7 of INSERT and INSERT_WITH_AUDIT."""
    return (
        [e.id for e in events],
        [e.subject for e in events],
        [e.type for e in events],
        [e.aggregate_id for e in events],
        [e.aggregate_version for e in events],
        [e.occurred_at for e in events],
        [e.envelope() for e in events],
    )


async def append_with_audit(
    conn: asyncpg.Connection, events: Sequence[Event], actor: Actor, action: str, object_ids: Sequence[str]
) -> None:
    """The last writes of a command, in the caller's transaction: its events, numbered in commit
    order, and an audit entry `action` by `actor` for each of `object_ids`."""
    if not events:
        await audit.append_many(conn, actor, action, list(object_ids))
        return
    await conn.execute(
        INSERT_WITH_AUDIT,
        *_arguments(events),
        COMMIT_ORDER_LOCK,
        actor.organization_id,
        actor.subject,
        action,
        list(object_ids),
    )
