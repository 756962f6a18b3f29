"""Benchmark: reporting 1000 notices in one call, and reading a page of 50, over real HTTP.

    .venv/bin/python bench/notices.py [--runs 5] [--reads 300]

Starts its own PostgreSQL and NATS (or uses TAKEDOWN_DATABASE_URL / TAKEDOWN_NATS_URL),
a fresh database, and `takedown serve` on a loopback port; prints medians and
percentiles; stops everything it started. Bounded in count and time. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth.keys import issue_token, load_signing_key  # noqa: E402
from api.cli import ensure_database, migrate_database  # noqa: E402
from api.domain.ids import to_global_id  # noqa: E402
from api.domain.organizations import OrganizationKind  # noqa: E402
from api.protect import new_key  # noqa: E402
from api.services.organizations import create_organization  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store.pool import create_pool  # noqa: E402
from infra.stack import EmbeddedNats, EmbeddedPostgres, free_port  # noqa: E402

REPORT_MANY = "mutation($i: [ReportNoticeInput!]!) { reportNotices(inputs: $i) { results { deduplicated notice { id } } } }"
PAGE = """query($p: [ID!]) { notices(filter: {providerIds: $p}, first: 50) { totalCount edges { node {
  id reference status provider { name } history { toStatus at actorKind } } } } }"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(runs: int, reads: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="td-bench-"))
    started: list[EmbeddedPostgres | EmbeddedNats] = []
    server: subprocess.Popen[bytes] | None = None
    try:
        admin = os.environ.get("TAKEDOWN_DATABASE_URL")
        nats_url = os.environ.get("TAKEDOWN_NATS_URL")
        if not admin:
            postgres = EmbeddedPostgres(workdir / "pg")
            postgres.start()
            started.append(postgres)
            admin = postgres.dsn()
        if not nats_url:
            nats = EmbeddedNats(workdir / "nats")
            nats_url = nats.start()
            started.append(nats)
        name = f"bench_{secrets.token_hex(4)}"
        await ensure_database(admin, name)
        dsn = admin.rsplit("/", 1)[0] + f"/{name}"
        await migrate_database(dsn)

        env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
        env.update(
            TAKEDOWN_DATABASE_URL=dsn, TAKEDOWN_NATS_URL=nats_url, TAKEDOWN_DATA_DIR=str(workdir / "data"),
            TAKEDOWN_URL_KEYS=f"b1:{new_key()}", TAKEDOWN_URL_HMAC_KEY=new_key(), TAKEDOWN_LOG_LEVEL="WARNING",
            TAKEDOWN_RATE_LIMIT_PER_MINUTE="0", TAKEDOWN_MAX_BODY_BYTES=str(16 * 1024 * 1024),
        )
        settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("TAKEDOWN_")})
        pool = await create_pool(settings)
        hotline = await create_organization(pool, None, name="Bench Hotline", kind=OrganizationKind.HOTLINE)
        company = await create_organization(pool, None, name="Bench Host", kind=OrganizationKind.COMPANY)
        await pool.close()
        token = issue_token(load_signing_key(settings), settings, subject="bench", organization_id=str(hotline.id),
                            roles=["ANALYST", "MEMBER"])
        headers = {"Authorization": f"Bearer {token}"}
        provider = to_global_id("Organization", company.id)

        port = free_port()
        server = subprocess.Popen([str(Path(sys.executable).parent / "takedown"), "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/graphql"
        async with httpx.AsyncClient(timeout=120) as http:
            for _ in range(100):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)

            durations = []
            for run in range(runs + 1):
                inputs = [{"providerId": provider, "url": f"https://bench.example/{run}/{i}/{secrets.token_hex(4)}.jpg",
                           "category": "BASELINE_CSAM", "contentHashes": [{"algorithm": "SHA256", "value": secrets.token_hex(32)}]}
                          for i in range(1000)]
                start = time.perf_counter()
                response = await http.post(url, json={"query": REPORT_MANY, "variables": {"i": inputs}}, headers=headers)
                elapsed = time.perf_counter() - start
                assert "errors" not in response.json(), response.text[:500]
                if run:  # the first run warms caches
                    durations.append(elapsed)
            median = statistics.median(durations)
            print(f"reportNotices x1000: median {median:.3f} s ({1000 / median:,.0f} notices/s) over {runs} runs; "
                  f"min {min(durations):.3f} s, max {max(durations):.3f} s")

            latencies = []
            begin = time.perf_counter()
            for _ in range(reads):
                start = time.perf_counter()
                response = await http.post(url, json={"query": PAGE, "variables": {"p": [provider]}}, headers=headers)
                latencies.append(time.perf_counter() - start)
                assert len(response.json()["data"]["notices"]["edges"]) == 50
            total = time.perf_counter() - begin
            print(f"notices(first: 50) with provider and history, concurrency 1: {reads / total:,.0f} req/s, "
                  f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms "
                  f"over {reads} requests ({(runs + 1) * 1000} notices in the table)")
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        for service in reversed(started):
            service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reads", type=int, default=300)
    options = parser.parse_args()
    asyncio.run(asyncio.wait_for(main(min(options.runs, 50), min(options.reads, 5000)), timeout=600))
