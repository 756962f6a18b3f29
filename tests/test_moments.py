"""timestamptz through the platform's codec (api/store/moments.py) exactly as through asyncpg's own."""

from __future__ import annotations

import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from api.store.moments import Moments
from api.store.pool import MOMENTS


@pytest.fixture
def local_time_with_summer_time() -> Iterator[None]:
    """Naive values and dates are local time to both codecs: in UTC (this machine's zone) a codec
    that took them as UTC would pass unnoticed."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        offsets = [datetime(2026, month, 1, 12).astimezone().utcoffset() for month in (1, 7)]
        assert offsets == [timedelta(hours=-5), timedelta(hours=-4)], "the zone took effect (tzdata is installed)"
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.fixture
async def connections(
    database_url: str, local_time_with_summer_time: None
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """asyncpg's codec and the platform's, side by side."""
    theirs, ours = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    await ours.set_type_codec("timestamptz", encoder=MOMENTS.encode, decoder=MOMENTS.decode, schema="pg_catalog", format="tuple")
    try:
        yield theirs, ours
    finally:
        await theirs.close()
        await ours.close()


def samples() -> list[Any]:
    chance = random.Random(11)
    start = datetime(1, 1, 2, tzinfo=UTC)
    span = (datetime(9999, 12, 30, tzinfo=UTC) - start) // timedelta(microseconds=1)
    moments = [start + timedelta(microseconds=chance.randrange(span)) for _ in range(300)]
    return moments + [
        datetime(2000, 1, 1, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # either side of the epoch
        datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC), datetime(2026, 11, 29, 9, 28, 27, 123456, tzinfo=UTC),
        datetime(2026, 11, 29, 9, 28, 27, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 11, 29, 9, 28, 27, 5, tzinfo=timezone(timedelta(seconds=37))),
        datetime(2026, 11, 29, 9, 28, 27, 5), datetime(2026, 7, 1, 12),  # naive: local time, as asyncpg takes it
        datetime(2026, 3, 8, 2, 30), datetime(2026, 11, 1, 1, 30), datetime(2026, 11, 1, 1, 30, fold=1),  # gap, fold
        date(2026, 11, 29), date(2026, 7, 1),
        datetime.max, datetime.min, datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC),  # infinities
        datetime(9999, 12, 31, 23, 59, 59, 999998, tzinfo=UTC),
    ]


async def test_values_are_written_as_asyncpg_writes_them(connections: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    theirs, ours = connections
    for value in samples():
        written = "SELECT $1::timestamptz::text"
        assert await ours.fetchval(written, value) == await theirs.fetchval(written, value), value
    values = samples()[:50]
    assert await ours.fetchval("SELECT $1::timestamptz[]::text", values) == await theirs.fetchval("SELECT $1::timestamptz[]::text", values)


async def test_values_are_read_as_asyncpg_reads_them(connections: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    theirs, ours = connections
    texts = [str(v) for v in samples() if isinstance(v, datetime) and v.tzinfo is not None] + ["infinity", "-infinity", "2000-01-01"]
    read = "SELECT unnest($1::text[])::timestamptz"
    for mine, asyncpgs in zip(await ours.fetch(read, texts), await theirs.fetch(read, texts), strict=True):
        assert (mine[0], mine[0].tzinfo) == (asyncpgs[0], asyncpgs[0].tzinfo)
    for _ in range(2):  # the second time from memory
        assert await ours.fetchval("SELECT '2026-11-29 09:28:27.123456+00'::timestamptz") == datetime(2026, 11, 29, 9, 28, 27, 123456, tzinfo=UTC)


async def test_what_asyncpg_refuses_is_refused(connections: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    theirs, ours = connections
    for connection in (theirs, ours):
        with pytest.raises((TypeError, asyncpg.DataError), match="expected a datetime.date or datetime.datetime instance"):
            await connection.fetchval("SELECT $1::timestamptz", "2026-11-29")
        with pytest.raises(OverflowError):
            await connection.fetchval("SELECT '4713-01-01 BC'::timestamptz")


async def test_pooled_connections_read_through_it(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        first, again = [await conn.fetchval("SELECT '2026-11-29 09:28:27.654321+00'::timestamptz") for _ in range(2)]
    assert first == datetime(2026, 11, 29, 9, 28, 27, 654321, tzinfo=UTC) and again is first, "remembered"


def test_memory_is_bounded() -> None:
    moments = Moments(size=3)
    read = [moments.decode((n * 1_000_000,)) for n in range(10)]
    assert len(moments._seen) <= 3
    assert read == [datetime(2000, 1, 1, 0, 0, n, tzinfo=UTC) for n in range(10)]
    assert moments.decode((5_000_000,)) is moments.decode((5_000_000,)), "a remembered value is handed out again"
