"""Live subscribers share one read of a notice per event (api/services/events.NoticeSnapshots)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from api.domain.ids import from_global_id
from api.domain.notices import NoticeStatus
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role, Viewer
from api.services.events import NoticeSnapshots, readable_live
from api.settings import Settings
from api.store import event_reads
from api.store.pool import create_pool
from tests.conftest import Factory, Member
from tests.notices_helpers import act, report


@pytest.fixture
async def reported(make: Factory) -> tuple[Member, str]:
    """A company and the global id of a notice reported to it."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    notice = await report(hotline, company.organization)
    return company, notice["id"]


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_concurrent_askers_share_one_read(pool: asyncpg.Pool, reported: tuple[Member, str]) -> None:
    _, notice_id = reported
    key = from_global_id(notice_id)[1]
    snapshots = NoticeSnapshots(pool)
    arrived = now()
    results = await asyncio.gather(*(snapshots.get([key], not_before=arrived) for _ in range(50)))
    assert snapshots.reads == 1
    assert all(r[key].status is NoticeStatus.NOTIFIED for r in results)


async def test_an_event_that_arrived_after_the_read_gets_a_fresh_one(pool: asyncpg.Pool, reported: tuple[Member, str]) -> None:
    company, notice_id = reported
    key = from_global_id(notice_id)[1]
    snapshots = NoticeSnapshots(pool)
    first = await snapshots.get([key], not_before=now())
    assert (await act(company, "acknowledge", notice_id))["data"]["result"]["status"] == "ACKNOWLEDGED"
    # The acknowledgement's own event arrives after the first read started: that read cannot be reused.
    second = await snapshots.get([key], not_before=now())
    assert snapshots.reads == 2
    assert first[key].status is NoticeStatus.NOTIFIED and second[key].status is NoticeStatus.ACKNOWLEDGED


async def test_a_read_older_than_max_age_is_not_reused(pool: asyncpg.Pool, reported: tuple[Member, str]) -> None:
    _, notice_id = reported
    key = from_global_id(notice_id)[1]
    snapshots = NoticeSnapshots(pool, max_age=0.05)
    arrived = now()
    await snapshots.get([key], not_before=arrived)
    await asyncio.sleep(0.1)
    await snapshots.get([key], not_before=arrived)
    assert snapshots.reads == 2


async def test_an_asker_that_leaves_does_not_cancel_the_read_others_wait_for(
    pool: asyncpg.Pool, reported: tuple[Member, str]
) -> None:
    _, notice_id = reported
    key = from_global_id(notice_id)[1]
    snapshots = NoticeSnapshots(pool)
    arrived = now()
    leaving = asyncio.create_task(snapshots.get([key], not_before=arrived))
    await asyncio.sleep(0)  # it has started the read
    staying = asyncio.create_task(snapshots.get([key], not_before=arrived))
    leaving.cancel()
    assert (await staying)[key].id == key
    assert leaving.cancelled() and snapshots.reads == 1


async def test_a_failed_read_reaches_its_askers_and_is_not_remembered(
    settings: Settings, pool: asyncpg.Pool, reported: tuple[Member, str]
) -> None:
    _, notice_id = reported
    key = from_global_id(notice_id)[1]
    closed = await create_pool(settings)
    await closed.close()
    snapshots = NoticeSnapshots(closed)
    arrived = now()
    outcomes = await asyncio.gather(*(snapshots.get([key], not_before=arrived) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, asyncpg.InterfaceError) for o in outcomes), outcomes
    snapshots.pool = pool  # PostgreSQL is back: the next asker reads again instead of getting the old error
    assert (await snapshots.get([key], not_before=arrived))[key].id == key
    assert snapshots.reads == 2


async def test_a_batch_of_live_events_is_not_served_a_read_older_than_its_last_event(
    make: Factory, pool: asyncpg.Pool
) -> None:
    """A prompt subscriber reads the notice for NOTICE_REPORTED alone; a slower one then gets
    REPORTED and ACKNOWLEDGED in one batch: it must not reuse the read made before the acknowledgement."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    viewer = Viewer("p", (await make.organization(K.PROSECUTOR)).id, K.PROSECUTOR, frozenset({Role.ANALYST}))
    notice_id = (await report(hotline, company.organization))["id"]
    key = from_global_id(notice_id)[1]
    snapshots = NoticeSnapshots(pool)

    reported_arrived = now()
    await snapshots.get([key], not_before=reported_arrived)
    assert (await act(company, "acknowledge", notice_id))["data"]["result"]["status"] == "ACKNOWLEDGED"
    acknowledged_arrived = now()

    async with pool.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM events WHERE aggregate_id = $1 ORDER BY seq", key)]
        records = [r for r in [await event_reads.by_id(conn, i) for i in ids] if r is not None]
    assert [r.key for r in records] == ["notice.reported", "notice.acknowledged"]
    delivered = await readable_live(pool, snapshots, viewer, records, arrived=[reported_arrived, acknowledged_arrived])
    assert [d.notice.notice.status for d in delivered if d.notice] == [NoticeStatus.ACKNOWLEDGED] * 2
    assert snapshots.reads == 2


async def test_a_read_cancelled_before_it_starts_leaves_no_one_waiting(pool: asyncpg.Pool, reported: tuple[Member, str]) -> None:
    """At shutdown the read task may be cancelled before its first step: its askers are cancelled, and
    the next asker reads again instead of waiting on a future nobody will settle."""
    _, notice_id = reported
    key = from_global_id(notice_id)[1]
    snapshots = NoticeSnapshots(pool)
    arrived = now()
    asker = asyncio.create_task(snapshots.get([key], not_before=arrived))
    await asyncio.sleep(0)  # the asker has created the read task, which has not run yet
    for task in list(snapshots._reading):
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asker
    assert (await asyncio.wait_for(snapshots.get([key], not_before=arrived), 5))[key].id == key
