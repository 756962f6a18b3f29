"""The victim-alert matcher: when a notice reaches REMOVED or VERIFIED_OFFLINE, tell the holders of matching alerts.

A match is recorded once per (alert, notice) (the table's primary key), with
its VICTIM_ALERT_MATCHED event row written in the same transaction, so a
redelivered event, or a notice removed twice (it reappeared), records nothing
new and emits nothing twice. The event goes to the holder alone
(subject td.victim_alert.matched.<holder id>) and names the alert and the
notice, never the victim token or the hashes.

`handle` takes a pool or a connection (in the caller's transaction), so tests
call it directly; `VictimAlertsWorker` runs it as a durable JetStream consumer
through workers/runner.py (which records each event id in its inbox in the same
transaction, so a redelivery is acked untouched).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from api.domain.errors import BadUserInput
from api.domain.ids import from_global_id
from api.domain.victim_alerts import MATCHING_STATUSES
from api.messaging.nats import ConsumerSpec
from api.services.victim_alerts import match_removed_notice
from api.settings import Settings

from .runner import Runner

NAME = "victim-alerts"
DURABLE = "victim-alerts"
# One JetStream filter subject per consumer here: the notice events, of which `handle` takes these types only.
CONSUMER_FILTER = "td.notice.>"
TYPES = frozenset({"nl.takedown.notice.removed.v1", "nl.takedown.notice.verified.v1"})


class HasEnvelope(Protocol):
    @property
    def envelope(self) -> dict[str, Any]: ...


def _notice_id(envelope: dict[str, Any]) -> Any:
    if envelope.get("type") not in TYPES:
        return None
    data = envelope.get("data") or {}
    if data.get("status") not in MATCHING_STATUSES:
        return None
    try:
        type_name, key = from_global_id(str(data.get("noticeId", "")))
    except BadUserInput:
        return None
    return key if type_name == "Notice" else None


async def handle(
    conn_or_pool: asyncpg.Connection | asyncpg.Pool, envelope: dict[str, Any], *, now: datetime | None = None
) -> int:
    """Match the removed notice of one event; returns how many matches were new."""
    notice_id = _notice_id(envelope)
    if notice_id is None:
        return 0
    at = now or datetime.now(UTC)
    if isinstance(conn_or_pool, asyncpg.Pool):
        async with conn_or_pool.acquire() as conn, conn.transaction():
            return await match_removed_notice(conn, notice_id, now=at)
    async with conn_or_pool.transaction():
        return await match_removed_notice(conn_or_pool, notice_id, now=at)


async def handler(conn: asyncpg.Connection, received: HasEnvelope) -> None:
    """For workers/runner.py: it runs this in its own transaction, beside its inbox record."""
    await handle(conn, received.envelope)


class VictimAlertsWorker:
    name = NAME

    def __init__(self, settings: Settings, pool: asyncpg.Pool, *, spec: ConsumerSpec | None = None) -> None:
        self.runner = Runner(
            settings,
            pool,
            spec or ConsumerSpec(DURABLE, filter_subject=CONSUMER_FILTER, ack_wait_seconds=settings.worker_ack_wait_seconds),
            handler,
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.runner.run(stop)
