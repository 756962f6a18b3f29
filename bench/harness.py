"""What every benchmark needs: its own stack and database, organizations and tokens, a server
subprocess on a loopback port, a bounded load generator, and percentiles.

Everything started here is stopped on the way out. Nothing here is used by the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth.keys import issue_token, load_signing_key  # noqa: E402
from api.cli import ensure_database, migrate_database  # noqa: E402
from api.domain.ids import to_global_id  # noqa: E402
from api.domain.organizations import Organization, OrganizationKind  # noqa: E402
from api.protect import new_key  # noqa: E402
from api.services.organizations import create_organization  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.store.pool import create_pool  # noqa: E402
from infra.stack import EmbeddedNats, EmbeddedPostgres, free_port  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does: FULL (the figures of record), QUICK (a look in a minute), SMOKE (the test suite)."""

    name: str
    bulk_calls: int  # reportNotices calls measured (after one warm-up call)
    bulk_size: int  # inputs per reportNotices call
    raw_rows: int  # rows of the raw unnest baseline (batches of 500)
    singles: int  # reportNotice calls at concurrency 16
    reads: int  # notices(first: 50) requests per concurrency level and side
    subscribers: tuple[int, ...]  # WebSocket subscriber counts, one latency run each
    events: int  # events per latency run (reported one at a time, each once all its subscribers got the last)
    statistics_notices: int
    statistics_runs: int
    relay_rows: int  # the relay's backlog


FULL = Sizes("full", 9, 1000, 20_000, 2000, 5000, (1, 100, 500), 2000, 100_000, 7, 100_000)
QUICK = Sizes("quick", 3, 1000, 2000, 200, 60, (1, 20, 50), 150, 20_000, 3, 10_000)
SMOKE = Sizes("smoke", 2, 50, 500, 32, 10, (1, 3, 5), 60, 2000, 2, 2000)
SIZES = {s.name: s for s in (FULL, QUICK, SMOKE)}


@dataclass(frozen=True)
class Services:
    """A PostgreSQL server (its admin DSN) and a NATS server, shared by the stacks of one run."""

    admin_dsn: str
    nats_url: str
    workdir: Path


@asynccontextmanager
async def services() -> AsyncIterator[Services]:
    """Embedded PostgreSQL and NATS in a temporary folder (or TAKEDOWN_DATABASE_URL / TAKEDOWN_NATS_URL),
    stopped and removed on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix="td-bench-"))
    started: list[EmbeddedPostgres | EmbeddedNats] = []
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
        yield Services(admin, nats_url, workdir)
    finally:
        for service in reversed(started):
            with contextlib.suppress(Exception):
                service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Stack:
    workdir: Path
    dsn: str
    nats_url: str
    env: dict[str, str]
    settings: Settings
    hotline: Organization
    company: Organization
    hotline_token: str
    company_token: str

    @property
    def provider_id(self) -> str:
        return to_global_id("Organization", self.company.id)


@asynccontextmanager
async def stack(shared: Services | None = None) -> AsyncIterator[Stack]:
    """A fresh, migrated database with a hotline and a company (and their tokens) on `shared`
    services, or on services of its own; the database is dropped on the way out."""
    async with contextlib.AsyncExitStack() as exits:
        if shared is None:
            shared = await exits.enter_async_context(services())
        name = f"bench_{secrets.token_hex(4)}"
        await ensure_database(shared.admin_dsn, name)
        exits.push_async_callback(_drop_database, shared.admin_dsn, name)
        base, _, rest = shared.admin_dsn.rpartition("/")
        query = rest.partition("?")[2]
        dsn = f"{base}/{name}" + (f"?{query}" if query else "")
        await migrate_database(dsn)
        workdir = shared.workdir / name
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
        env.update(
            TAKEDOWN_DATABASE_URL=dsn,
            TAKEDOWN_NATS_URL=shared.nats_url,
            TAKEDOWN_DATA_DIR=str(workdir / "data"),
            TAKEDOWN_URL_KEYS=f"b1:{new_key()}",
            TAKEDOWN_URL_HMAC_KEY=new_key(),
            TAKEDOWN_LOG_LEVEL="WARNING",
            TAKEDOWN_RATE_LIMIT_PER_MINUTE="0",
            TAKEDOWN_MAX_BODY_BYTES=str(16 * 1024 * 1024),
            TAKEDOWN_DB_POOL_MAX="20",
        )
        settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("TAKEDOWN_")})
        pool = await create_pool(settings)
        try:
            hotline = await create_organization(pool, None, name="Bench Hotline", kind=OrganizationKind.HOTLINE)
            company = await create_organization(pool, None, name="Bench Host", kind=OrganizationKind.COMPANY)
        finally:
            await pool.close()
        key = load_signing_key(settings)

        def token(org: Organization) -> str:
            return issue_token(key, settings, subject="bench", organization_id=str(org.id), roles=["ANALYST", "MEMBER"],
                               ttl_seconds=3600)

        yield Stack(workdir, dsn, shared.nats_url, env, settings, hotline, company, token(hotline), token(company))


async def _drop_database(admin_dsn: str, name: str) -> None:
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def process(env: dict[str, str], *command: str, stop: signal.Signals = signal.SIGINT) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A subprocess (output discarded), stopped with `stop` (then killed after 20 s) on the way out."""
    child = subprocess.Popen(list(command), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(stop)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@asynccontextmanager
async def served(env: dict[str, str], *command: str) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server subprocess on a free loopback port; yields its base URL and process once /healthz answers."""
    port = free_port()
    async with process(env, *command, "--port", str(port)) as child:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError(f"{command} did not come up")
                await asyncio.sleep(0.1)
        yield base, child


@asynccontextmanager
async def server(env: dict[str, str], *command: str) -> AsyncIterator[str]:
    """A server subprocess on a free loopback port; yields its base URL once /healthz answers."""
    async with served(env, *command) as (base, _):
        yield base


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc/<pid>/status (VmRSS, KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class CpuMeter:
    """CPU seconds used by groups of processes between `start` and `per_request`, per request: where each
    request's cost goes on this shared machine (the API, PostgreSQL's backends, the load generator).

    Counted per process from its own reading at `start`; a PostgreSQL backend that connects later is
    counted from zero (all its CPU is inside the window), one that exits before the end is left out
    (an undercount, never a negative figure).
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids: dict[str, list[int]], *, database: str | None = None) -> None:
        self.pids = pids
        self.database = database  # DSN whose backends make the "PostgreSQL" group
        self._start: dict[int, float] = {}

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / CpuMeter.TICK

    async def _groups(self) -> dict[str, list[int]]:
        groups = dict(self.pids)
        if self.database is not None:
            groups["PostgreSQL"] = await database_backends(self.database)
        return groups

    async def start(self) -> None:
        self._start = {pid: cpu for pids in (await self._groups()).values() for pid in pids if (cpu := self._cpu(pid)) is not None}

    async def per_request(self, requests: int) -> dict[str, float | None]:
        """Milliseconds of CPU per request, by group, since `start` (None: no local process to read)."""
        costs: dict[str, float | None] = {}
        for name, pids in (await self._groups()).items():
            readings = [(pid, cpu) for pid in pids if (cpu := self._cpu(pid)) is not None]
            used = sum(cpu - self._start.get(pid, 0.0) for pid, cpu in readings)
            costs[name] = 1000 * used / max(requests, 1) if readings else None
        return costs

    @staticmethod
    def describe(costs: dict[str, float | None]) -> str:
        return ", ".join(f"{name} {ms:.1f}" for name, ms in costs.items() if ms is not None) + " ms CPU/req"


async def database_backends(dsn: str) -> list[int]:
    """Process ids of the PostgreSQL backends connected to this benchmark's database (local servers only)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    return [r["pid"] for r in rows if Path(f"/proc/{r['pid']}").exists()]


def takedown_serve() -> list[str]:
    return [str(Path(sys.executable).parent / "takedown"), "serve"]


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(call: Callable[[], Awaitable[Any]], *, concurrency: int, requests: int, seconds: float = 60.0) -> Load:
    """Closed-loop load: `concurrency` callers, `requests` in all, stopping early after `seconds`."""
    latencies: list[float] = []
    remaining = requests
    deadline = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    begin = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return Load(len(latencies), time.perf_counter() - begin, latencies)


# Slices per side. With the full run's reads in five slices of 200, the c32 ratio of one commit
# ranged 38-46% over two runs and 41-56% for the commit before it, in one sitting (the bare side alone
# 768-1,148 req/s); in ten slices of 500, 40-48% over three runs. The spread is this machine's, and
# stays; more slices spread each side over more of it, and a p99 of 5,000 reads rests on 50 of them.
MAX_SLICES = 10


async def alternating(sides: dict[str, tuple[Callable[[], Awaitable[Any]], dict[str, list[int]]]], *, concurrency: int,
                      requests: int, database: str) -> dict[str, tuple[Load, dict[str, float | None]]]:
    """Each side's closed-loop load in alternating slices (A B, B A, A B, ...) instead of one after the
    other: this machine's speed drifts by 2x within minutes (and moves within seconds), and a ratio
    of two figures measured one after the other measured the drift as much as the code.

    Up to MAX_SLICES slices of at least 4 x `concurrency` requests each: a run too small for two (the quick
    run at concurrency 32) measures one slice per side, one after the other. Every slice starts with
    all callers busy and ends draining, on both sides alike. Each side gets `requests` in all, its
    latencies from every slice, its rate from its own slices' time, and its CPU per request (the
    side's processes and the database's backends, metered per slice) summed over its slices; a group
    not readable in some slice is reported as unknown (None) rather than undercounted."""
    slices = max(1, min(MAX_SLICES, requests // (4 * concurrency)))
    names = list(sides)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    cpu: dict[str, dict[str, float | None]] = {name: {} for name in names}
    for index in range(slices):
        share = requests // slices + (1 if index < requests % slices else 0)
        for name in names if index % 2 == 0 else names[::-1]:
            call, pids = sides[name]
            meter = CpuMeter(pids, database=database)
            await meter.start()
            result = await load(call, concurrency=concurrency, requests=share)
            for group, ms in (await meter.per_request(1)).items():  # milliseconds used in this slice
                known = cpu[name].get(group, 0.0)
                cpu[name][group] = None if ms is None or known is None else known + ms
            latencies[name].extend(result.latencies)
            seconds[name] += result.seconds
    measured = {}
    for name in names:
        done = len(latencies[name])
        per_request = {group: None if ms is None else ms / max(done, 1) for group, ms in cpu[name].items()}
        measured[name] = (Load(done, seconds[name], latencies[name]), per_request)
    return measured


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Row:
    path: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    cpu: str = ""  # where the CPU went, per request (CpuMeter.describe)
    note: str = ""  # what a reader of the table must know to judge the row (printed below it)


def print_table(rows: list[Row]) -> None:
    headers = ("path", "measured", "baseline (same run)", "ratio", "target", "met")
    cells = [
        # One decimal: a ratio just under its target must not print as the target itself
        (r.path, r.measured, r.baseline, "" if r.ratio is None else f"{r.ratio:.1%}", r.target,
         "" if r.met is None else ("yes" if r.met else "NO"))
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    notes = [r for r in rows if r.note]
    if notes:
        print("\nNotes:")
        for r in notes:
            print(f"  {r.path}: {r.note}")
    costs = [r for r in rows if r.cpu]
    if costs:
        print("\nCPU per request, by process (2 cores shared by all of them):")
        for r in costs:
            print(f"  {r.path}: {r.cpu}")
