"""The enforcement_cases, enforcement_case_notices and enforcement_history tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain.enforcement import EnforcementCase, EnforcementStatus, EnforcementStep
from ..domain.organizations import OrganizationKind

COLUMNS = "c.id, c.reference, c.provider_id, c.status, c.opened_at, c.order_due_at, c.penalty_euros, c.version"
INSERT = f"""
    INSERT INTO enforcement_cases AS c (id, reference, provider_id, status, opened_at, updated_at)
    VALUES ($1, 'ENF-' || to_char($3::timestamptz AT TIME ZONE 'UTC', 'YYYY') || '-'
                || lpad(nextval('enforcement_reference_seq')::text, 6, '0'),
            $2, 'OPEN', $3, $3)
    RETURNING {COLUMNS}
"""
INSERT_NOTICES = """
    INSERT INTO enforcement_case_notices (case_id, notice_id, position)
    SELECT $1, n, p FROM unnest($2::uuid[]) WITH ORDINALITY AS x(n, p)
"""
INSERT_STEP = """
    INSERT INTO enforcement_history (case_id, position, at, status, actor_kind, note)
    VALUES ($1, coalesce((SELECT max(position) FROM enforcement_history WHERE case_id = $1), 0) + 1, $2, $3, $4, $5)
"""
GET_FOR_UPDATE = f"SELECT {COLUMNS} FROM enforcement_cases c WHERE c.id = $1 FOR UPDATE"
BY_IDS = f"SELECT {COLUMNS} FROM enforcement_cases c WHERE c.id = ANY($1::uuid[])"
UPDATE = """
    UPDATE enforcement_cases SET status = $2, order_due_at = $3, penalty_euros = $4, version = $5, updated_at = $6
    WHERE id = $1 AND version = $5 - 1
"""
HISTORY = """
    SELECT case_id, at, status, actor_kind, note FROM enforcement_history
    WHERE case_id = ANY($1::uuid[]) ORDER BY case_id, position
"""
NOTICE_IDS = """
    SELECT case_id, notice_id FROM enforcement_case_notices WHERE case_id = ANY($1::uuid[]) ORDER BY case_id, position
"""


def to_case(row: asyncpg.Record) -> EnforcementCase:
    return EnforcementCase(
        id=row["id"],
        reference=row["reference"],
        provider_id=row["provider_id"],
        status=EnforcementStatus(row["status"]),
        opened_at=row["opened_at"],
        order_due_at=row["order_due_at"],
        penalty_euros=row["penalty_euros"],
        version=row["version"],
    )


async def insert(
    conn: asyncpg.Connection, case_id: UUID, provider_id: UUID, notice_ids: Sequence[UUID], opened_at: datetime
) -> EnforcementCase:
    case = to_case(await conn.fetchrow(INSERT, case_id, provider_id, opened_at))
    await conn.execute(INSERT_NOTICES, case_id, list(notice_ids))
    return case


async def insert_step(conn: asyncpg.Connection, case_id: UUID, step: EnforcementStep) -> None:
    await conn.execute(INSERT_STEP, case_id, step.at, step.status.value, step.actor_kind.value, step.note)


async def get_for_update(conn: asyncpg.Connection, case_id: UUID) -> EnforcementCase | None:
    row = await conn.fetchrow(GET_FOR_UPDATE, case_id)
    return to_case(row) if row else None


async def update(conn: asyncpg.Connection, case: EnforcementCase, now: datetime) -> None:
    status = await conn.execute(
        UPDATE, case.id, case.status.value, case.order_due_at, case.penalty_euros, case.version, now
    )
    if status != "UPDATE 1":
        raise RuntimeError(f"enforcement case {case.id} changed under a held row lock")


async def by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[EnforcementCase | None]:
    found = {r["id"]: to_case(r) for r in await conn.fetch(BY_IDS, list(ids))}
    return [found.get(i) for i in ids]


async def history(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[EnforcementStep]]:
    grouped: dict[UUID, list[EnforcementStep]] = {i: [] for i in ids}
    for r in await conn.fetch(HISTORY, list(ids)):
        grouped[r["case_id"]].append(
            EnforcementStep(r["at"], EnforcementStatus(r["status"]), OrganizationKind(r["actor_kind"]), r["note"])
        )
    return [grouped[i] for i in ids]


async def notice_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[UUID]]:
    grouped: dict[UUID, list[UUID]] = {i: [] for i in ids}
    for r in await conn.fetch(NOTICE_IDS, list(ids)):
        grouped[r["case_id"]].append(r["notice_id"])
    return [grouped[i] for i in ids]


async def page(
    conn: asyncpg.Connection,
    *,
    only_provider: UUID | None,
    provider_id: UUID | None,
    statuses: Sequence[EnforcementStatus],
    after: UUID | None,
    limit: int,
) -> tuple[list[EnforcementCase], int]:
    """Newest first; `only_provider` is the viewer's scope (a company sees its own cases), `provider_id` the filter."""
    where = """
        ($1::uuid IS NULL OR c.provider_id = $1) AND ($2::uuid IS NULL OR c.provider_id = $2)
        AND (cardinality($3::text[]) = 0 OR c.status = ANY($3::text[]))
    """
    args = [only_provider, provider_id, [s.value for s in statuses]]
    total = await conn.fetchval(f"SELECT count(*) FROM enforcement_cases c WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM enforcement_cases c WHERE {where} AND ($4::uuid IS NULL OR c.id < $4)"
        " ORDER BY c.id DESC LIMIT $5",
        *args,
        after,
        limit,
    )
    return [to_case(r) for r in rows], int(total)
