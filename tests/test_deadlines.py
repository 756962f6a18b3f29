"""The deadlines worker, driven by a controllable clock: NOTICE_OVERDUE once, escalation after the grace."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from api.domain.notices import ContentCategory, NoticeStatus, Transition
from api.domain.organizations import OrganizationKind, Role, Viewer
from api.protect import load_url_protector
from api.services import conferences
from api.services.notices import PLATFORM_ACTOR_KIND, NoticeCommands, ReportInput
from api.services.organizations import create_organization
from api.settings import Settings
from api.store import notices as notices_store
from api.store.pool import create_pool
from tests.conftest import Services, fresh_database
from workers.deadlines import DeadlinesWorker

REPORTED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def setup(services: Services, settings: Settings) -> AsyncIterator[tuple[DeadlinesWorker, NoticeCommands, Viewer, Viewer, asyncpg.Pool]]:
    # A database of its own: a pass at a far-future time would touch every open notice.
    mine = settings.with_overrides(database_url=await fresh_database(services), escalation_grace_hours=24)
    pool = await create_pool(mine)
    try:
        hotline = await create_organization(pool, None, name=f"Hotline {secrets.token_hex(3)}", kind=OrganizationKind.HOTLINE)
        company = await create_organization(pool, None, name=f"Company {secrets.token_hex(3)}", kind=OrganizationKind.COMPANY)
        reporter = Viewer("analyst", hotline.id, OrganizationKind.HOTLINE, frozenset({Role.ANALYST}))
        provider = Viewer("tns", company.id, OrganizationKind.COMPANY, frozenset({Role.ANALYST}))
        notices = NoticeCommands(pool, load_url_protector(mine))
        yield DeadlinesWorker(mine, pool, notices), notices, reporter, provider, pool
    finally:
        await pool.close()


async def report(notices: NoticeCommands, reporter: Viewer, provider: Viewer, count: int) -> list[UUID]:
    inputs = [ReportInput(provider.organization_id, f"https://h.example/{secrets.token_hex(6)}", ContentCategory.BASELINE_CSAM) for _ in range(count)]
    return [r.notice.id for r in await notices.report(reporter, inputs, reported_at=REPORTED)]


async def events_of(pool: asyncpg.Pool, notice_id: UUID) -> list[tuple[str, str | None]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT subject, envelope FROM events WHERE aggregate_id = $1 ORDER BY seq", notice_id)
    return [(r["subject"].split(".")[2], r["envelope"].get("tdactorkind")) for r in rows]


async def test_overdue_once_then_escalated_after_the_grace(setup: tuple[DeadlinesWorker, NoticeCommands, Viewer, Viewer, asyncpg.Pool]) -> None:
    worker, notices, reporter, provider, pool = setup
    waiting, acknowledged, removed = await report(notices, reporter, provider, 3)
    await notices.act(provider, acknowledged, Transition.ACKNOWLEDGE)
    await notices.act(provider, removed, Transition.REMOVE)

    before = await worker.run_once(REPORTED + timedelta(hours=23, minutes=59))
    assert (before.overdue, before.escalated) == (0, 0)

    due = REPORTED + timedelta(hours=24, seconds=1)
    assert (await worker.run_once(due)).overdue == 2
    assert (await worker.run_once(due + timedelta(hours=1))).overdue == 0  # once
    assert await events_of(pool, waiting) == [("reported", "HOTLINE"), ("overdue", None)]
    assert await events_of(pool, removed) == [("reported", "HOTLINE"), ("removed", "COMPANY")]

    # Acknowledged after the overdue event: still awaiting removal, so it is escalated too.
    almost = await worker.run_once(REPORTED + timedelta(hours=47, minutes=59))
    assert almost.escalated == 0
    after = await worker.run_once(REPORTED + timedelta(hours=48, seconds=1))
    assert after.escalated == 2
    assert (await worker.run_once(REPORTED + timedelta(hours=49))).escalated == 0

    async with pool.acquire() as conn:
        escalated = await notices_store.by_ids(conn, [waiting, acknowledged, removed])
        history = await notices_store.history(conn, [waiting])
        audit = await conn.fetch(
            "SELECT a.action, o.name FROM audit_log a JOIN organizations o ON o.id = a.organization_id WHERE a.subject = 'platform' ORDER BY a.seq"
        )
    assert [n.status for n in escalated if n] == [NoticeStatus.ESCALATED, NoticeStatus.ESCALATED, NoticeStatus.REMOVED]
    last = history[0][-1]
    assert (last.from_status, last.to_status, last.actor_kind) == (NoticeStatus.NOTIFIED, NoticeStatus.ESCALATED, PLATFORM_ACTOR_KIND)
    assert await events_of(pool, waiting) == [("reported", "HOTLINE"), ("overdue", None), ("escalated", "GOVERNMENT")]
    assert [r["action"] for r in audit] == ["notice.overdue", "notice.overdue", "notice.escalate", "notice.escalate"]
    assert {r["name"] for r in audit} == {"Takedown Exchange platform"}  # a real organization: the audit log can name it


async def test_a_notice_removed_in_time_is_left_alone(setup: tuple[DeadlinesWorker, NoticeCommands, Viewer, Viewer, asyncpg.Pool]) -> None:
    worker, notices, reporter, provider, pool = setup
    (notice,) = await report(notices, reporter, provider, 1)
    assert (await worker.run_once(REPORTED + timedelta(hours=25))).overdue == 1
    await notices.act(provider, notice, Transition.REMOVE)  # late, but before the grace ran out
    done = await worker.run_once(REPORTED + timedelta(days=5))
    assert (done.overdue, done.escalated) == (0, 0)
    assert [e[0] for e in await events_of(pool, notice)] == ["reported", "overdue", "removed"]


async def test_commitment_overdue_once(setup: tuple[DeadlinesWorker, NoticeCommands, Viewer, Viewer, asyncpg.Pool]) -> None:
    worker, _, reporter, provider, pool = setup
    organizer = Viewer("organizer", reporter.organization_id, OrganizationKind.HOTLINE, frozenset({Role.ORGANIZER, Role.ANALYST}))
    conference = await conferences.create_conference(
        pool, organizer, title="Conference", held_on=date(2026, 3, 1), participant_ids=[provider.organization_id],
        idempotency_key=None, now=REPORTED,
    )
    agreement = await conferences.create_agreement(
        pool, organizer, conference_id=conference.id, title="Agreement", description="Remove within a day",
        party_ids=[provider.organization_id], idempotency_key=None, now=REPORTED,
    )
    commitment = await conferences.add_commitment(
        pool, organizer, agreement_id=agreement.id, owner_id=provider.organization_id, title="Faster removal",
        description="Within 24 hours", due_on=date(2026, 3, 31), kpi=None, idempotency_key=None, now=REPORTED,
    )
    assert (await worker.run_once(datetime(2026, 3, 31, 23, 59, tzinfo=UTC))).commitments_overdue == 0
    assert (await worker.run_once(datetime(2026, 4, 1, 0, 1, tzinfo=UTC))).commitments_overdue == 1
    assert (await worker.run_once(datetime(2026, 4, 2, tzinfo=UTC))).commitments_overdue == 0
    async with pool.acquire() as conn:
        subjects = [r["subject"] for r in await conn.fetch("SELECT subject FROM events WHERE aggregate_id = $1 ORDER BY seq", commitment.id)]
    assert subjects == [f"td.commitment.added.{conference.id}", f"td.commitment.overdue.{conference.id}"]
