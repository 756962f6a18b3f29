"""The event backbone, each figure beside its baseline measured in the same run.

Latency (commit -> subscriber): the API (`takedown serve`) and the relay (`takedown worker relay`)
run as subprocesses. N WebSocket subscribers (graphql-transport-ws, `subscription { events }`)
connect from this one asyncio process at a bounded rate: one prosecutor view per 50 (which
receives every event) and company views, ten per company (each receives its own company's
notices). Notices are reported through the service layer, round-robin over those companies, one
in flight at a time (the next once every subscriber of the last one got it, or after 5 s), so the
figure is the latency of the fan-out, not of a queue; the rate that came out is shown beside it.
Each report's commit time (just after the command returned) is kept by notice id, and each frame's
arrival is matched to it. The baseline is the same run against bench/bare_ws.py: a
plain `websockets` server reading the same stream and forwarding each event's bytes to the
clients whose subject patterns (the same ones the API's hub uses for those viewers) match.
Memory: the server's VmRSS after the first subscriber is live and again with all N live and idle;
the difference over N - 1 is the memory of one idle subscription (the bare server's beside it).

Relay: a backlog of committed event rows (real notice.reported events, copied with new ids) is
drained by the relay (in this process) into JetStream; the baseline publishes the same payloads
with nats-py, pipelined in batches of the relay's size, with the same headers.

    .venv/bin/python -m bench.events [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import nats
import websockets

from api.auth.keys import issue_token, load_signing_key
from api.domain.ids import to_global_id
from api.domain.notices import ContentCategory
from api.domain.organizations import Organization, OrganizationKind, Role, Viewer
from api.messaging.nats import CONTENT_TYPE, MSG_ID, SEQ, ensure_stream
from api.protect import load_url_protector
from api.services.events import live_patterns
from api.services.notices import NoticeCommands, ReportInput
from api.services.organizations import create_organization
from api.store.pool import create_pool
from bench.harness import ROOT, Row, Sizes, Stack, process, rss_kib, served, takedown_serve
from workers.relay import Relay

SUBSCRIBE = "subscription { events { notice { id } } }"
CONNECTS_PER_SECOND = 200  # subscriber connection setup rate
CONNECTING_AT_ONCE = 20
PER_COMPANY = 10  # company subscribers per company
EVENT_TIMEOUT = 5.0  # how long an event may take to reach all its subscribers (then it counts as missing)
RUN_SECONDS = 240.0  # a latency run stops reporting after this


def prosecutors_for(n: int) -> int:
    return max(1, n // 50)


@dataclass
class Subscribers:
    """N WebSocket clients of one server; frames arrive as (notice id, arrival time)."""

    side: str  # "api" or "bare"
    address: str  # host:port
    frames: list[tuple[str, float]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # subscribers that received at least one frame
    errors: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    sockets: list[Any] = field(default_factory=list)
    target: int = 0  # `reached` is set once this many frames arrived
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    _pace: float = 0.0

    async def until(self, count: int, timeout: float) -> None:
        """Wait (at most `timeout`) until `count` frames arrived in all."""
        self.reached.clear()
        self.target = count
        if len(self.frames) < count:
            waiter = asyncio.ensure_future(self.reached.wait())
            try:  # not wait_for: on 3.11 it can swallow a cancellation (Ctrl-C) that meets a completion
                await asyncio.wait({waiter}, timeout=timeout)
            finally:
                waiter.cancel()

    async def add(self, index: int, token: str, patterns: list[str]) -> None:
        """Connect one subscriber (bounded rate); returns once it is subscribed."""
        now = time.monotonic()
        self._pace = max(self._pace, now) + 1 / CONNECTS_PER_SECOND
        await asyncio.sleep(self._pace - now)
        if self.side == "api":
            ws = await websockets.connect(f"ws://{self.address}/graphql", subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                                          close_timeout=2, max_queue=None, open_timeout=30)
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        else:
            ws = await websockets.connect(f"ws://{self.address}/", close_timeout=2, max_queue=None, open_timeout=30)
            await ws.send(json.dumps(patterns))
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self._receive(index, ws)))

    async def _receive(self, index: int, ws: Any) -> None:
        api = self.side == "api"
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                arrived = time.perf_counter()
                message = json.loads(raw)
                if api:
                    kind = message.get("type")
                    if kind == "ping":
                        await ws.send('{"type":"pong"}')
                        continue
                    if kind != "next" or "errors" in message["payload"]:
                        self.errors += 1
                        continue
                    notice = message["payload"]["data"]["events"]["notice"]
                    if notice is None:
                        continue
                    key = notice["id"]
                else:
                    key = message["subject"]
                self.frames.append((key, arrived))
                self.seen.add(index)
                if len(self.frames) >= self.target:
                    self.reached.set()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True), 30)


@dataclass(frozen=True)
class Latency:
    p50: float
    p99: float
    delivered: int
    expected: int
    errors: int
    rate: float
    rss_per_subscriber_kib: float | None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


class EventBench:
    def __init__(self, stack: Stack, sizes: Sizes, commands: NoticeCommands, hotline: Viewer,
                 prosecutor: Organization, companies: list[Organization], tokens: dict[Any, str]) -> None:
        self.stack, self.sizes, self.commands, self.hotline = stack, sizes, commands, hotline
        self.prosecutor, self.companies, self.tokens = prosecutor, companies, tokens

    async def report(self, company: Organization) -> str:
        input = ReportInput(company.id, f"https://bench.example/{secrets.token_hex(8)}.jpg", ContentCategory.BASELINE_CSAM)
        reported = await self.commands.report(self.hotline, [input])
        return to_global_id("Notice", reported[0].notice.id)

    async def until_live(self, subs: Subscribers, count: int, companies: list[Organization]) -> None:
        """Report (one notice per company in use) until all `count` subscribers received a frame."""
        for _ in range(100):
            for company in companies:
                await self.report(company)
            deadline = time.monotonic() + 1.0
            while len(subs.seen) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if len(subs.seen) >= count:
                break
        else:
            raise RuntimeError(f"{subs.side}: only {len(subs.seen)} of {count} subscriptions went live")
        await quiet(subs)

    async def run(self, subs: Subscribers, n: int, pid: int, measure_memory: bool) -> Latency:
        p = prosecutors_for(n)
        in_use = self.companies[: max(1, -(-(n - p) // PER_COMPANY))]
        views: list[tuple[Organization, list[str]]] = [(self.prosecutor, ["td.>"])] * p
        for i in range(n - p):
            company = in_use[i % len(in_use)]
            viewer = Viewer("bench", company.id, OrganizationKind.COMPANY, frozenset({Role.MEMBER}))
            views.append((company, list(live_patterns(viewer) or ("td.>",))))
        recipients = {c.id: p + sum(1 for org, _ in views[p:] if org.id == c.id) for c in in_use}

        await subs.add(0, self.tokens[views[0][0].id], views[0][1])  # the probe: a prosecutor
        await self.until_live(subs, 1, in_use[:1])
        rss_before = rss_kib(pid)
        connecting = asyncio.Semaphore(CONNECTING_AT_ONCE)

        async def add(i: int) -> None:
            async with connecting:
                await subs.add(i, self.tokens[views[i][0].id], views[i][1])

        await asyncio.gather(*(add(i) for i in range(1, n)))
        await self.until_live(subs, n, in_use)
        per_subscriber = None
        if measure_memory and n > 1:
            await asyncio.sleep(1.0 if n >= 50 else 0.2)
            per_subscriber = (rss_kib(pid) - rss_before) / (n - 1)

        subs.frames.clear()
        subs.errors = 0
        committed: dict[str, float] = {}
        expected = 0
        begin = time.perf_counter()
        deadline = time.monotonic() + RUN_SECONDS
        for j in range(self.sizes.events):
            if time.monotonic() > deadline:
                break
            company = in_use[j % len(in_use)]
            notice = await self.report(company)
            committed[notice] = time.perf_counter()
            expected += recipients[company.id]
            await subs.until(expected, EVENT_TIMEOUT)  # one event in flight: latency, not queueing
        rate = len(committed) / (time.perf_counter() - begin)
        latencies = [max(0.0, arrived - committed[key]) for key, arrived in subs.frames if key in committed]
        await subs.close()
        return Latency(percentile(latencies, 0.5), percentile(latencies, 0.99), len(latencies), expected, subs.errors,
                       rate, per_subscriber)


async def quiet(subs: Subscribers, seconds: float = 0.2, limit: float = 10.0) -> None:
    """Wait until no frame arrived for `seconds` (at most `limit`)."""
    deadline = time.monotonic() + limit
    count = -1
    while count != len(subs.frames) and time.monotonic() < deadline:
        count = len(subs.frames)
        await asyncio.sleep(seconds)


def _delivery(result: Latency) -> str:
    missing = result.expected - result.delivered
    extra = (f", {missing} missing" if missing else "") + (f", {result.errors} errors" if result.errors else "")
    return f"{result.delivered:,} frames{extra}"


async def run_latency(stack: Stack, sizes: Sizes) -> list[Row]:
    pool = await create_pool(stack.settings)
    try:
        commands = NoticeCommands(pool, load_url_protector(stack.settings))
        hotline = Viewer("bench", stack.hotline.id, OrganizationKind.HOTLINE, frozenset({Role.ANALYST}))
        largest = max(sizes.subscribers)
        prosecutor = await create_organization(pool, None, name="Bench Prosecutor", kind=OrganizationKind.PROSECUTOR)
        companies = [stack.company] + [
            await create_organization(pool, None, name=f"Bench Host {i:03d}", kind=OrganizationKind.COMPANY)
            for i in range(1, max(1, -(-(largest - prosecutors_for(largest)) // PER_COMPANY)))
        ]
        key = load_signing_key(stack.settings)
        tokens = {org.id: issue_token(key, stack.settings, subject="bench", organization_id=str(org.id), roles=["MEMBER"],
                                      ttl_seconds=7200) for org in [prosecutor, *companies]}
        bench = EventBench(stack, sizes, commands, hotline, prosecutor, companies, tokens)
        results: dict[tuple[str, int], Latency] = {}
        async with contextlib.AsyncExitStack() as running:
            await running.enter_async_context(process(stack.env, *takedown_worker("relay"), stop=signal.SIGTERM))
            api, api_process = await running.enter_async_context(served(stack.env, *takedown_serve()))
            bare, bare_process = await running.enter_async_context(
                served(stack.env, sys.executable, str(ROOT / "bench" / "bare_ws.py")))
            # Largest first, so that the memory figure is taken on servers that never had more.
            for n in sorted(sizes.subscribers, reverse=True):
                for side, base, pid in (("api", api, api_process.pid), ("bare", bare, bare_process.pid)):
                    subs = Subscribers(side, base.removeprefix("http://"))
                    try:
                        results[side, n] = got = await bench.run(subs, n, pid, measure_memory=n == largest)
                        print(f"[bench] events, {side}, {n} subscribers: p50 {got.p50:.1f} ms, p99 {got.p99:.1f} ms, "
                              f"{got.delivered}/{got.expected} frames", file=sys.stderr, flush=True)
                    finally:
                        await subs.close()
                    await asyncio.sleep(0.2)  # let the server let go of the connections
    finally:
        await pool.close()

    rows = []
    for n in sorted(sizes.subscribers):
        mine, bare_ = results["api", n], results["bare", n]
        ratio = bare_.p99 / mine.p99 if mine.p99 > 0 else None
        target, met = "", None
        if n == largest:
            target = "p99 within 3x of bare (>= 33%), < 100 ms"
            met = ratio is not None and ratio >= 1 / 3 and mine.p99 < 100 and mine.delivered == mine.expected
        prosecutors = prosecutors_for(n)
        rows.append(Row(
            f"events commit->subscriber, {n} sub{'s' if n > 1 else ''} ({prosecutors} prosecutor{'s' if prosecutors > 1 else ''})",
            f"p50 {mine.p50:.1f} ms, p99 {mine.p99:.1f} ms ({_delivery(mine)}, {mine.rate:.0f} events/s)",
            f"p50 {bare_.p50:.1f} ms, p99 {bare_.p99:.1f} ms bare websockets ({_delivery(bare_)}, {bare_.rate:.0f} events/s)",
            ratio, target, met,
        ))
    mine, bare_ = results["api", largest], results["bare", largest]
    if mine.rss_per_subscriber_kib is not None and bare_.rss_per_subscriber_kib is not None:
        api_kb, bare_kb = mine.rss_per_subscriber_kib * 1.024, bare_.rss_per_subscriber_kib * 1.024
        rows.append(Row(
            f"events memory per idle subscription ({largest - 1})",
            f"{api_kb:,.1f} KB RSS (API process)",
            f"{bare_kb:,.1f} KB bare websockets",
            bare_kb / api_kb if api_kb > 0 else None, "< 100 KB", api_kb < 100,
        ))
    return rows


def takedown_worker(*names: str) -> list[str]:
    return [takedown_serve()[0], "worker", *names]


# ------------------------------------------------------------------ relay

COPY = """
    WITH source AS (
        SELECT e.subject, e.type, e.aggregate_id, e.aggregate_version, e.occurred_at, e.envelope,
               gen_random_uuid() AS new_id
        FROM events e, generate_series(1, $1) AS copy
        WHERE e.published_at IS NULL
        ORDER BY copy, e.seq
    )
    INSERT INTO events (seq, id, subject, type, aggregate_id, aggregate_version, occurred_at, envelope)
    SELECT nextval('events_seq'), new_id, subject, type, aggregate_id, aggregate_version, occurred_at,
           jsonb_set(envelope, '{id}', to_jsonb(new_id::text))
    FROM source
"""
PENDING = "SELECT seq, id, subject, envelope::text AS body FROM events WHERE published_at IS NULL ORDER BY seq"


async def backlog(stack: Stack, rows: int) -> int:
    """`rows` committed, unpublished event rows: real notice.reported events, copied with new ids."""
    pool = await create_pool(stack.settings)
    try:
        commands = NoticeCommands(pool, load_url_protector(stack.settings))
        hotline = Viewer("bench", stack.hotline.id, OrganizationKind.HOTLINE, frozenset({Role.ANALYST}))
        seed = min(1000, rows)
        await commands.report(hotline, [
            ReportInput(stack.company.id, f"https://bench.example/{secrets.token_hex(8)}.jpg", ContentCategory.BASELINE_CSAM)
            for _ in range(seed)
        ])
        async with pool.acquire() as conn:
            if rows > seed:
                await conn.execute(COPY, rows // seed - 1)
            await conn.execute("VACUUM ANALYZE events")
            return int(await conn.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL"))
    finally:
        await pool.close()


async def raw_publish(stack: Stack) -> tuple[int, float]:
    """The same payloads and headers (new message ids), pipelined in batches of the relay's size."""
    conn = await asyncpg.connect(stack.dsn)
    try:
        pending = await conn.fetch(PENDING)
    finally:
        await conn.close()
    nc = await nats.connect(stack.nats_url, name="bench-raw-publish")
    try:
        js = nc.jetstream(timeout=30)
        await ensure_stream(js, stack.settings)
        batch = stack.settings.relay_batch
        start = time.perf_counter()
        for i in range(0, len(pending), batch):
            futures = []
            for row in pending[i: i + batch]:
                headers = {MSG_ID: f"{row['id']}-raw", SEQ: str(row["seq"]), "Content-Type": CONTENT_TYPE}
                futures.append(await js.publish_async(row["subject"], row["body"].encode(), headers=headers))
            await asyncio.wait_for(asyncio.gather(*futures), 30)
        return len(pending), time.perf_counter() - start
    finally:
        await nc.close()


async def relay_drain(stack: Stack, total: int, limit: float = 300.0) -> tuple[int, float]:
    relay = Relay(stack.settings)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.wait_for(relay.active.wait(), 30)
        start = time.perf_counter()
        deadline = time.monotonic() + limit
        while relay.published < total and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.005)
        return relay.published, time.perf_counter() - start
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def run_relay(stack: Stack, sizes: Sizes) -> list[Row]:
    total = await backlog(stack, sizes.relay_rows)
    raw_count, raw_seconds = await raw_publish(stack)
    published, seconds = await relay_drain(stack, total)
    rate, raw_rate = published / seconds, raw_count / raw_seconds
    return [Row(
        f"relay backlog of {total:,} -> JetStream",
        f"{rate:,.0f} events/s ({published:,} published and marked in {seconds:.1f} s)",
        f"{raw_rate:,.0f} msgs/s raw pipelined publish_async",
        rate / raw_rate, ">= 50%", rate / raw_rate >= 0.5 and published == total,
    )]


async def run(stack: Stack, sizes: Sizes) -> list[Row]:
    return await run_latency(stack, sizes) + await run_relay(stack, sizes)


if __name__ == "__main__":
    from bench.harness import FULL, QUICK, print_table, stack

    async def main() -> None:
        sizes = QUICK if "--quick" in sys.argv else FULL
        parts: list[Callable[[Stack, Sizes], Awaitable[list[Row]]]] = [run_latency, run_relay]
        rows: list[Row] = []
        for part in parts:
            async with stack() as s:
                rows += await part(s, sizes)
        print_table(rows)

    asyncio.run(asyncio.wait_for(main(), timeout=900))
