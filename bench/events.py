"""Benchmark of the event backbone: commit -> subscriber latency (p50, p99) and relay throughput.

Not part of CI. Loopback only, bounded in count and time. It starts its own
embedded PostgreSQL and NATS in a temporary folder (or uses TAKEDOWN_DATABASE_URL
/ TAKEDOWN_NATS_URL), the API on a loopback port with one relay, and:

1. latency: a prosecutor subscribes over WebSocket; N notices are reported one
   at a time through the service layer; for each, the time from the commit
   (just after the command returned) to the subscription frame is measured.
2. throughput: with the relay stopped, M events pile up in the outbox; the relay
   is started and timed until all are acknowledged by JetStream and marked.

    .venv/bin/python bench/events.py [--events 1000] [--backlog 20000]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ would come first on the path; put the project root there instead.
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from api.app import create_app  # noqa: E402
from api.auth.keys import issue_token, load_signing_key  # noqa: E402
from api.cli import ensure_database, migrate_database  # noqa: E402
from api.domain.notices import ContentCategory  # noqa: E402
from api.domain.organizations import OrganizationKind, Role, Viewer  # noqa: E402
from api.protect import load_url_protector, new_key  # noqa: E402
from api.services.notices import NoticeCommands, ReportInput  # noqa: E402
from api.services.organizations import create_organization  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store.pool import create_pool  # noqa: E402
from infra.stack import EmbeddedNats, EmbeddedPostgres  # noqa: E402
from tests.eventing import GraphQLWs, Running, serve  # noqa: E402
from workers.relay import Relay  # noqa: E402

SUBSCRIBE = "subscription($f: EventFilter) { events(filter: $f) { cursor notice { id } } }"
TIME_LIMIT = 600.0


async def run(events: int, backlog: int, data: Path, batch: int) -> None:
    started: list[object] = []
    database_url = os.environ.get("TAKEDOWN_DATABASE_URL", "")
    nats_url = os.environ.get("TAKEDOWN_NATS_URL", "")
    if not database_url:
        postgres = EmbeddedPostgres(data / "postgres")
        postgres.start()
        started.append(postgres)
        name = f"bench_{secrets.token_hex(3)}"
        await ensure_database(postgres.dsn(), name)
        database_url = postgres.dsn(name)
    if not nats_url:
        server = EmbeddedNats(data / "nats")
        nats_url = server.start()
        started.append(server)
    try:
        await migrate_database(database_url)
        settings = Settings(
            env="test", database_url=database_url, nats_url=nats_url, data_dir=data,
            url_keys=f"b:{new_key()}", url_hmac_key=new_key(), rate_limit_per_minute=10**6, rate_limit_burst=10**6,
        )
        pool = await create_pool(settings)
        hotline = await create_organization(pool, None, name=f"Bench hotline {secrets.token_hex(3)}", kind=OrganizationKind.HOTLINE)
        company = await create_organization(pool, None, name=f"Bench company {secrets.token_hex(3)}", kind=OrganizationKind.COMPANY)
        prosecutor = await create_organization(pool, None, name=f"Bench prosecutor {secrets.token_hex(3)}", kind=OrganizationKind.PROSECUTOR)
        reporter = Viewer("bench", hotline.id, OrganizationKind.HOTLINE, frozenset({Role.ANALYST}))
        notices = NoticeCommands(pool, load_url_protector(settings))
        token = issue_token(load_signing_key(settings), settings, subject="bench", organization_id=str(prosecutor.id), roles=["MEMBER"])

        def one() -> list[ReportInput]:
            return [ReportInput(company.id, f"https://bench.example/{secrets.token_hex(8)}", ContentCategory.BASELINE_CSAM)]

        deadline = time.monotonic() + TIME_LIMIT
        relay = Running(Relay(settings, poll_seconds=1.0))
        await relay.__aenter__()
        async with serve(create_app(settings)) as address, GraphQLWs(address, token) as ws:
            await ws.subscribe(SUBSCRIBE, {"f": {"types": ["NOTICE_REPORTED"]}})
            for _ in range(100):  # until the subscription is live
                await notices.report(reporter, one())
                try:
                    await ws.events(1, timeout=1.0)
                    break
                except (TimeoutError, AssertionError):
                    continue
            latencies = []
            for _ in range(events):
                if time.monotonic() > deadline:
                    break
                await notices.report(reporter, one())
                committed = time.perf_counter()
                await ws.events(1, timeout=10)
                latencies.append(time.perf_counter() - committed)
        await relay.halt()

        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"commit -> subscriber over {len(latencies)} events: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")

        # Throughput: a backlog in the outbox, then the relay drains it.
        remaining = backlog
        while remaining > 0 and time.monotonic() < deadline:
            batch = min(1000, remaining)
            await notices.report(reporter, [one()[0] for _ in range(batch)])
            remaining -= batch
        async with pool.acquire() as conn:
            pending = await conn.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL")
        relay = Running(Relay(settings, poll_seconds=0.2, batch=batch))
        t0 = time.perf_counter()
        await relay.__aenter__()
        while time.monotonic() < deadline:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL") == 0:
                    break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        await relay.halt()
        print(f"relay throughput: {pending} events published and marked in {elapsed:.2f} s = {pending / elapsed:,.0f} events/s")
        await pool.close()
    finally:
        for service in reversed(started):
            service.stop()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000, help="latency samples (at most 20000)")
    parser.add_argument("--backlog", type=int, default=20000, help="events for the throughput run (at most 200000)")
    parser.add_argument("--batch", type=int, default=Settings.relay_batch, help="relay batch size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="takedown-bench-") as data:
        asyncio.run(run(min(args.events, 20000), min(args.backlog, 200000), Path(data), max(1, min(args.batch, 5000))))


if __name__ == "__main__":
    main()
