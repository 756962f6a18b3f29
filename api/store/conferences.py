"""Conferences, agreements, commitments, their history, and the KPI measures over notices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain.conferences import (
    KPI_WINDOW,
    Agreement,
    AgreementStatus,
    Commitment,
    CommitmentStatus,
    CommitmentUpdate,
    Conference,
    Kpi,
    KpiComparison,
    KpiMetric,
    Measures,
)
from ..domain.organizations import OrganizationKind

CONFERENCE = """
    SELECT c.id, c.title, c.held_on, c.organizer_id, c.created_at,
           coalesce(array_agg(p.organization_id ORDER BY p.position) FILTER (WHERE p.organization_id IS NOT NULL),
                    '{}') AS participant_ids
    FROM conferences c LEFT JOIN conference_participants p ON p.conference_id = c.id
"""
AGREEMENT = """
    SELECT a.id, a.conference_id, a.title, a.description, a.status, a.version,
           coalesce(array_agg(p.organization_id ORDER BY p.position) FILTER (WHERE p.organization_id IS NOT NULL),
                    '{}') AS party_ids
    FROM agreements a LEFT JOIN agreement_parties p ON p.agreement_id = a.id
"""
COMMITMENT = """
    SELECT m.id, m.agreement_id, m.conference_id, m.owner_id, m.title, m.description, m.due_on, m.status,
           m.progress, m.kpi_metric, m.kpi_comparison, m.kpi_target, m.version
    FROM commitments m
"""
# One pass over an owner's notices of the KPI window (as provider or as reporter).
# Share: of the notices whose outcome is known (removed, or past the deadline),
# those removed by their deadline; withdrawn notices were mistakes and do not count.
MEASURES = """
    WITH owners AS (SELECT unnest($1::uuid[]) AS owner_id),
    owned AS (
        SELECT o.owner_id, n.status, n.due_at, n.removed_at, n.reported_at
        FROM owners o JOIN notices n ON n.provider_id = o.owner_id
        WHERE n.reported_at > $2::timestamptz - $3::interval AND n.reported_at <= $2::timestamptz
        UNION ALL
        SELECT o.owner_id, n.status, n.due_at, n.removed_at, n.reported_at
        FROM owners o JOIN notices n ON n.reporter_id = o.owner_id
        WHERE n.reported_at > $2::timestamptz - $3::interval AND n.reported_at <= $2::timestamptz AND n.provider_id <> o.owner_id
    )
    SELECT owner_id,
           count(*) AS notices,
           count(*) FILTER (WHERE removed_at IS NOT NULL AND removed_at <= due_at AND status <> 'WITHDRAWN')::float8
             / nullif(count(*) FILTER (WHERE status <> 'WITHDRAWN' AND (removed_at IS NOT NULL OR due_at <= $2::timestamptz)), 0)
             AS share,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM removed_at - reported_at)::float8)
             FILTER (WHERE removed_at IS NOT NULL) AS median,
           count(*) FILTER (WHERE status IN ('NOTIFIED', 'ACKNOWLEDGED') AND due_at < $2::timestamptz) AS overdue
    FROM owned GROUP BY owner_id
"""


def to_conference(r: asyncpg.Record) -> Conference:
    return Conference(r["id"], r["title"], r["held_on"], r["organizer_id"], tuple(r["participant_ids"]), r["created_at"])


def to_agreement(r: asyncpg.Record) -> Agreement:
    return Agreement(
        r["id"], r["conference_id"], r["title"], r["description"], AgreementStatus(r["status"]), tuple(r["party_ids"]), r["version"]
    )


def to_commitment(r: asyncpg.Record) -> Commitment:
    kpi = (
        Kpi(KpiMetric(r["kpi_metric"]), KpiComparison(r["kpi_comparison"]), float(r["kpi_target"]))
        if r["kpi_metric"]
        else None
    )
    return Commitment(
        id=r["id"],
        agreement_id=r["agreement_id"],
        conference_id=r["conference_id"],
        owner_id=r["owner_id"],
        title=r["title"],
        description=r["description"],
        due_on=r["due_on"],
        status=CommitmentStatus(r["status"]),
        progress=r["progress"],
        kpi=kpi,
        version=r["version"],
    )


# ------------------------------------------------------------ conferences


async def insert_conference(conn: asyncpg.Connection, conference: Conference) -> None:
    await conn.execute(
        "INSERT INTO conferences (id, title, held_on, organizer_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        conference.id,
        conference.title,
        conference.held_on,
        conference.organizer_id,
        conference.created_at,
    )
    await conn.execute(
        """INSERT INTO conference_participants (conference_id, organization_id, position)
           SELECT $1, o, p FROM unnest($2::uuid[]) WITH ORDINALITY AS x(o, p)""",
        conference.id,
        list(conference.participant_ids),
    )


async def conferences_by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Conference | None]:
    rows = await conn.fetch(f"{CONFERENCE} WHERE c.id = ANY($1::uuid[]) GROUP BY c.id", list(ids))
    found = {r["id"]: to_conference(r) for r in rows}
    return [found.get(i) for i in ids]


async def all_conferences(conn: asyncpg.Connection) -> list[Conference]:
    rows = await conn.fetch(f"{CONFERENCE} GROUP BY c.id ORDER BY c.held_on DESC, c.id DESC")
    return [to_conference(r) for r in rows]


async def find_conference(conn: asyncpg.Connection, title: str, held_on: object) -> Conference | None:
    row = await conn.fetchrow(f"{CONFERENCE} WHERE c.title = $1 AND c.held_on = $2 GROUP BY c.id LIMIT 1", title, held_on)
    return to_conference(row) if row else None


# ------------------------------------------------------------- agreements


async def insert_agreement(conn: asyncpg.Connection, agreement: Agreement, created_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO agreements (id, conference_id, title, description, status, created_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        agreement.id,
        agreement.conference_id,
        agreement.title,
        agreement.description,
        agreement.status.value,
        created_at,
        agreement.version,
    )
    await conn.execute(
        """INSERT INTO agreement_parties (agreement_id, organization_id, position)
           SELECT $1, o, p FROM unnest($2::uuid[]) WITH ORDINALITY AS x(o, p)""",
        agreement.id,
        list(agreement.party_ids),
    )


async def agreements_by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Agreement | None]:
    rows = await conn.fetch(f"{AGREEMENT} WHERE a.id = ANY($1::uuid[]) GROUP BY a.id", list(ids))
    found = {r["id"]: to_agreement(r) for r in rows}
    return [found.get(i) for i in ids]


async def agreements_of(conn: asyncpg.Connection, conference_ids: Sequence[UUID]) -> list[list[Agreement]]:
    rows = await conn.fetch(
        f"{AGREEMENT} WHERE a.conference_id = ANY($1::uuid[]) GROUP BY a.id ORDER BY a.id", list(conference_ids)
    )
    grouped: dict[UUID, list[Agreement]] = {i: [] for i in conference_ids}
    for r in rows:
        grouped[r["conference_id"]].append(to_agreement(r))
    return [grouped[i] for i in conference_ids]


async def lock_agreement(conn: asyncpg.Connection, agreement_id: UUID) -> Agreement | None:
    if await conn.fetchval("SELECT id FROM agreements WHERE id = $1 FOR UPDATE", agreement_id) is None:
        return None
    return (await agreements_by_ids(conn, [agreement_id]))[0]


async def update_agreement(conn: asyncpg.Connection, agreement: Agreement) -> None:
    status = await conn.execute(
        "UPDATE agreements SET status = $2, version = $3 WHERE id = $1 AND version = $3 - 1",
        agreement.id,
        agreement.status.value,
        agreement.version,
    )
    if status != "UPDATE 1":
        raise RuntimeError(f"agreement {agreement.id} changed under a held row lock")


# ------------------------------------------------------------ commitments


async def insert_commitment(conn: asyncpg.Connection, commitment: Commitment, created_at: datetime) -> None:
    kpi = commitment.kpi
    await conn.execute(
        """INSERT INTO commitments (id, agreement_id, conference_id, owner_id, title, description, due_on, status,
                                    progress, kpi_metric, kpi_comparison, kpi_target, created_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        commitment.id,
        commitment.agreement_id,
        commitment.conference_id,
        commitment.owner_id,
        commitment.title,
        commitment.description,
        commitment.due_on,
        commitment.status.value,
        commitment.progress,
        kpi.metric.value if kpi else None,
        kpi.comparison.value if kpi else None,
        kpi.target if kpi else None,
        created_at,
        commitment.version,
    )


async def commitments_by_ids(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Commitment | None]:
    found = {r["id"]: to_commitment(r) for r in await conn.fetch(f"{COMMITMENT} WHERE m.id = ANY($1::uuid[])", list(ids))}
    return [found.get(i) for i in ids]


async def commitments_of(conn: asyncpg.Connection, agreement_ids: Sequence[UUID]) -> list[list[Commitment]]:
    rows = await conn.fetch(f"{COMMITMENT} WHERE m.agreement_id = ANY($1::uuid[]) ORDER BY m.id", list(agreement_ids))
    grouped: dict[UUID, list[Commitment]] = {i: [] for i in agreement_ids}
    for r in rows:
        grouped[r["agreement_id"]].append(to_commitment(r))
    return [grouped[i] for i in agreement_ids]


async def find_commitments(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID | None,
    statuses: Sequence[CommitmentStatus],
    overdue: bool | None,
    today: object,
) -> list[Commitment]:
    overdue_sql = "(m.due_on IS NOT NULL AND m.due_on < $3 AND m.status NOT IN ('DONE', 'WITHDRAWN'))"
    rows = await conn.fetch(
        f"""{COMMITMENT}
            WHERE ($1::uuid IS NULL OR m.owner_id = $1)
              AND (cardinality($2::text[]) = 0 OR m.status = ANY($2::text[]))
              AND ($4::bool IS NULL OR {overdue_sql} = $4)
            ORDER BY m.due_on NULLS LAST, m.id""",
        owner_id,
        [s.value for s in statuses],
        today,
        overdue,
    )
    return [to_commitment(r) for r in rows]


async def lock_commitment(conn: asyncpg.Connection, commitment_id: UUID) -> Commitment | None:
    row = await conn.fetchrow(f"{COMMITMENT} WHERE m.id = $1 FOR UPDATE", commitment_id)
    return to_commitment(row) if row else None


async def update_commitment(conn: asyncpg.Connection, commitment: Commitment) -> None:
    status = await conn.execute(
        "UPDATE commitments SET status = $2, progress = $3, version = $4 WHERE id = $1 AND version = $4 - 1",
        commitment.id,
        commitment.status.value,
        commitment.progress,
        commitment.version,
    )
    if status != "UPDATE 1":
        raise RuntimeError(f"commitment {commitment.id} changed under a held row lock")


async def insert_update(conn: asyncpg.Connection, commitment_id: UUID, update: CommitmentUpdate) -> None:
    await conn.execute(
        """INSERT INTO commitment_updates (commitment_id, position, at, status, progress, actor_kind, note)
           VALUES ($1, coalesce((SELECT max(position) FROM commitment_updates WHERE commitment_id = $1), 0) + 1,
                   $2, $3, $4, $5, $6)""",
        commitment_id,
        update.at,
        update.status.value,
        update.progress,
        update.actor_kind.value,
        update.note,
    )


async def updates(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[list[CommitmentUpdate]]:
    grouped: dict[UUID, list[CommitmentUpdate]] = {i: [] for i in ids}
    rows = await conn.fetch(
        """SELECT commitment_id, at, status, progress, actor_kind, note FROM commitment_updates
           WHERE commitment_id = ANY($1::uuid[]) ORDER BY commitment_id, position""",
        list(ids),
    )
    for r in rows:
        grouped[r["commitment_id"]].append(
            CommitmentUpdate(r["at"], CommitmentStatus(r["status"]), r["progress"], OrganizationKind(r["actor_kind"]), r["note"])
        )
    return [grouped[i] for i in ids]


async def measures(conn: asyncpg.Connection, owner_ids: Sequence[UUID], now: datetime) -> list[Measures]:
    rows = await conn.fetch(MEASURES, list(owner_ids), now, KPI_WINDOW)
    found = {
        r["owner_id"]: Measures(
            notices=r["notices"],
            share_removed_within_deadline=r["share"],
            median_seconds_to_removal=r["median"],
            overdue_notices=r["overdue"],
        )
        for r in rows
    }
    return [found.get(i, Measures(0, None, None, 0)) for i in owner_ids]


CLAIM_OVERDUE = """
    UPDATE commitments m SET overdue_notified_at = $2
    WHERE m.id IN (
        SELECT id FROM commitments
        WHERE due_on < $1 AND status IN ('PLANNED', 'IN_PROGRESS', 'AT_RISK', 'MISSED') AND overdue_notified_at IS NULL
        ORDER BY due_on, id LIMIT $3
        FOR UPDATE SKIP LOCKED
    )
    RETURNING m.id, m.agreement_id, m.conference_id, m.owner_id, m.title, m.description, m.due_on, m.status,
              m.progress, m.kpi_metric, m.kpi_comparison, m.kpi_target, m.version
"""


async def claim_overdue(conn: asyncpg.Connection, today: object, now: datetime, limit: int) -> list[Commitment]:
    """Mark (once) commitments whose due date has passed unfinished; concurrent passes skip each other's rows."""
    return [to_commitment(r) for r in await conn.fetch(CLAIM_OVERDUE, today, now, limit)]
