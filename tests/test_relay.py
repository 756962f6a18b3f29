"""The outbox relay and the worker runner: order, no loss, no duplicates, across crashes and a NATS outage.

Each test owns a fresh database and its own nats-server (so it can stop it, and
so its relay publishes only its own events).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import nats
import pytest
from nats.js import api as js_api

from api.app import create_app
from api.auth.keys import issue_token
from api.domain.ids import from_global_id, to_global_id
from api.domain.notices import ContentCategory
from api.domain.organizations import OrganizationKind, Role, Viewer
from api.messaging.nats import MSG_ID, SEQ, ConsumerSpec, connect, ensure_stream
from api.protect import load_url_protector
from api.services.notices import NoticeCommands, ReportInput
from api.services.organizations import create_organization
from api.settings import Settings
from api.store import inbox
from api.store.pool import create_pool
from infra.stack import EmbeddedNats, free_port
from tests.conftest import Factory, Services, fresh_database
from tests.eventing import GraphQLWs, Running, eventually, serve
from workers.relay import Relay
from workers.runner import Received, Runner


@dataclass
class World:
    settings: Settings
    pool: asyncpg.Pool
    nats: EmbeddedNats
    notices: NoticeCommands
    reporter: Viewer
    provider_id: UUID

    async def report(self, count: int) -> list[UUID]:
        inputs = [
            ReportInput(self.provider_id, f"https://host.example/{secrets.token_hex(8)}", ContentCategory.BASELINE_CSAM)
            for _ in range(count)
        ]
        return [r.notice.id for r in await self.notices.report(self.reporter, inputs)]

    async def event_ids(self) -> list[UUID]:
        async with self.pool.acquire() as conn:
            return [r["id"] for r in await conn.fetch("SELECT id FROM events ORDER BY seq")]

    async def unpublished(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL"))

    async def stream(self) -> list[tuple[str, int]]:
        """Every message in the stream, in stream order: (Nats-Msg-Id, Td-Seq)."""
        nc = await connect(self.settings, "test-reader", wait=30)
        try:
            js = nc.jetstream()
            info = await js.stream_info(self.settings.stream_name)
            found = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(self.settings.stream_name, seq)
                found.append(((msg.headers or {})[MSG_ID], int((msg.headers or {})[SEQ])))
            return found
        finally:
            await nc.close()


@pytest.fixture
async def world(services: Services, settings: Settings, tmp_path: Path) -> AsyncIterator[World]:
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    url = server.start()
    dsn = await fresh_database(services)
    mine = settings.with_overrides(database_url=dsn, nats_url=url)
    pool = await create_pool(mine)
    try:
        hotline = await create_organization(pool, None, name=f"Hotline {secrets.token_hex(3)}", kind=OrganizationKind.HOTLINE)
        company = await create_organization(pool, None, name=f"Company {secrets.token_hex(3)}", kind=OrganizationKind.COMPANY)
        reporter = Viewer("analyst", hotline.id, OrganizationKind.HOTLINE, frozenset({Role.ANALYST}))
        yield World(mine, pool, server, NoticeCommands(pool, load_url_protector(mine)), reporter, company.id)
    finally:
        await pool.close()
        server.stop()


async def test_events_are_published_in_commit_order_and_marked_after_the_ack(world: World) -> None:
    await world.report(3)
    async with Running(Relay(world.settings, poll_seconds=0.2)):
        await world.report(20)
        await eventually(lambda: _zero(world.unpublished))
    ids = [str(i) for i in await world.event_ids()]
    stream = await world.stream()
    assert [m[0] for m in stream] == ids
    assert [m[1] for m in stream] == sorted(m[1] for m in stream)
    async with world.pool.acquire() as conn:
        marks = await conn.fetch("SELECT seq, stream_seq FROM events ORDER BY seq")
    assert [r["stream_seq"] for r in marks] == list(range(1, len(ids) + 1))


async def test_rounds_overlap_marking_with_publishing_and_lose_nothing(world: World) -> None:
    """Batches of 7: each round publishes while the previous round's rows are marked. Every row is
    published once, in order, and marked with its own stream sequence, including the last round's,
    which is marked when there is nothing left to publish (and when the relay stops)."""
    await world.report(100)
    relay = Relay(world.settings, batch=7, poll_seconds=0.2)
    async with Running(relay):
        await eventually(lambda: _zero(world.unpublished))
        await world.report(3)  # a round of 3 after an idle wait
        await eventually(lambda: _zero(world.unpublished))
    ids = [str(i) for i in await world.event_ids()]
    assert relay.published == len(ids) == 103
    assert [m[0] for m in await world.stream()] == ids
    async with world.pool.acquire() as conn:
        marks = await conn.fetch("SELECT stream_seq FROM events ORDER BY seq")
    assert [r["stream_seq"] for r in marks] == list(range(1, len(ids) + 1))


async def test_nats_down_mid_run_then_all_500_arrive_once_in_order(world: World) -> None:
    async with Running(Relay(world.settings, poll_seconds=0.2)):
        await world.report(5)
        await eventually(lambda: _zero(world.unpublished))
        world.nats.stop()
        for _ in range(5):
            await world.report(100)  # 500 notices while NATS is down
        await asyncio.sleep(1.0)
        assert await world.unpublished() == 500  # waiting in PostgreSQL
        world.nats.start()  # the same port and store
        await eventually(lambda: _zero(world.unpublished), timeout=60)
    ids = [str(i) for i in await world.event_ids()]
    assert len(ids) == 505
    assert [m[0] for m in await world.stream()] == ids  # each once, in commit order
    assert await _consume_all(world, "after-outage", len(ids)) == ids


async def test_a_relay_killed_between_publish_and_mark_causes_no_duplicate(world: World) -> None:
    await world.report(50)
    crashed = Relay(world.settings)
    nc = await connect(world.settings, "crashing-relay", wait=30)
    js = nc.jetstream()
    await ensure_stream(js, world.settings)
    async with world.pool.acquire() as conn:
        from api.store import outbox

        rows = await outbox.unpublished(conn, 30)
    acked = await crashed.publish(js, rows)
    assert len(acked) == 30
    await nc.close()  # ... and dies before marking them
    assert await world.unpublished() == 50

    async with Running(Relay(world.settings, poll_seconds=0.2)):
        await eventually(lambda: _zero(world.unpublished))
    ids = [str(i) for i in await world.event_ids()]
    assert [m[0] for m in await world.stream()] == ids  # 50 messages, not 80

    received = await _consume_all(world, "after-crash", len(ids))
    assert received == ids


async def test_two_relays_publish_each_event_once_in_order(world: World) -> None:
    first, second = Relay(world.settings, poll_seconds=0.2, batch=7), Relay(world.settings, poll_seconds=0.2, batch=7)
    async with Running(first), Running(second):
        await asyncio.gather(*(world.report(10) for _ in range(10)))
        await eventually(lambda: _zero(world.unpublished))
        assert first.active.is_set() != second.active.is_set()  # exactly one holds the lock
    ids = [str(i) for i in await world.event_ids()]
    assert len(ids) == 100
    assert [m[0] for m in await world.stream()] == ids


async def test_the_standby_relay_takes_over(world: World) -> None:
    first = Running(Relay(world.settings, poll_seconds=0.2))
    await first.__aenter__()
    await asyncio.wait_for(first.worker.active.wait(), 10)
    async with Running(Relay(world.settings, poll_seconds=0.2)) as standby:
        await asyncio.sleep(0.3)
        assert not standby.active.is_set()
        await first.halt()
        await asyncio.wait_for(standby.active.wait(), 10)
        await world.report(5)
        await eventually(lambda: _zero(world.unpublished))
    assert len(await world.stream()) == 5


async def test_a_worker_killed_mid_message_gets_it_again_and_handles_it_once(world: World) -> None:
    async with world.pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (event_id uuid NOT NULL, worker text NOT NULL)")
    started = asyncio.Event()
    hang = asyncio.Event()

    def handler(name: str, block: bool) -> Any:
        async def handle(conn: asyncpg.Connection, event: Received) -> None:
            await conn.execute("INSERT INTO effects VALUES ($1, $2)", event.id, name)
            if block:
                started.set()
                await hang.wait()  # killed here, inside the transaction, before the ack

        return handle

    spec = ConsumerSpec("effects", ack_wait_seconds=1.0)
    async with Running(Relay(world.settings, poll_seconds=0.2)):
        await world.report(1)
        await eventually(lambda: _zero(world.unpublished))
    victim = Runner(world.settings, world.pool, spec, handler("first", block=True))
    task = asyncio.create_task(victim.run(asyncio.Event()))
    await asyncio.wait_for(started.wait(), 20)
    task.cancel()  # the process dies: no ack, no nak, its transaction rolls back
    with pytest.raises(asyncio.CancelledError):
        await task
    assert victim.nc is not None and victim.nc.is_closed

    survivor = Runner(world.settings, world.pool, spec, handler("second", block=False))
    async with Running(survivor):
        await eventually(lambda: _handled(survivor), timeout=30)
        await asyncio.sleep(1.5)  # longer than ack_wait: no further redelivery reaches the handler
    async with world.pool.acquire() as conn:
        effects = await conn.fetch("SELECT worker FROM effects")
    assert [r["worker"] for r in effects] == ["second"]
    assert survivor.handled == 1


async def test_the_inbox_makes_a_redelivery_a_no_op(world: World) -> None:
    event_id = UUID(int=secrets.randbits(128))
    async with world.pool.acquire() as conn:
        assert await inbox.record_once(conn, "c", event_id) is True
        assert await inbox.record_once(conn, "c", event_id) is False
        assert await inbox.record_once(conn, "other", event_id) is True


async def test_stop_finishes_the_message_in_hand(world: World) -> None:
    handled: list[UUID] = []
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(conn: asyncpg.Connection, event: Received) -> None:
        entered.set()
        await release.wait()
        handled.append(event.id)

    async with Running(Relay(world.settings, poll_seconds=0.2)):
        await world.report(3)
        await eventually(lambda: _zero(world.unpublished))
    runner = Runner(world.settings, world.pool, ConsumerSpec("stopping", ack_wait_seconds=30), slow, batch=10)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.wait_for(entered.wait(), 20)
    stop.set()  # SIGTERM while a message is in hand
    await asyncio.sleep(0.1)
    release.set()
    await asyncio.wait_for(task, 10)
    assert len(handled) == 1  # finished the one in hand; the other two were handed back (nak)
    survivor = Runner(world.settings, world.pool, ConsumerSpec("stopping", ack_wait_seconds=30), slow, batch=10)
    async with Running(survivor):
        # Well inside ack_wait (30 s): the two were handed back, not left to time out.
        await eventually(lambda: _count(handled, 3), timeout=10)


async def _consume_all(world: World, durable: str, expected: int) -> list[str]:
    nc = await nats.connect(world.settings.nats_url)
    try:
        js = nc.jetstream()
        config = js_api.ConsumerConfig(durable_name=durable, ack_policy=js_api.AckPolicy.EXPLICIT)
        sub = await js.pull_subscribe("td.>", durable=durable, stream=world.settings.stream_name, config=config)
        got: list[str] = []
        for _ in range(100):
            if len(got) >= expected:
                break
            try:
                for msg in await sub.fetch(100, timeout=1.0):
                    got.append((msg.headers or {})[MSG_ID])
                    await msg.ack()
            except TimeoutError:
                continue
        try:
            extra = await sub.fetch(1, timeout=0.5)
        except TimeoutError:
            extra = []
        assert not extra, "a duplicate reached the consumer"
        return got
    finally:
        await nc.close()


async def _zero(count: Any) -> bool:
    return bool(await count() == 0)


async def _handled(runner: Runner) -> bool:
    return runner.handled >= 1


async def _count(items: list[UUID], n: int) -> bool:
    return len(items) >= n


async def test_takedown_worker_all_runs_and_stops_cleanly_on_sigterm(world: World, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TAKEDOWN_ENV": "test",
        "TAKEDOWN_DATABASE_URL": world.settings.database_url,
        "TAKEDOWN_NATS_URL": world.settings.nats_url,
        "TAKEDOWN_DATA_DIR": str(tmp_path / "data"),
        "TAKEDOWN_URL_KEYS": world.settings.url_keys,
        "TAKEDOWN_URL_HMAC_KEY": world.settings.url_hmac_key,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "worker", "all",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await world.report(10)
        await eventually(lambda: _zero(world.unpublished), timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert len(await world.stream()) == 10


async def test_an_unknown_worker_is_refused(world: World) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "worker", "nonsense",
        env={**os.environ, "TAKEDOWN_DATABASE_URL": world.settings.database_url, "TAKEDOWN_NATS_URL": world.settings.nats_url},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2 and b"unknown worker nonsense" in stderr


async def test_a_live_subscriber_gets_everything_reported_during_a_nats_outage(world: World, make: Factory) -> None:
    """The API's hub (an ordered consumer) survives the restart: all 200 events, each once, in order."""
    prosecutor = await create_organization(world.pool, None, name=f"Prosecutor {secrets.token_hex(3)}", kind=OrganizationKind.PROSECUTOR)
    token = issue_token(make.signing_key, world.settings, subject="p", organization_id=str(prosecutor.id), roles=["MEMBER"])
    query = "subscription { events { cursor type notice { id } } }"
    async with Running(Relay(world.settings, poll_seconds=0.2)), serve(create_app(world.settings)) as address:
        async with GraphQLWs(address, token) as ws:
            await ws.subscribe(query)

            async def one() -> str:
                return to_global_id("Notice", (await world.report(1))[0])

            await ws.warm_up(one)  # until the subscription is live
            await eventually(lambda: _zero(world.unpublished))
            world.nats.stop()
            reported = [str(n) for _ in range(4) for n in await world.report(50)]
            await asyncio.sleep(1.0)
            world.nats.start()
            got = await ws.events(200, timeout=60)
            assert not await ws.silence(1.0)
    assert [str(from_global_id(e["notice"]["id"])[1]) for e in got] == reported
