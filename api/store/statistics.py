"""The statistics report as one SQL aggregate over the notices of a period.

One statement computes every row and the totals (GROUPING SETS), with median
and p90 by percentile_cont over seconds to removal. notices_statistics_idx
(migration 0003) holds every column the report reads, keyed by reportedAt, so a
year of notices is one index range scan.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain.statistics import Row, StatisticsGrouping

G = StatisticsGrouping
WORK_MEM = "64MB"
KEYS = {
    G.MONTH: "to_char(n.reported_at AT TIME ZONE 'UTC', 'YYYY-MM')",
    G.YEAR: "to_char(n.reported_at AT TIME ZONE 'UTC', 'YYYY')",
    G.CATEGORY: "n.category",
    G.PROVIDER: "n.provider_id::text",
}
OWN_OR_OTHERS = "CASE WHEN n.provider_id = $4::uuid THEN 'own' ELSE 'others' END"
SECONDS = "extract(epoch FROM n.removed_at - n.reported_at)::float8"
REPORT = """
    SELECT {key} AS key, grouping({key}) = 1 AS total,
           count(*) AS notices,
           count(*) FILTER (WHERE n.removed_at IS NOT NULL) AS removed,
           count(*) FILTER (WHERE n.removed_at <= n.due_at) AS removed_within_deadline,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}) FILTER (WHERE n.removed_at IS NOT NULL))::bigint
             AS median_seconds_to_removal,
           round(percentile_cont(0.9) WITHIN GROUP (ORDER BY {seconds}) FILTER (WHERE n.removed_at IS NOT NULL))::bigint
             AS p90_seconds_to_removal,
           count(*) FILTER (WHERE n.status IN ('NOTIFIED', 'ACKNOWLEDGED') AND n.due_at < $3::timestamptz) AS overdue_now,
           count(*) FILTER (WHERE n.escalated_at IS NOT NULL) AS escalated
    FROM notices n
    WHERE n.reported_at >= $1::timestamptz AND n.reported_at < $2::timestamptz
    GROUP BY GROUPING SETS (({key}), ())
"""


def report_sql(group_by: StatisticsGrouping, *, own_or_others: bool) -> str:
    key = OWN_OR_OTHERS if own_or_others else KEYS[group_by]
    return REPORT.format(key=key, seconds=SECONDS)


async def sort_in_memory(conn: asyncpg.Connection) -> None:
    """For the caller's transaction: the ordered-set aggregates sort each group, and the default
    4MB of work_mem spills a year of notices to disk."""
    await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")


def _row(r: asyncpg.Record) -> Row:
    return Row(
        key=r["key"] or "",
        notices=r["notices"],
        removed=r["removed"],
        removed_within_deadline=r["removed_within_deadline"],
        median_seconds_to_removal=r["median_seconds_to_removal"],
        p90_seconds_to_removal=r["p90_seconds_to_removal"],
        overdue_now=r["overdue_now"],
        escalated=r["escalated"],
    )


async def report(
    conn: asyncpg.Connection,
    group_by: StatisticsGrouping,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    own_provider: UUID | None = None,
) -> tuple[list[Row], Row]:
    """Rows keyed as SQL groups them (provider ids as text; 'own'/'others' with `own_provider`), and the totals."""
    own_or_others = own_provider is not None
    args: list[object] = [start, end, now]
    if own_or_others:
        args.append(own_provider)
    records = await conn.fetch(report_sql(group_by, own_or_others=own_or_others), *args)
    rows = [_row(r) for r in records if not r["total"]]
    totals = next((_row(r) for r in records if r["total"]), Row("", 0, 0, 0, None, None, 0, 0))
    return rows, totals
