"""Demo data: every kind of organization, and notices whose yearly counts follow the reported growth."""

from __future__ import annotations

from api.protect import load_url_protector
from api.seed import DEMO, seed
from api.settings import Settings
from api.store.pool import create_pool
from tests.conftest import Services, fresh_database


async def test_seed_follows_the_growth_and_runs_once(services: Services, settings: Settings) -> None:
    isolated = settings.with_overrides(database_url=await fresh_database(services))
    pool = await create_pool(isolated)
    try:
        protector = load_url_protector(isolated)
        seeded = await seed(pool, protector)
        assert {o.kind for o, _ in seeded} == {d.kind for d in DEMO}
        async with pool.acquire() as conn:
            yearly = dict(await conn.fetch(
                "SELECT extract(year FROM reported_at)::int, count(*) FROM notices GROUP BY 1 ORDER BY 1"))
            statuses = dict(await conn.fetch("SELECT status, count(*) FROM notices GROUP BY 1"))
            overdue = await conn.fetchval(
                "SELECT count(*) FROM notices WHERE status IN ('NOTIFIED', 'ACKNOWLEDGED') AND due_at < now()")
            within = await conn.fetchval("SELECT avg((removed_at <= due_at)::int) FROM notices WHERE removed_at IS NOT NULL")
        assert list(yearly) == [2014, 2015, 2016, 2017]
        assert yearly[2014] < yearly[2015] < yearly[2016] < yearly[2017]
        assert 5 <= yearly[2017] / yearly[2014] <= 7, "about 3,000 to almost 18,000"
        assert {"VERIFIED_OFFLINE", "REMOVED", "ESCALATED", "WITHDRAWN"} <= set(statuses)
        assert statuses.get("REFUSED", 0) + statuses["ESCALATED"] > 0
        assert overdue > 0
        assert 0.7 < within < 0.95, "most, not all, removed within the deadline"

        await seed(pool, protector)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM notices") == sum(yearly.values()), "seeding twice adds nothing"
            row = await conn.fetchrow("SELECT id, url_ciphertext, url_key_id FROM notices LIMIT 1")
        assert protector.decrypt(row["id"], bytes(row["url_ciphertext"]), row["url_key_id"]).startswith("https://")
    finally:
        await pool.close()
