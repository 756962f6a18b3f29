"""The statistics report for a viewer: figures from SQL, shaped by the access policy's statistics view."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.organizations import Viewer
from ..domain.statistics import OTHERS, Report, Row, StatisticsGrouping, apply_suppression, check_period
from ..store import organizations as organizations_store
from ..store import statistics as store


async def report(
    pool: asyncpg.Pool, viewer: Viewer, *, start: datetime, end: datetime, group_by: StatisticsGrouping, now: datetime
) -> Report:
    check_period(start, end)
    view = access.statistics_view(viewer)
    own_or_others = group_by is StatisticsGrouping.PROVIDER and not view.names_providers
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await store.sort_in_memory(conn)
        rows, totals = await store.report(
            conn, group_by, start, end, now, own_provider=viewer.organization_id if own_or_others else None
        )
        if group_by is StatisticsGrouping.PROVIDER:
            if own_or_others:
                own_name = await organizations_store.get(conn, viewer.organization_id)
                by_key = {r.key: r for r in rows}
                empty = Row("", 0, 0, 0, None, None, 0, 0)
                rows = [
                    replace(by_key.get("own", empty), key=own_name.name if own_name else "own", own=True),
                    replace(by_key.get("others", empty), key=OTHERS),
                ]
            else:
                ids = [UUID(r.key) for r in rows]
                names = {str(o.id): o.name for o in await organizations_store.by_ids(conn, ids) if o is not None}
                rows = sorted((replace(r, key=names.get(r.key, r.key)) for r in rows), key=lambda r: r.key.lower())
        else:
            rows = sorted(rows, key=lambda r: r.key)
    shown, totals = apply_suppression(rows, replace(totals, key="total"), view.suppression_threshold)
    return Report(start, end, group_by, shown, totals, view.suppression_threshold)
