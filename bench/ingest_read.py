"""Ingest and read, each beside its ceiling measured in the same run.

Ingest: reportNotices with 1000 inputs per call over HTTP (authentication, validation, encryption,
HMAC, one transaction with history, outbox and audit rows) against plain asyncpg inserting the
same notice and outbox rows with unnest in batches of 500; reportNotice singly at concurrency 16
against one plain transaction per row at concurrency 16.
Read: notices(first: 50) with provider and history at concurrency 1 and 32 against a bare
Starlette endpoint returning the same rows from the same pool (bench/bare.py), the two measured
in alternating slices (harness.alternating) so that the machine's drift falls on both.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg

from bench.harness import (
    ROOT,
    CpuMeter,
    Row,
    Sizes,
    Stack,
    alternating,
    load,
    median,
    served,
    takedown_serve,
)
from bench.loadgen import Client

REPORT_MANY = "mutation($i: [ReportNoticeInput!]!) { reportNotices(inputs: $i) { results { deduplicated notice { id } } } }"
REPORT_ONE = "mutation($i: ReportNoticeInput!) { reportNotice(input: $i) { deduplicated notice { id } } }"
PAGE = """query($p: [ID!]) { notices(filter: {providerIds: $p}, first: 50) { edges { node {
  id reference status provider { name } history { toStatus at actorKind } } } } }"""

RAW_NOTICES = """
    INSERT INTO notices (id, reference, status, category, provider_id, reporter_id, url_ciphertext, url_key_id, url_hmac,
                         reported_at, due_at)
    SELECT id, 'RAW-' || nextval('notice_reference_seq'), 'NOTIFIED', 'BASELINE_CSAM', $2, $3, c, 'raw', h, $4, $5
    FROM unnest($1::uuid[], $6::bytea[], $7::bytea[]) AS x(id, c, h)
"""
RAW_EVENTS = """
    INSERT INTO events (seq, id, subject, type, aggregate_id, aggregate_version, occurred_at, envelope)
    SELECT nextval('events_seq'), gen_random_uuid(), $2, 'nl.takedown.notice.reported.v1', id, 1, $3, $4::jsonb
    FROM unnest($1::uuid[]) AS x(id)
"""


def inputs(stack: Stack, count: int) -> list[dict[str, object]]:
    return [
        {"providerId": stack.provider_id, "url": f"https://bench.example/{secrets.token_hex(8)}.jpg", "category": "BASELINE_CSAM",
         "contentHashes": [{"algorithm": "SHA256", "value": secrets.token_hex(32)}]}
        for _ in range(count)
    ]


async def raw_bulk(stack: Stack, total: int) -> float:
    envelope = json.dumps({"specversion": "1.0", "data": {"status": "NOTIFIED", "reference": "x" * 16}})
    now = datetime.now(UTC)
    conn = await asyncpg.connect(stack.dsn)
    try:
        start = time.perf_counter()
        for _ in range(total // 500):
            ids = [uuid4() for _ in range(500)]
            async with conn.transaction():
                await conn.execute(RAW_NOTICES, ids, stack.company.id, stack.hotline.id, now, now + timedelta(days=1),
                                   [os.urandom(60) for _ in ids], [os.urandom(32) for _ in ids])
                await conn.execute(RAW_EVENTS, ids, f"td.notice.reported.{stack.company.id}", now, envelope)
        return total / (time.perf_counter() - start)
    finally:
        await conn.close()


async def raw_single(stack: Stack, total: int) -> float:
    envelope = json.dumps({"specversion": "1.0", "data": {"status": "NOTIFIED"}})
    now = datetime.now(UTC)
    pool = await asyncpg.create_pool(stack.dsn, min_size=16, max_size=16)
    try:
        async def one() -> None:
            notice_id = uuid4()
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(RAW_NOTICES, [notice_id], stack.company.id, stack.hotline.id, now, now + timedelta(days=1),
                                   [os.urandom(60)], [os.urandom(32)])
                await conn.execute(RAW_EVENTS, [notice_id], f"td.notice.reported.{stack.company.id}", now, envelope)

        result = await load(one, concurrency=16, requests=total, seconds=30)
        return result.rate
    finally:
        await pool.close()


def _below_target(raw_rate: float) -> str:
    """The target is absolute; when this machine's own ceiling is under it, the miss is the machine's."""
    if raw_rate >= 1000:
        return ""
    return (f"the raw ceiling measured here ({raw_rate:,.0f} tx/s, plain SQL) is itself under the 1,000/s target: "
            "nothing built on this database can meet it on this machine; the ratio is the figure to compare")


async def run(stack: Stack, sizes: Sizes) -> list[Row]:
    bulk_calls, bulk_size, singles, reads = sizes.bulk_calls, sizes.bulk_size, sizes.singles, sizes.reads
    rows: list[Row] = []
    headers = {"Authorization": f"Bearer {stack.hotline_token}"}
    async with served(stack.env, *takedown_serve()) as (base, api_process), Client(base) as http:
        async def post(query: str, variables: dict[str, object]) -> dict[str, object]:
            body = await http.post_json("/graphql", {"query": query, "variables": variables}, headers)
            if "errors" in body:
                raise RuntimeError(str(body["errors"])[:300])
            return body  # type: ignore[no-any-return]

        await post(REPORT_MANY, {"i": inputs(stack, bulk_size)})  # warm-up
        timings = []
        for _ in range(bulk_calls):
            batch = inputs(stack, bulk_size)
            start = time.perf_counter()
            await post(REPORT_MANY, {"i": batch})
            timings.append(time.perf_counter() - start)
        api_bulk = bulk_size / median(timings)
        raw_rate = await raw_bulk(stack, sizes.raw_rows)
        rows.append(Row(f"ingest reportNotices x{bulk_size}", f"{api_bulk:,.0f} notices/s ({median(timings):.2f} s/call)",
                        f"{raw_rate:,.0f} rows/s raw unnest+outbox", api_bulk / raw_rate, ">= 20%", api_bulk / raw_rate >= 0.20))

        await load(lambda: post(REPORT_ONE, {"i": inputs(stack, 1)[0]}), concurrency=16, requests=32)  # warm-up
        meter = CpuMeter({"API": [api_process.pid], "client": [os.getpid()]}, database=stack.dsn)
        await meter.start()
        singles_load = await load(lambda: post(REPORT_ONE, {"i": inputs(stack, 1)[0]}), concurrency=16, requests=singles)
        singles_cpu = await meter.per_request(singles_load.requests)
        raw_single_rate = await raw_single(stack, singles)
        rows.append(Row("ingest reportNotice, c16", f"{singles_load.rate:,.0f} mutations/s (p99 {singles_load.p(0.99):.0f} ms)",
                        f"{raw_single_rate:,.0f} tx/s raw", singles_load.rate / raw_single_rate, ">= 1,000/s",
                        singles_load.rate >= 1000, CpuMeter.describe(singles_cpu), _below_target(raw_single_rate)))

        page_vars: dict[str, object] = {"p": [stack.provider_id]}
        # The tables as autovacuum would have left them by now on a live system: statistics (without
        # them the planner guesses a handful of rows and both sides read pages by scanning), and the
        # vacuum the ingest's ~35,000 inserted rows are due (run by autovacuum during the reads, it
        # took CPU from both sides at random moments: the API's p99 at c32 was 111-127 ms with it,
        # 58-91 ms without, the bare endpoint's moved less).
        conn = await asyncpg.connect(stack.dsn)
        try:
            await conn.execute("VACUUM (ANALYZE)")
        finally:
            await conn.close()
        async with served(stack.env, sys.executable, str(ROOT / "bench" / "bare.py")) as (bare_base, bare_process), \
                Client(bare_base) as bare:
            async def bare_page() -> None:
                body = await bare.post_json("/notices", {"provider": str(stack.company.id)})
                assert len(body["data"]["notices"]["edges"]) == 50

            async def api_page() -> None:
                await post(PAGE, page_vars)

            for concurrency in (1, 32):
                await load(api_page, concurrency=concurrency, requests=20)  # warm-up
                await load(bare_page, concurrency=concurrency, requests=20)
                measured = await alternating({"api": (api_page, {"API": [api_process.pid]}),
                                              "bare": (bare_page, {"bare": [bare_process.pid]})},
                                             concurrency=concurrency, requests=reads, database=stack.dsn)
                (api, api_cpu), (baseline, bare_cpu) = measured["api"], measured["bare"]
                ratio = api.rate / baseline.rate
                target = ">= 40%" + (", p99 < 100 ms" if concurrency == 32 else "")
                met = ratio >= 0.40 and (concurrency != 32 or api.p(0.99) < 100)
                rows.append(Row(f"read notices(first: 50), c{concurrency}",
                                f"{api.rate:,.0f} req/s, p50 {api.p(0.5):.1f} ms, p99 {api.p(0.99):.1f} ms",
                                f"{baseline.rate:,.0f} req/s bare Starlette (p99 {baseline.p(0.99):.1f} ms)", ratio, target, met,
                                f"{CpuMeter.describe(api_cpu)}; bare side: {CpuMeter.describe(bare_cpu)}"))
    return rows


if __name__ == "__main__":
    from bench.harness import FULL, QUICK, print_table, stack

    async def main() -> None:
        async with stack() as s:
            print_table(await run(s, QUICK if "--quick" in sys.argv else FULL))

    asyncio.run(asyncio.wait_for(main(), timeout=900))
