"""Benchmark: the yearly statistics report over 100,000 notices (not part of the test suite).

    .venv/bin/python bench/statistics.py [--notices 100000] [--runs 7]

Uses TAKEDOWN_BENCH_DATABASE_URL (an admin DSN of a running PostgreSQL), or
starts an embedded PostgreSQL in a temporary folder and stops it at the end.
Creates a fresh database, inserts the notices with one set-based SQL
statement (reported over 2016-2018, twenty providers, four in five removed),
VACUUM ANALYZEs, then times, for 2017 grouped by PROVIDER:

- the raw SQL of the report (api/store/statistics.py),
- the service (api/services/statistics.py: SQL plus names and suppression),
- the GraphQL query through the in-process app (HTTP, auth, parsing included),

and prints the median and worst milliseconds of each, and the query plan.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app  # noqa: E402
from api.auth.keys import issue_token, load_signing_key  # noqa: E402
from api.cli import ensure_database, migrate_database  # noqa: E402
from api.domain.organizations import OrganizationKind, Role, Viewer  # noqa: E402
from api.domain.statistics import StatisticsGrouping  # noqa: E402
from api.services import statistics as service  # noqa: E402
from api.services.organizations import create_organization  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store import statistics as store  # noqa: E402
from api.store.pool import create_pool  # noqa: E402
from infra.stack import EmbeddedPostgres  # noqa: E402

FROM, TO = datetime(2017, 1, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC)
PROVIDERS = 20
INSERT = """
    INSERT INTO notices (id, reference, status, category, provider_id, reporter_id, url_ciphertext, url_key_id, url_hmac,
                         reported_at, due_at, acknowledged_at, removed_at, escalated_at)
    SELECT gen_random_uuid(), 'NTC-B-' || i, o.status, (ARRAY['BASELINE_CSAM', 'NATIONALLY_ILLEGAL', 'HARMFUL'])[1 + i % 3],
           ($1::uuid[])[1 + (i * 7919) % cardinality($1::uuid[])], $2, decode(md5(i::text), 'hex'), 'bench',
           decode(md5('u' || i), 'hex'), r.at, r.at + interval '24 hours', NULL,
           CASE WHEN o.status IN ('REMOVED', 'VERIFIED_OFFLINE') THEN r.at + (random() * 40 * 3600) * interval '1 second' END,
           CASE WHEN o.status = 'ESCALATED' THEN r.at + interval '48 hours' END
    FROM generate_series(1, $3) AS i,
         LATERAL (SELECT timestamptz '2016-01-01 00:00+00' + random() * interval '3 years' + i * interval '0' AS at) r,  -- i: one draw per row
         LATERAL (SELECT CASE WHEN i % 10 < 7 THEN 'REMOVED' WHEN i % 10 = 7 THEN 'VERIFIED_OFFLINE'
                              WHEN i % 10 = 8 THEN 'ESCALATED' ELSE 'NOTIFIED' END AS status) o
"""


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm up: plans, caches
    taken = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def line(name: str, taken: list[float]) -> str:
    return f"{name:<34} median {sorted(taken)[len(taken) // 2]:8.1f} ms   worst {max(taken):8.1f} ms   ({len(taken)} runs)"


async def bench(admin_dsn: str, count: int, runs: int, data_dir: Path) -> None:
    name = f"takedown_bench_{secrets.token_hex(4)}"
    await ensure_database(admin_dsn, name)
    base, _, rest = admin_dsn.rpartition("/")
    query = rest.partition("?")[2]
    dsn = f"{base}/{name}" + (f"?{query}" if query else "")
    await migrate_database(dsn)
    settings = Settings(env="development", database_url=dsn, nats_url="nats://127.0.0.1:1", data_dir=data_dir)
    pool = await create_pool(settings)
    try:
        providers = [
            await create_organization(pool, None, name=f"Bench Provider {i:02d}", kind=OrganizationKind.COMPANY, country="NL")
            for i in range(PROVIDERS)
        ]
        hotline = await create_organization(pool, None, name="Bench Hotline", kind=OrganizationKind.HOTLINE, country="NL")
        government = await create_organization(pool, None, name="Bench Ministry", kind=OrganizationKind.GOVERNMENT, country="NL")
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.execute(INSERT, [p.id for p in providers], hotline.id, count)
            await conn.execute("VACUUM ANALYZE notices")
            in_year = await conn.fetchval("SELECT count(*) FROM notices WHERE reported_at >= $1 AND reported_at < $2", FROM, TO)
        print(f"inserted {count} notices in {time.perf_counter() - started:.1f} s; {in_year} reported in 2017")

        now = datetime.now(UTC)
        sql = store.report_sql(StatisticsGrouping.PROVIDER, own_or_others=False)

        async def raw() -> None:
            async with pool.acquire() as conn:
                await conn.fetch(sql, FROM, TO, now)

        async def raw_with_work_mem() -> None:
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                await store.sort_in_memory(conn)
                await conn.fetch(sql, FROM, TO, now)

        viewer = Viewer("bench", government.id, OrganizationKind.GOVERNMENT, frozenset({Role.MEMBER}))

        async def through_service() -> None:
            await service.report(pool, viewer, start=FROM, end=TO, group_by=StatisticsGrouping.PROVIDER, now=now)

        print(line("raw SQL (2017, PROVIDER)", await timed(runs, raw)))
        print(line("raw SQL + work_mem (2017, PROVIDER)", await timed(runs, raw_with_work_mem)))
        print(line("service (2017, PROVIDER)", await timed(runs, through_service)))

        app = create_app(settings)
        token = issue_token(load_signing_key(settings), settings, subject="bench", organization_id=str(government.id), roles=["MEMBER"])
        document = """query($f: DateTime!, $t: DateTime!) { statistics(from: $f, to: $t, groupBy: PROVIDER) {
            rows { key notices removed removedWithinDeadline medianSecondsToRemoval p90SecondsToRemoval overdueNow escalated }
            totals { notices } } }"""
        async with LifespanManager(app, startup_timeout=30), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost", timeout=30
        ) as http:

            async def through_graphql() -> None:
                response = await http.post(
                    "/graphql",
                    json={"query": document, "variables": {"f": FROM.isoformat(), "t": TO.isoformat()}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                body = response.json()
                assert response.status_code == 200 and "errors" not in body, body
                assert len(body["data"]["statistics"]["rows"]) == PROVIDERS

            print(line("GraphQL over HTTP (2017, PROVIDER)", await timed(runs, through_graphql)))

        whole = store.report_sql(StatisticsGrouping.MONTH, own_or_others=False)

        async def all_months() -> None:
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                await store.sort_in_memory(conn)
                await conn.fetch(whole, datetime(2016, 1, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC), now)

        print(line(f"raw SQL (all {count}, MONTH)", await timed(runs, all_months)))

        async def all_providers() -> None:
            await service.report(
                pool, viewer, start=datetime(2016, 1, 1, tzinfo=UTC), end=datetime(2019, 1, 1, tzinfo=UTC),
                group_by=StatisticsGrouping.PROVIDER, now=now,
            )

        print(line(f"service (all {count}, PROVIDER)", await timed(runs, all_providers)))
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await store.sort_in_memory(conn)
            plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", FROM, TO, now)
        print("\n".join(r[0] for r in plan))
    finally:
        await pool.close()
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not 1 <= args.notices <= 2_000_000 or not 1 <= args.runs <= 100:
        parser.error("--notices 1..2000000, --runs 1..100")
    logging.disable(logging.ERROR)  # the app's NATS connection is refused on purpose: nothing here needs it
    with tempfile.TemporaryDirectory(prefix="takedown-bench-") as folder:
        admin = os.environ.get("TAKEDOWN_BENCH_DATABASE_URL")
        postgres = None
        if not admin:
            postgres = EmbeddedPostgres(Path(folder) / "postgres")
            admin = postgres.start()
        try:
            asyncio.run(asyncio.wait_for(bench(admin, args.notices, args.runs, Path(folder) / "data"), timeout=600))
        finally:
            if postgres is not None:
                postgres.stop()


if __name__ == "__main__":
    main()
