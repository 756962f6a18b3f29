"""The database pool hands out connections in the order they were asked for (api/store/pool.py,
FairPool): under load no request waits behind others that asked after it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest

from api.settings import Settings
from api.store.pool import FairPool, PooledConnection, create_pool
from infra.stack import free_port


@pytest.fixture
async def one_connection(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(dataclasses.replace(settings, db_pool_max=1))
    yield pool
    await pool.close()


async def turns_taken(pool: asyncpg.Pool, late_yields: int) -> list[str]:
    """Five tasks queue for the one connection; as it is released a sixth asks for it, `late_yields`
    steps of the event loop later (so that it asks between the release and the first waiter's turn
    to run for some number of steps)."""
    order: list[str] = []

    async def use(name: str, yields: int = 0) -> None:
        for _ in range(yields):
            await asyncio.sleep(0)
        async with pool.acquire() as conn:
            order.append(name)
            await conn.fetchval("SELECT 1")

    holder = await pool.acquire()
    waiting = [asyncio.create_task(use(f"w{i}")) for i in range(5)]
    await asyncio.sleep(0.05)  # all five are waiting
    released = asyncio.create_task(pool.release(holder))
    late = asyncio.create_task(use("late", late_yields))
    await asyncio.gather(released, late, *waiting)
    return order


async def test_connections_go_to_the_tasks_in_the_order_they_asked(one_connection: asyncpg.Pool) -> None:
    for late_yields in range(10):
        assert await turns_taken(one_connection, late_yields) == ["w0", "w1", "w2", "w3", "w4", "late"], late_yields


async def test_asyncpgs_own_pool_lets_a_late_task_go_first(settings: Settings) -> None:
    """What FairPool is for: the same runs on asyncpg's pool (with the same connections, which skip the
    reset query on release) let the late task take the connection for some number of steps (were it
    fair, FairPool could go)."""
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=1, connection_class=PooledConnection)
    try:
        firsts = [(await turns_taken(pool, late_yields))[0] for late_yields in range(10)]
    finally:
        await pool.close()
    assert "late" in firsts, firsts


async def test_a_task_that_times_out_or_is_cancelled_waiting_gives_its_turn_back(one_connection: asyncpg.Pool) -> None:
    holder = await one_connection.acquire()
    with pytest.raises(TimeoutError):
        await one_connection.acquire(timeout=0.05)
    waiting = asyncio.create_task(one_connection.acquire().__aenter__())
    await asyncio.sleep(0.02)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await one_connection.release(holder)
    async with asyncio.timeout(5):  # the one turn is free again: neither kept it
        async with one_connection.acquire(timeout=1) as conn:
            assert await conn.fetchval("SELECT 2") == 2


async def test_a_connection_that_cannot_be_opened_gives_its_turn_back(settings: Settings) -> None:
    """PostgreSQL down: every acquire fails as it connects, and none keeps its turn (or the pool would
    never hand out a connection again once PostgreSQL is back)."""
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    pool = await create_pool(dataclasses.replace(settings, db_pool_max=2, db_timeout_seconds=1.0), closed)
    try:
        for _ in range(5):  # more than the pool's turns: a kept turn would end in a wait (a TimeoutError)
            with pytest.raises(OSError):
                await pool.acquire(timeout=3)
        assert pool._turns._value == 2  # type: ignore[attr-defined]
    finally:
        await pool.close()


async def test_a_closing_pool_refuses_at_once(settings: Settings) -> None:
    pool = await create_pool(dataclasses.replace(settings, db_pool_max=1))
    holder = await pool.acquire()
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0.05)  # close() now waits for the connection out
    with pytest.raises(asyncpg.exceptions.InterfaceError, match="closing"):
        async with asyncio.timeout(0.5):  # not after a wait for a turn
            await pool.acquire()
    await pool.release(holder)
    await closing


async def test_releasing_a_connection_twice_gives_one_turn_back(one_connection: asyncpg.Pool) -> None:
    assert isinstance(one_connection, FairPool)
    connection = await one_connection.acquire()
    await one_connection.release(connection)
    await one_connection.release(connection)  # asyncpg ignores a second release; so must the turns
    first = await one_connection.acquire()
    with pytest.raises(TimeoutError):
        await one_connection.acquire(timeout=0.05)
    await one_connection.release(first)
    assert one_connection._turns._value == 1  # type: ignore[attr-defined]
