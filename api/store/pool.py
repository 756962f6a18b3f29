"""The asyncpg pool: created in a composition root, closed there."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from asyncpg.connection import LoggedQuery

from ..settings import Settings
from .moments import Moments

# Raised by asyncpg and the OS when PostgreSQL cannot be reached or went away.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
)


QueryObserver = Callable[[LoggedQuery], None]
MOMENTS = Moments()  # one per process: every connection's timestamps are remembered together


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no type for it
    """Skips asyncpg's reset on every release to the pool: one round trip fewer per acquire.

    Safe because nothing here leaves session state on a pooled connection: locks are
    transaction-scoped (pg_advisory_xact_lock), settings are SET LOCAL, and LISTEN and
    session locks (relay, migrations) use connections of their own. Open transactions
    are still rolled back by asyncpg on release.
    """

    def get_reset_query(self) -> str:
        return ""


async def _init_connection(conn: asyncpg.Connection, observer: QueryObserver | None = None) -> None:
    # Written by the standard library, which refuses what is not plain JSON (a UUID, a datetime, a
    # domain object): an event envelope is kept and published for good, so a forgotten conversion
    # must fail, and orjson would write those silently. Read by orjson (the same values for what
    # is written here; subscriptions decode an envelope per event).
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec(
        "timestamptz", encoder=MOMENTS.encode, decoder=MOMENTS.decode, schema="pg_catalog", format="tuple"
    )
    if observer is not None:
        conn.add_query_logger(observer)


class FairPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no type for it
    """asyncpg's pool, handing out connections in the order they were asked for.

    asyncpg gives a released connection to the longest waiter, but a task that asks before that
    waiter has run takes it instead, and the waiter goes to the back of the queue again
    (tests/test_fair_pool.py shows it). Under load some requests lost their turn again and again:
    32 concurrent 50-notice page reads on the default pool of 10 answered with p50 55-80 ms, p99
    300-420 ms and a slowest of 0.45-1.1 s. Here a first-come, first-served semaphore of the pool's
    size comes first: a task gets its turn there, and then finds a connection free. The same reads:
    p50 80-110 ms, p99 115-157 ms, slowest 130-190 ms (the mean is the throughput's, which is the
    same; it is now shared evenly), for 0.4% more instructions a page.
    """

    def __init__(self, *args: Any, max_size: int, **kwargs: Any) -> None:
        super().__init__(*args, max_size=max_size, **kwargs)
        self._turns = asyncio.Semaphore(max_size)  # asyncio's is first come, first served
        self._held: set[int] = set()  # the connections handed out in turn (by id), so each gives its turn back once

    def acquire(self, *, timeout: float | None = None) -> _InTurn:
        return _InTurn(self, timeout)

    async def _in_turn(self, timeout: float | None) -> Any:
        if self._closing:  # as asyncpg fails at once, before any wait: the API answers 503
            raise asyncpg.exceptions.InterfaceError("pool is closing")
        self._check_init()
        left = timeout
        if timeout is None:
            await self._turns.acquire()
        else:  # the wait for a turn counts towards the timeout, as asyncpg's wait for a connection does
            started = asyncio.get_running_loop().time()
            async with asyncio.timeout(timeout):
                await self._turns.acquire()
            left = max(0.0, timeout - (asyncio.get_running_loop().time() - started))
        try:
            connection = await super().acquire(timeout=left)
        except BaseException:
            self._turns.release()
            raise
        # Given back on release: a connection closed by its user and never released would keep its turn
        # (asyncpg takes the connection back itself); every use here is `async with pool.acquire()`.
        self._held.add(id(connection))
        return connection

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        try:
            await super().release(connection, timeout=timeout)
        finally:
            if id(connection) in self._held:
                self._held.discard(id(connection))
                self._turns.release()


class _InTurn:
    """`pool.acquire()`: `async with` it, or await it and hand the connection to `pool.release`."""

    __slots__ = ("_pool", "_timeout", "_connection")

    def __init__(self, pool: FairPool, timeout: float | None) -> None:
        self._pool, self._timeout, self._connection = pool, timeout, None

    async def __aenter__(self) -> Any:
        if self._connection is not None:
            raise asyncpg.exceptions.InterfaceError("a connection is already acquired")  # as asyncpg's context
        self._connection = await self._pool._in_turn(self._timeout)
        return self._connection

    async def __aexit__(self, *exc: object) -> None:
        connection, self._connection = self._connection, None
        await self._pool.release(connection, timeout=self._timeout)  # the whole timeout, as asyncpg gives it

    def __await__(self) -> Generator[Any, None, Any]:
        return self._pool._in_turn(self._timeout).__await__()


async def create_pool(settings: Settings, dsn: str | None = None, *, observer: QueryObserver | None = None) -> asyncpg.Pool:
    """A pool that opens connections lazily, so the API starts (and /healthz answers) while PostgreSQL is down.

    `observer` sees every statement: the query-count tests use it to prove reads are batched.
    """
    pool = FairPool(
        dsn or settings.database_url,
        min_size=0,
        max_size=settings.db_pool_max,
        init=functools.partial(_init_connection, observer=observer),
        connection_class=PooledConnection,
        timeout=settings.db_timeout_seconds,
        command_timeout=30,
        # asyncpg.create_pool's own defaults
        init_size=None, max_queries=50000, max_inactive_connection_lifetime=300.0, connect=None, setup=None,
        reset=None, loop=None, record_class=asyncpg.Record,
    )
    return await pool


@asynccontextmanager
async def pool_for(settings: Settings, dsn: str | None = None) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, dsn)
    try:
        yield pool
    finally:
        await pool.close()


async def ping(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
