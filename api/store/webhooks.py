"""Webhooks, their delivery jobs (one per webhook and event) and every delivery attempt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain.organizations import OrganizationKind

COLUMNS = "w.id, w.organization_id, w.url, w.event_types, w.secret_ciphertext, w.secret_key_id, w.active, w.created_at"
INSERT = f"""
    INSERT INTO webhooks AS w (id, organization_id, url, event_types, secret_ciphertext, secret_key_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING {COLUMNS}
"""
GET = f"SELECT {COLUMNS} FROM webhooks w WHERE w.id = $1 AND w.deleted_at IS NULL"
GET_MANY = f"SELECT {COLUMNS} FROM webhooks w WHERE w.id = ANY($1::uuid[])"
LIST = f"""
    SELECT {COLUMNS} FROM webhooks w
    WHERE w.deleted_at IS NULL AND ($1::uuid IS NULL OR w.organization_id = $1)
    ORDER BY w.created_at, w.id
"""
DELETE = "UPDATE webhooks SET active = false, deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL"
# Webhooks created after an event happened do not receive it: a new webhook starts now.
MATCHING = f"""
    SELECT {COLUMNS}, o.kind AS organization_kind FROM webhooks w JOIN organizations o ON o.id = w.organization_id
    WHERE w.active AND w.deleted_at IS NULL AND $1 = ANY(w.event_types) AND w.created_at <= $2
"""
INSERT_JOBS = """
    INSERT INTO webhook_jobs (webhook_id, event_id, event_seq, next_attempt_at)
    SELECT w, $2, $3, $4 FROM unnest($1::uuid[]) AS w
    ON CONFLICT (webhook_id, event_id) DO NOTHING
"""
# Claim due jobs, at most `per_endpoint` per webhook and none of a webhook that still
# has deliveries in flight here, by leasing them (next_attempt_at moves to the lease's
# end). The UPDATE re-checks under the row lock, so two workers never claim one job;
# a worker that dies mid-delivery leaves a lease that simply runs out.
CLAIM = """
    WITH ranked AS (
        SELECT webhook_id, event_id, next_attempt_at, event_seq,
               row_number() OVER (PARTITION BY webhook_id ORDER BY event_seq) AS n
        FROM webhook_jobs
        WHERE done_at IS NULL AND next_attempt_at <= $1 AND NOT (webhook_id = ANY($2::uuid[]))
    ), chosen AS (
        SELECT webhook_id, event_id FROM ranked WHERE n <= $4 ORDER BY next_attempt_at, event_seq LIMIT $5
    )
    UPDATE webhook_jobs j SET next_attempt_at = $3
    FROM chosen c
    WHERE j.webhook_id = c.webhook_id AND j.event_id = c.event_id AND j.done_at IS NULL AND j.next_attempt_at <= $1
    RETURNING j.webhook_id, j.event_id, j.event_seq, j.attempts, j.first_attempt_at
"""
RECORD_ATTEMPT = """
    INSERT INTO webhook_deliveries (webhook_id, event_id, attempt, at, response_status, succeeded, error, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
UPDATE_JOB = """
    UPDATE webhook_jobs SET attempts = $3, first_attempt_at = coalesce(first_attempt_at, $4),
        next_attempt_at = coalesce($5, next_attempt_at), done_at = $6, succeeded = $7
    WHERE webhook_id = $1 AND event_id = $2
"""
DELIVERIES = """
    SELECT webhook_id, event_id, attempt, at, response_status, succeeded FROM (
        SELECT d.*, row_number() OVER (PARTITION BY webhook_id ORDER BY at DESC, attempt DESC) AS n
        FROM webhook_deliveries d WHERE webhook_id = ANY($1::uuid[])
    ) ranked
    WHERE n <= $2
    ORDER BY webhook_id, at DESC, attempt DESC
"""


@dataclass(frozen=True)
class WebhookRow:
    id: UUID
    organization_id: UUID
    url: str
    event_types: tuple[str, ...]
    secret_ciphertext: bytes
    secret_key_id: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class Target:
    webhook: WebhookRow
    organization_kind: OrganizationKind


@dataclass(frozen=True)
class Job:
    webhook_id: UUID
    event_id: UUID
    event_seq: int
    attempts: int
    first_attempt_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    webhook_id: UUID
    event_id: UUID
    attempt: int
    at: datetime
    response_status: int | None
    succeeded: bool


def _row(r: asyncpg.Record) -> WebhookRow:
    return WebhookRow(
        r["id"], r["organization_id"], r["url"], tuple(r["event_types"]), r["secret_ciphertext"],
        r["secret_key_id"], r["active"], r["created_at"],
    )


async def insert(conn: asyncpg.Connection, row: WebhookRow) -> WebhookRow:
    r = await conn.fetchrow(
        INSERT, row.id, row.organization_id, row.url, list(row.event_types), row.secret_ciphertext, row.secret_key_id, row.created_at
    )
    return _row(r)


async def get(conn: asyncpg.Connection, webhook_id: UUID) -> WebhookRow | None:
    r = await conn.fetchrow(GET, webhook_id)
    return _row(r) if r else None


async def by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, WebhookRow]:
    return {r["id"]: _row(r) for r in await conn.fetch(GET_MANY, list(ids))}


async def listed(conn: asyncpg.Connection, organization_id: UUID | None) -> list[WebhookRow]:
    return [_row(r) for r in await conn.fetch(LIST, organization_id)]


async def delete(conn: asyncpg.Connection, webhook_id: UUID, at: datetime) -> bool:
    return str(await conn.execute(DELETE, webhook_id, at)).endswith(" 1")


async def matching(conn: asyncpg.Connection, event_type: str, occurred_at: datetime) -> list[Target]:
    rows = await conn.fetch(MATCHING, event_type, occurred_at)
    return [Target(_row(r), OrganizationKind(r["organization_kind"])) for r in rows]


async def insert_jobs(conn: asyncpg.Connection, webhook_ids: Sequence[UUID], event_id: UUID, seq: int, at: datetime) -> None:
    if webhook_ids:
        await conn.execute(INSERT_JOBS, list(webhook_ids), event_id, seq, at)


async def claim(
    conn: asyncpg.Connection, *, now: datetime, busy: Sequence[UUID], lease_until: datetime, per_endpoint: int, limit: int
) -> list[Job]:
    rows = await conn.fetch(CLAIM, now, list(busy), lease_until, per_endpoint, limit)
    return [Job(r["webhook_id"], r["event_id"], r["event_seq"], r["attempts"], r["first_attempt_at"]) for r in rows]


async def record_attempt(
    conn: asyncpg.Connection,
    job: Job,
    *,
    at: datetime,
    status: int | None,
    succeeded: bool,
    error: str | None,
    next_attempt_at: datetime | None,
) -> None:
    attempt = job.attempts + 1
    await conn.execute(RECORD_ATTEMPT, job.webhook_id, job.event_id, attempt, at, status, succeeded, error, next_attempt_at)
    done = at if succeeded or next_attempt_at is None else None
    await conn.execute(
        UPDATE_JOB, job.webhook_id, job.event_id, attempt, at, next_attempt_at, done, succeeded if done else None
    )


async def finish_without_attempt(conn: asyncpg.Connection, job: Job, at: datetime) -> None:
    """The webhook was deleted, or its organization may no longer see the event: nothing to send."""
    await conn.execute(UPDATE_JOB, job.webhook_id, job.event_id, job.attempts, None, None, at, None)


async def deliveries(conn: asyncpg.Connection, webhook_ids: Sequence[UUID], first: int) -> list[list[Delivery]]:
    rows = await conn.fetch(DELIVERIES, list(webhook_ids), first)
    grouped: dict[UUID, list[Delivery]] = {w: [] for w in webhook_ids}
    for r in rows:
        grouped[r["webhook_id"]].append(
            Delivery(r["webhook_id"], r["event_id"], r["attempt"], r["at"], r["response_status"], r["succeeded"])
        )
    return [grouped[w] for w in webhook_ids]
