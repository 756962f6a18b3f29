"""Events and audit entries written last in a command's transaction, as commands write them, by
writers committing concurrently: events numbered in commit order without gaps (the lock is taken
in the events' own INSERT, api/store/events.py), each writer's rows together and in order, and the
audit chain intact."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from api.domain.events import Event
from api.domain.notices import ContentCategory
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role, Viewer
from api.protect import load_url_protector
from api.services.audit import chain_intact
from api.services.notices import NoticeCommands, ReportInput
from api.services.organizations import create_organization
from api.settings import Settings
from api.store import audit as audit_store
from api.store import events as events_store
from api.store import notices as notices_store
from api.store.idempotency import KEY_LOCK_ID, IdempotencyKey, claim_keys, record_keys
from api.store.pool import create_pool
from tests.conftest import Services, fresh_database


def event(writer: int, n: int) -> Event:
    return Event(id=uuid4(), aggregate="notice", name="reported", scope=f"w{writer}", aggregate_id=uuid4(),
                 aggregate_type="Notice", aggregate_version=n, occurred_at=datetime.now(UTC), actor_kind=K.HOTLINE,
                 data={"writer": writer, "n": n})


@pytest.mark.parametrize("together", [False, True], ids=["two statements", "append_with_audit"])
async def test_concurrent_writers_get_commit_ordered_numbers_and_an_intact_chain(
    services: Services, settings: Settings, together: bool
) -> None:
    pool = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        org = await create_organization(pool, None, name="Journal", kind=K.HOTLINE)
        actor = Viewer("journalist", org.id, K.HOTLINE, frozenset({Role.PLATFORM_ADMIN}))
        committed: list[int] = []

        async def writer(w: int) -> None:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await asyncio.sleep(random.random() / 50)
                    if together:
                        await events_store.append_with_audit(
                            conn, [event(w, n) for n in range(3)], actor, "journal.test", [f"w{w}-{n}" for n in range(2)])
                    else:
                        await events_store.append(conn, [event(w, n) for n in range(3)])
                        await audit_store.append_many(conn, actor, "journal.test", [f"w{w}-{n}" for n in range(2)])
                    await asyncio.sleep(random.random() / 50)  # others queue for the lock meanwhile
                committed.append(w)

        await asyncio.gather(*(writer(w) for w in range(12)))
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT seq, subject, aggregate_version FROM events ORDER BY seq")
            audited = [r["object_id"] for r in await conn.fetch(
                "SELECT object_id FROM audit_log WHERE action = 'journal.test' ORDER BY seq")]
        seqs = [r["seq"] for r in rows]
        assert seqs == list(range(seqs[0], seqs[0] + 36)), "numbered without gaps"
        order = [int(r["subject"].rsplit(".w", 1)[1]) for r in rows[::3]]
        assert order == committed, "numbered in commit order"
        assert [(r["subject"], r["aggregate_version"]) for r in rows] == [
            (f"td.notice.reported.w{w}", n) for w in order for n in range(3)]
        assert audited == [f"w{w}-{n}" for w in order for n in range(2)]
        assert await chain_intact(pool, actor)
    finally:
        await pool.close()


async def test_single_reports_in_one_statement_keep_numbering_keys_and_the_chain(services: Services, settings: Settings) -> None:
    """A single report is written in one statement outside a transaction (store/notices.py REPORT_ONE).
    Concurrently with batches and with each other, some repeating a URL or an idempotency key (those
    go on to the transactional path): one notice per URL, one event per notice, one audit entry per
    call, one key row per key, events numbered without gaps and never seen out of order by a reader
    polling as the relay does, and the chain intact."""
    pool = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        hotline = await create_organization(pool, None, name="Hotline", kind=K.HOTLINE)
        company = await create_organization(pool, None, name="Host", kind=K.COMPANY)
        reporter = Viewer("analyst", hotline.id, K.HOTLINE, frozenset({Role.ANALYST, Role.PLATFORM_ADMIN}))
        commands = NoticeCommands(pool, load_url_protector(settings))
        urls = [f"https://files.example-host.test/{n}.jpg" for n in range(12)]
        calls: list[list[ReportInput]] = []
        for n in range(36):
            key = f"key-{n % 4}" if n % 3 == 0 else None  # four keys, each given by three calls
            calls.append([ReportInput(company.id, urls[n % 12], ContentCategory.BASELINE_CSAM, idempotency_key=key)])
        for n in range(4):  # batches sharing URLs and a key with the singles
            calls.append([ReportInput(company.id, urls[(n + m) % 12], ContentCategory.BASELINE_CSAM,
                                      idempotency_key="key-0" if m == 0 else None) for m in range(3)])
        random.Random(7).shuffle(calls)
        holes: list[tuple[int, int]] = []
        done = asyncio.Event()

        async def read_as_the_relay_does() -> None:
            """Each read must continue the numbers without a hole: a hole is an event committed
            before an earlier-numbered one (numbers are not lost here: nothing aborts after taking one)."""
            async with pool.acquire() as conn:
                last = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events")
                while not done.is_set():
                    for row in await conn.fetch("SELECT seq FROM events WHERE seq > $1 ORDER BY seq", last):
                        if row["seq"] != last + 1:
                            holes.append((last, row["seq"]))
                        last = row["seq"]

        reader = asyncio.create_task(read_as_the_relay_does())
        try:
            results = await asyncio.gather(*(commands.report(reporter, call) for call in calls))
        finally:
            done.set()
            await reader
        assert holes == []

        by_key: dict[str, set[UUID]] = {}
        by_url: dict[str, set[UUID]] = {}
        for call, reported in zip(calls, results, strict=True):
            for given, result in zip(call, reported, strict=True):
                by_url.setdefault(given.url, set()).add(result.notice.id)
                if given.idempotency_key:
                    by_key.setdefault(given.idempotency_key, set()).add(result.notice.id)
        assert all(len(ids) == 1 for ids in by_key.values()), "a key always answers with its first result"
        answered = {notice_id for ids in by_url.values() for notice_id in ids}
        async with pool.acquire() as conn:
            stored = {r["id"] for r in await conn.fetch("SELECT id FROM notices")}
            seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM events WHERE type LIKE '%notice.reported%' ORDER BY seq")]
            audited = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'notice.report'")
            keys = await conn.fetchval("SELECT count(*) FROM idempotency_keys")
        assert stored == answered, "nothing written that no call answered with (a statement that fell back wrote nothing)"
        assert len(seqs) == len(stored)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "numbered without gaps"
        assert audited == sum(len(call) for call in calls)
        assert keys == len(by_key) == 4
        assert await chain_intact(pool, reporter)
    finally:
        await pool.close()



async def test_a_single_report_waits_for_its_key_before_it_holds_its_url(services: Services, settings: Settings) -> None:
    """The one-statement report takes its idempotency key's lock before its notice enters the
    open-URL index, as the transactional path does: a batch holding the key and then inserting the
    same URL goes through (in the other order each would wait for the other: a deadlock), and the
    single report then answers with the batch's notice."""
    pool = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        hotline = await create_organization(pool, None, name="Hotline", kind=K.HOTLINE)
        company = await create_organization(pool, None, name="Host", kind=K.COMPANY)
        reporter = Viewer("analyst", hotline.id, K.HOTLINE, frozenset({Role.ANALYST}))
        commands = NoticeCommands(pool, load_url_protector(settings))
        url = "https://files.example-host.test/contested.jpg"
        given = ReportInput(company.id, url, ContentCategory.BASELINE_CSAM, idempotency_key="ticket-1")
        async with pool.acquire() as batch, batch.transaction():
            key_lock_id = await batch.fetchval(
                f"SELECT {KEY_LOCK_ID.format(organization='$1::uuid', subject='$2', key='$3')}", hotline.id, "analyst", "ticket-1")
            assert await claim_keys(batch, reporter, "reportNotice", [IdempotencyKey("ticket-1", 0)]) == {}
            single = asyncio.create_task(commands.report(reporter, [given]))
            async with asyncio.timeout(10):
                while not await batch.fetchval(  # the single report waits for the key
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND (classid::bigint << 32 | objid::bigint) = $1",  # a bigint key, as pg_locks halves it
                    key_lock_id):
                    assert not single.done(), single
                    await asyncio.sleep(0.01)
            row = commands._new_row(reporter, commands._clean(0, given, single=True), datetime.now(UTC))
            inserted = await notices_store.insert_new(batch, [row])
            await record_keys(batch, reporter, "reportNotice", [(IdempotencyKey("ticket-1", 0), row.id, False)])
        (answer,) = await asyncio.wait_for(single, timeout=10)
        assert answer.notice.id == inserted[row.id].id
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM notices") == 1
    finally:
        await pool.close()
