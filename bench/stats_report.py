"""Benchmark: the yearly statistics report over 100,000 notices, beside the raw SQL of the same aggregate.

    .venv/bin/python -m bench.stats_report [--quick]

In a fresh database of the benchmark stack, inserts the notices with one set-based SQL
statement (reported over 2016-2018, twenty providers, four in five removed), VACUUM ANALYZEs,
then times statistics(from: 2017, to: 2018, groupBy: PROVIDER) as a government member over HTTP
against `takedown serve` (authentication, parsing, service, names, suppression, JSON), and the
raw SQL the service runs (api/store/statistics.py, with its work_mem, in a read-only
transaction) on a plain asyncpg connection: the median of the runs, after one warm-up each.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from api.auth.keys import issue_token, load_signing_key
from api.domain.organizations import OrganizationKind
from api.domain.statistics import StatisticsGrouping
from api.services.organizations import create_organization
from api.store import statistics as store
from api.store.pool import create_pool
from bench.harness import Row, Sizes, Stack, median, server, takedown_serve

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


DOCUMENT = """query($f: DateTime!, $t: DateTime!) { statistics(from: $f, to: $t, groupBy: PROVIDER) {
    rows { key notices removed removedWithinDeadline medianSecondsToRemoval p90SecondsToRemoval overdueNow escalated }
    totals { notices } } }"""


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm up: plans, caches
    taken = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


async def run(stack: Stack, sizes: Sizes) -> list[Row]:
    pool = await create_pool(stack.settings)
    try:
        providers = [
            await create_organization(pool, None, name=f"Bench Provider {i:02d}", kind=OrganizationKind.COMPANY, country="NL")
            for i in range(PROVIDERS)
        ]
        government = await create_organization(pool, None, name="Bench Ministry", kind=OrganizationKind.GOVERNMENT, country="NL")
        async with pool.acquire() as conn:
            await conn.execute(INSERT, [p.id for p in providers], stack.hotline.id, sizes.statistics_notices)
            await conn.execute("VACUUM ANALYZE notices")
    finally:
        await pool.close()

    now = datetime.now(UTC)
    sql = store.report_sql(StatisticsGrouping.PROVIDER, own_or_others=False)
    conn = await asyncpg.connect(stack.dsn)
    try:
        async def raw() -> None:
            async with conn.transaction(readonly=True):
                await store.sort_in_memory(conn)
                await conn.fetch(sql, FROM, TO, now)

        raw_ms = median(await timed(sizes.statistics_runs, raw))
    finally:
        await conn.close()

    token = issue_token(load_signing_key(stack.settings), stack.settings, subject="bench", organization_id=str(government.id),
                        roles=["MEMBER"])
    async with server(stack.env, *takedown_serve()) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
        async def through_graphql() -> None:
            response = await http.post("/graphql", json={"query": DOCUMENT, "variables": {"f": FROM.isoformat(), "t": TO.isoformat()}},
                                       headers={"Authorization": f"Bearer {token}"})
            body = response.json()
            if response.status_code != 200 or "errors" in body or len(body["data"]["statistics"]["rows"]) != PROVIDERS:
                raise RuntimeError(str(body)[:300])

        api_ms = median(await timed(sizes.statistics_runs, through_graphql))
    return [Row(
        f"statistics(groupBy: PROVIDER), 1 year of {sizes.statistics_notices:,}",
        f"{api_ms:.1f} ms (GraphQL over HTTP, median of {sizes.statistics_runs})",
        f"{raw_ms:.1f} ms raw SQL", raw_ms / api_ms, "within 2x (>= 50%), < 200 ms", api_ms <= 2 * raw_ms and api_ms < 200,
    )]


if __name__ == "__main__":
    from bench.harness import FULL, QUICK, print_table, stack

    async def main() -> None:
        async with stack() as s:
            print_table(await run(s, QUICK if "--quick" in sys.argv else FULL))

    asyncio.run(asyncio.wait_for(main(), timeout=600))
