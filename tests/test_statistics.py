"""Statistics: figures checked against a hand-computed fixture, the COMPANY view and small-cell suppression.

The fixture lives in a database of its own, so other tests' notices do not
disturb the figures. Notices are inserted with controlled timestamps.

    provider  reported (UTC)       category            outcome                       seconds to removal
    Alpha     2017-01-10 10:00     BASELINE_CSAM       removed                       3600     within
    Alpha     2017-01-20 10:00     BASELINE_CSAM       removed                       7200     within
    Alpha     2017-02-05 10:00     BASELINE_CSAM       removed                       108000   late
    Alpha     2017-03-01 10:00     BASELINE_CSAM       verified offline              14400    within
    Alpha     2017-03-02 10:00     BASELINE_CSAM       NOTIFIED, overdue
    Alpha     2017-03-03 10:00     HARMFUL             ESCALATED
    Beta      2017-02-10 10:00     BASELINE_CSAM       removed                       600      within
    Beta      2017-02-11 10:00     BASELINE_CSAM       ACKNOWLEDGED, overdue
    Beta      2017-12-31 23:00     HARMFUL             REFUSED          (January 2018 in Amsterdam; UTC month 2017-12)
    Gamma     2017-07-01 12:00     NATIONALLY_ILLEGAL  removed exactly at the deadline  86400  within
    Alpha     2016-12-31 23:59:59  and 2018-01-01 00:00:00: outside [2017-01-01, 2018-01-01)

percentile_cont interpolates: the p90 of [3600, 7200, 14400, 108000] is 14400 + 0.7 * 93600 = 79920.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from api.domain.ids import uuid7_at
from api.domain.organizations import Organization
from api.domain.organizations import OrganizationKind as K
from api.settings import Settings
from api.store.pool import create_pool
from tests.conftest import Factory, Member, Services, app_client, error_codes, fresh_database

STATISTICS = """query($from: DateTime!, $to: DateTime!, $g: StatisticsGrouping!) {
  statistics(from: $from, to: $to, groupBy: $g) {
    from to groupBy suppressionThreshold
    rows { key notices removed removedWithinDeadline medianSecondsToRemoval p90SecondsToRemoval overdueNow escalated suppressed }
    totals { key notices removed removedWithinDeadline medianSecondsToRemoval p90SecondsToRemoval overdueNow escalated suppressed }
  } }"""
YEAR_2017 = {"from": "2017-01-01T00:00:00Z", "to": "2018-01-01T00:00:00Z"}
H = 3600


@dataclass
class World:
    factory: Factory
    alpha: Organization
    beta: Organization
    gamma: Organization


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def insert_notice(
    conn: asyncpg.Connection,
    provider: Organization,
    reporter: Organization,
    reported: str,
    *,
    category: str = "BASELINE_CSAM",
    status: str = "NOTIFIED",
    removed_after: int | None = None,
    escalated: bool = False,
) -> UUID:
    reported_at = at(reported)
    notice_id = uuid7_at(reported_at)
    await conn.execute(
        """INSERT INTO notices (id, reference, status, category, provider_id, reporter_id, url_ciphertext, url_key_id,
                                url_hmac, reported_at, due_at, removed_at, escalated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'test', $8, $9, $10, $11, $12)""",
        notice_id,
        f"NTC-TEST-{secrets.token_hex(6)}",
        status,
        category,
        provider.id,
        reporter.id,
        secrets.token_bytes(32),
        secrets.token_bytes(32),
        reported_at,
        reported_at + timedelta(hours=24),
        reported_at + timedelta(seconds=removed_after) if removed_after is not None else None,
        reported_at + timedelta(hours=30) if escalated else None,
    )
    return notice_id


@pytest.fixture(scope="module")
async def world(services: Services, settings: Settings) -> AsyncIterator[World]:
    isolated = settings.with_overrides(database_url=await fresh_database(services))
    pool = await create_pool(isolated)
    try:
        async with app_client(isolated) as client:
            factory = Factory(pool, isolated, client)
            alpha = await factory.organization(K.COMPANY, "Alpha Hosting")
            beta = await factory.organization(K.COMPANY, "Beta Cloud")
            gamma = await factory.organization(K.COMPANY, "Gamma Media")
            hotline = await factory.organization(K.HOTLINE)
            async with pool.acquire() as conn:
                notice = insert_notice
                await notice(conn, alpha, hotline, "2017-01-10T10:00:00", status="REMOVED", removed_after=1 * H)
                await notice(conn, alpha, hotline, "2017-01-20T10:00:00", status="REMOVED", removed_after=2 * H)
                await notice(conn, alpha, hotline, "2017-02-05T10:00:00", status="REMOVED", removed_after=30 * H)
                await notice(conn, alpha, hotline, "2017-03-01T10:00:00", status="VERIFIED_OFFLINE", removed_after=4 * H)
                await notice(conn, alpha, hotline, "2017-03-02T10:00:00")
                await notice(conn, alpha, hotline, "2017-03-03T10:00:00", category="HARMFUL", status="ESCALATED", escalated=True)
                await notice(conn, beta, hotline, "2017-02-10T10:00:00", status="REMOVED", removed_after=600)
                await notice(conn, beta, hotline, "2017-02-11T10:00:00", status="ACKNOWLEDGED")
                await notice(conn, beta, hotline, "2017-12-31T23:00:00", category="HARMFUL", status="REFUSED")
                await notice(conn, gamma, hotline, "2017-07-01T12:00:00", category="NATIONALLY_ILLEGAL", status="REMOVED", removed_after=24 * H)
                await notice(conn, alpha, hotline, "2016-12-31T23:59:59", status="REMOVED", removed_after=1)
                await notice(conn, alpha, hotline, "2018-01-01T00:00:00", status="REMOVED", removed_after=1)
            yield World(factory, alpha, beta, gamma)
    finally:
        await pool.close()


def row(key: str, *figures: int | None) -> dict[str, Any]:
    names = ("notices", "removed", "removedWithinDeadline", "medianSecondsToRemoval", "p90SecondsToRemoval", "overdueNow", "escalated")
    return {"key": key, **dict(zip(names, figures, strict=True)), "suppressed": False}


def suppressed(key: str) -> dict[str, Any]:
    return {"key": key, **dict.fromkeys(row(key, *[0] * 7).keys() - {"key", "suppressed"}), "suppressed": True}  # type: ignore[arg-type]


async def report(member: Member, grouping: str, period: dict[str, str] = YEAR_2017) -> dict[str, Any]:
    result = await member.gql(STATISTICS, {**period, "g": grouping})
    assert "errors" not in result, result
    return result["data"]["statistics"]  # type: ignore[no-any-return]


TOTALS = row("total", 10, 6, 5, 10800, 97200, 2, 1)


@pytest.mark.parametrize("kind", [K.GOVERNMENT, K.REGULATOR, K.POLICE, K.PROSECUTOR, K.HOTLINE])
async def test_by_provider_for_the_kinds_that_see_names(world: World, kind: K) -> None:
    viewer = await world.factory.member(kind)
    got = await report(viewer, "PROVIDER")
    assert got["suppressionThreshold"] == 0 and got["groupBy"] == "PROVIDER"
    assert got["rows"] == [
        row("Alpha Hosting", 6, 4, 3, 10800, 79920, 1, 1),
        row("Beta Cloud", 3, 1, 1, 600, 600, 1, 0),
        row("Gamma Media", 1, 1, 1, 86400, 86400, 0, 0),
    ]
    assert got["totals"] == TOTALS


async def test_by_month_in_utc(world: World) -> None:
    got = await report(await world.factory.member(K.GOVERNMENT), "MONTH")
    assert got["rows"] == [
        row("2017-01", 2, 2, 2, 5400, 6840, 0, 0),
        row("2017-02", 3, 2, 1, 54300, 97260, 1, 0),
        row("2017-03", 3, 1, 1, 14400, 14400, 1, 1),
        row("2017-07", 1, 1, 1, 86400, 86400, 0, 0),
        row("2017-12", 1, 0, 0, None, None, 0, 0),
    ]
    assert got["totals"] == TOTALS


async def test_by_year_and_by_category(world: World) -> None:
    viewer = await world.factory.member(K.REGULATOR)
    period = {"from": "2016-01-01T00:00:00Z", "to": "2019-01-01T00:00:00Z"}
    years = await report(viewer, "YEAR", period)
    assert years["rows"] == [
        row("2016", 1, 1, 1, 1, 1, 0, 0),
        row("2017", 10, 6, 5, 10800, 97200, 2, 1),
        row("2018", 1, 1, 1, 1, 1, 0, 0),
    ]
    categories = await report(viewer, "CATEGORY")
    assert categories["rows"] == [
        row("BASELINE_CSAM", 7, 5, 4, 7200, 70560, 2, 0),
        row("HARMFUL", 2, 0, 0, None, None, 0, 1),
        row("NATIONALLY_ILLEGAL", 1, 1, 1, 86400, 86400, 0, 0),
    ]
    assert categories["totals"] == TOTALS


async def test_a_company_sees_its_own_row_and_others(world: World) -> None:
    beta = await world.factory.member(K.COMPANY, organization=world.beta)
    got = await report(beta, "PROVIDER")
    assert got["suppressionThreshold"] == 5
    assert got["rows"] == [
        row("Beta Cloud", 3, 1, 1, 600, 600, 1, 0),  # its own row: never suppressed, even under 5
        row("others", 7, 5, 4, 14400, 99360, 1, 1),
    ]
    assert got["totals"] == TOTALS


async def test_small_cells_are_suppressed_for_companies(world: World) -> None:
    beta = await world.factory.member(K.COMPANY, organization=world.beta)
    january = {"from": "2017-01-01T00:00:00Z", "to": "2017-02-01T00:00:00Z"}
    got = await report(beta, "PROVIDER", january)
    assert got["rows"] == [row("Beta Cloud", 0, 0, 0, None, None, 0, 0), suppressed("others")]
    assert got["totals"] == suppressed("total"), "the total minus its own row would reveal the others"
    months = await report(beta, "MONTH")
    assert months["rows"] == [suppressed(k) for k in ("2017-01", "2017-02", "2017-03", "2017-07", "2017-12")]
    assert months["totals"] == suppressed("total")
    years = await report(beta, "YEAR")
    assert years["rows"] == [row("2017", 10, 6, 5, 10800, 97200, 2, 1)] and years["totals"] == TOTALS
    # The same January for a government viewer: nothing is suppressed.
    government = await report(await world.factory.member(K.GOVERNMENT), "PROVIDER", january)
    assert government["rows"] == [row("Alpha Hosting", 2, 2, 2, 5400, 6840, 0, 0)]


async def test_the_period_must_make_sense(world: World) -> None:
    viewer = await world.factory.member(K.GOVERNMENT)
    backwards = {"from": "2018-01-01T00:00:00Z", "to": "2017-01-01T00:00:00Z", "g": "YEAR"}
    assert error_codes(await viewer.gql(STATISTICS, backwards)) == ["BAD_USER_INPUT"]
    empty = await report(viewer, "PROVIDER", {"from": "2030-01-01T00:00:00Z", "to": "2031-01-01T00:00:00Z"})
    assert empty["rows"] == [] and empty["totals"] == row("total", 0, 0, 0, None, None, 0, 0)
