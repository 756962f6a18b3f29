"""Events and audit entries written last in a command's transaction, as commands write them, by
writers committing concurrently: events numbered in commit order without gaps (the lock is taken
in the events' own INSERT, api/store/events.py), each writer's rows together and in order, and the
audit chain intact."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from uuid import uuid4

from api.domain.events import Event
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role, Viewer
from api.services.audit import chain_intact
from api.services.organizations import create_organization
from api.settings import Settings
from api.store import audit as audit_store
from api.store import events as events_store
from api.store.pool import create_pool
from tests.conftest import Services, fresh_database


def event(writer: int, n: int) -> Event:
    return Event(id=uuid4(), aggregate="notice", name="reported", scope=f"w{writer}", aggregate_id=uuid4(),
                 aggregate_type="Notice", aggregate_version=n, occurred_at=datetime.now(UTC), actor_kind=K.HOTLINE,
                 data={"writer": writer, "n": n})


async def test_concurrent_writers_get_commit_ordered_numbers_and_an_intact_chain(services: Services, settings: Settings) -> None:
    pool = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        org = await create_organization(pool, None, name="Journal", kind=K.HOTLINE)
        actor = Viewer("journalist", org.id, K.HOTLINE, frozenset({Role.PLATFORM_ADMIN}))
        committed: list[int] = []

        async def writer(w: int) -> None:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await asyncio.sleep(random.random() / 50)
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
