"""National statistics over GraphQL: figures from SQL, shaped by the viewer's statistics view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from ..domain.statistics import Row, StatisticsGrouping
from ..services import statistics as service
from .context import Info

StatisticsGroupingEnum = strawberry.enum(StatisticsGrouping)


@strawberry.type(name="StatisticsRow")
class StatisticsRowType:
    key: str = strawberry.field(description="Month (2017-03), year (2017), provider name, or category, after the grouping.")
    notices: int | None = strawberry.field(
        description="Null when fewer notices than the suppression threshold (small-cell suppression)."
    )
    removed: int | None
    removed_within_deadline: int | None
    median_seconds_to_removal: int | None
    p90_seconds_to_removal: int | None
    overdue_now: int | None
    escalated: int | None
    suppressed: bool

    @classmethod
    def of(cls, r: Row) -> StatisticsRowType:
        return cls(
            key=r.key,
            notices=r.notices,
            removed=r.removed,
            removed_within_deadline=r.removed_within_deadline,
            median_seconds_to_removal=r.median_seconds_to_removal,
            p90_seconds_to_removal=r.p90_seconds_to_removal,
            overdue_now=r.overdue_now,
            escalated=r.escalated,
            suppressed=r.suppressed,
        )


@strawberry.type(name="StatisticsReport")
class StatisticsReportType:
    from_: datetime = strawberry.field(name="from")
    to: datetime
    group_by: StatisticsGrouping
    rows: list[StatisticsRowType]
    totals: StatisticsRowType
    suppression_threshold: int = strawberry.field(description="Rows with fewer notices than this are suppressed for this viewer.")


@strawberry.type
class StatisticsQuery:
    @strawberry.field
    async def statistics(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        group_by: StatisticsGrouping,
    ) -> StatisticsReportType:
        report = await service.report(
            info.context.pool, info.context.require_viewer(), start=from_, end=to, group_by=group_by, now=info.context.now
        )
        return StatisticsReportType(
            from_=report.start,
            to=report.end,
            group_by=report.group_by,
            rows=[StatisticsRowType.of(r) for r in report.rows],
            totals=StatisticsRowType.of(report.totals),
            suppression_threshold=report.suppression_threshold,
        )
