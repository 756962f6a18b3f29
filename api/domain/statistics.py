"""National statistics: the report's shape, and what a viewer may see of it (ACCESS.md).

The figures are SQL aggregates (api/store/statistics.py); this module decides
the grouping keys, the COMPANY view (its own row plus one `others` row) and
small-cell suppression.

Decisions:
- A period is [from, to) over `reportedAt`; month and year keys are in UTC.
- `removed` counts notices with a removal time (REMOVED, VERIFIED_OFFLINE, or
  withdrawn after removal); a reappeared notice is no longer removed.
  `removedWithinDeadline` is removedAt <= dueAt. Median and p90 are over the
  seconds from reportedAt to removedAt of removed notices, rounded.
- `overdueNow` is NOTIFIED or ACKNOWLEDGED past dueAt at the request time;
  `escalated` counts notices that were ever escalated.
- Suppression (threshold 5 for COMPANY viewers, 0 for the others) nulls every
  count of a row with fewer notices than the threshold, except the viewer's own
  row. The totals row is suppressed too whenever any row is, or its own count is
  below the threshold, so no suppressed figure can be recovered by subtraction.
- A COMPANY viewer grouping by MONTH, YEAR or CATEGORY sees national rows (no
  provider is named in them); none of them is its own, so all are subject to
  suppression.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from .errors import BadUserInput

OTHERS = "others"
MAX_PERIOD = timedelta(days=366 * 25)


class StatisticsGrouping(StrEnum):
    MONTH = "MONTH"
    YEAR = "YEAR"
    PROVIDER = "PROVIDER"
    CATEGORY = "CATEGORY"


@dataclass(frozen=True)
class Row:
    key: str
    notices: int | None
    removed: int | None
    removed_within_deadline: int | None
    median_seconds_to_removal: int | None
    p90_seconds_to_removal: int | None
    overdue_now: int | None
    escalated: int | None
    suppressed: bool = False
    own: bool = False

    def suppress(self) -> Row:
        return replace(
            self,
            notices=None,
            removed=None,
            removed_within_deadline=None,
            median_seconds_to_removal=None,
            p90_seconds_to_removal=None,
            overdue_now=None,
            escalated=None,
            suppressed=True,
        )


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    group_by: StatisticsGrouping
    rows: list[Row]
    totals: Row
    suppression_threshold: int


def check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise BadUserInput("from and to need a time zone offset")
    if start >= end:
        raise BadUserInput("from must be before to")
    if end - start > MAX_PERIOD:
        raise BadUserInput("a report covers at most 25 years")


def apply_suppression(rows: list[Row], totals: Row, threshold: int) -> tuple[list[Row], Row]:
    shown = [r if r.own or (r.notices or 0) >= threshold else r.suppress() for r in rows]
    if threshold and (any(r.suppressed for r in shown) or (totals.notices or 0) < threshold):
        totals = totals.suppress()
    return shown, totals
