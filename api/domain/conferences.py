"""Conferences, agreements and commitments, and the KPIs that bind commitments to live takedown data.

Pure: the rules for agreement status changes, commitment updates, `overdue`,
and what a KPI's measured value means. The measuring itself is SQL
(api/store/conferences.py) over the owner's notices of the last 90 days.

Decisions (documented in the report and here):
- Agreement statuses move forward only: DRAFT -> AGREED -> ACTIVE -> COMPLETED;
  WITHDRAWN from DRAFT, AGREED or ACTIVE. COMPLETED and WITHDRAWN are final.
- Commitment statuses PLANNED, IN_PROGRESS, AT_RISK and MISSED may change to
  any status (a missed commitment may still be delivered late); DONE and
  WITHDRAWN are final. DONE means progress 100.
- A commitment is overdue when its dueOn has passed (in UTC) and it is neither
  DONE nor WITHDRAWN: MISSED counts as overdue, because it is late and
  undelivered; the flag is about attention, not blame.
- The "owner's notices" are the notices the owner provides (a company) or
  reported (a hotline, the police): the same KPI reads sensibly for both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from .errors import BadUserInput, Conflict
from .notices import redact_contact_details
from .organizations import OrganizationKind, clean_name, reject_control_characters

TITLE_MAX = 200
DESCRIPTION_MAX = 4000
MAX_PARTIES = 200
KPI_WINDOW = timedelta(days=90)


class AgreementStatus(StrEnum):
    DRAFT = "DRAFT"
    AGREED = "AGREED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    WITHDRAWN = "WITHDRAWN"


class CommitmentStatus(StrEnum):
    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    AT_RISK = "AT_RISK"
    DONE = "DONE"
    MISSED = "MISSED"
    WITHDRAWN = "WITHDRAWN"


class KpiMetric(StrEnum):
    SHARE_REMOVED_WITHIN_DEADLINE = "SHARE_REMOVED_WITHIN_DEADLINE"
    MEDIAN_SECONDS_TO_REMOVAL = "MEDIAN_SECONDS_TO_REMOVAL"
    OVERDUE_NOTICES = "OVERDUE_NOTICES"


class KpiComparison(StrEnum):
    AT_LEAST = "AT_LEAST"
    AT_MOST = "AT_MOST"


A = AgreementStatus
AGREEMENT_LIFECYCLE: dict[AgreementStatus, frozenset[AgreementStatus]] = {
    A.DRAFT: frozenset({A.AGREED, A.WITHDRAWN}),
    A.AGREED: frozenset({A.ACTIVE, A.WITHDRAWN}),
    A.ACTIVE: frozenset({A.COMPLETED, A.WITHDRAWN}),
    A.COMPLETED: frozenset(),
    A.WITHDRAWN: frozenset(),
}
C = CommitmentStatus
FINAL_COMMITMENT = frozenset({C.DONE, C.WITHDRAWN})


@dataclass(frozen=True)
class Conference:
    id: UUID
    title: str
    held_on: date
    organizer_id: UUID
    participant_ids: tuple[UUID, ...]
    created_at: datetime


@dataclass(frozen=True)
class Agreement:
    id: UUID
    conference_id: UUID
    title: str
    description: str
    status: AgreementStatus
    party_ids: tuple[UUID, ...]
    version: int


@dataclass(frozen=True)
class Kpi:
    metric: KpiMetric
    comparison: KpiComparison
    target: float


@dataclass(frozen=True)
class Commitment:
    id: UUID
    agreement_id: UUID
    conference_id: UUID
    owner_id: UUID
    title: str
    description: str
    due_on: date | None
    status: CommitmentStatus
    progress: int
    kpi: Kpi | None
    version: int

    def overdue(self, now: datetime) -> bool:
        return self.due_on is not None and self.due_on < today(now) and self.status not in FINAL_COMMITMENT


@dataclass(frozen=True)
class CommitmentUpdate:
    at: datetime
    status: CommitmentStatus
    progress: int
    actor_kind: OrganizationKind
    note: str | None


@dataclass(frozen=True)
class Measures:
    """An owner's takedown figures over the KPI window; None where there is nothing to measure."""

    notices: int
    share_removed_within_deadline: float | None
    median_seconds_to_removal: float | None
    overdue_notices: int

    def value(self, metric: KpiMetric) -> float | None:
        if self.notices == 0:
            return None
        if metric is KpiMetric.SHARE_REMOVED_WITHIN_DEADLINE:
            return self.share_removed_within_deadline
        if metric is KpiMetric.MEDIAN_SECONDS_TO_REMOVAL:
            return self.median_seconds_to_removal
        return float(self.overdue_notices)


NO_MEASURES = Measures(0, None, None, 0)


def today(now: datetime) -> date:
    """Due dates are calendar dates in UTC."""
    return now.astimezone(UTC).date()


def met(kpi: Kpi, current: float | None) -> bool | None:
    if current is None:
        return None
    return current >= kpi.target if kpi.comparison is KpiComparison.AT_LEAST else current <= kpi.target


# ------------------------------------------------------------------ input


# Titles and descriptions go to every participant and into events, like notes: screened the same way.
# Redacted before the length check: "[redacted]" can be longer than what it replaces.
def clean_title(value: str, *, field: str = "title") -> str:
    reject_control_characters(value, field)
    return clean_name(redact_contact_details(value), what=field, limit=TITLE_MAX)


def clean_description(value: str, *, field: str = "description") -> str:
    reject_control_characters(value, field)
    text = redact_contact_details(value).strip()
    if len(text) > DESCRIPTION_MAX:
        raise BadUserInput(f"{field} must be at most {DESCRIPTION_MAX} characters, got {len(text)}")
    return text


def clean_kpi(metric: KpiMetric, comparison: KpiComparison, target: float) -> Kpi:
    if target != target or target in (float("inf"), float("-inf")):
        raise BadUserInput("kpi.target must be a finite number")
    if metric is KpiMetric.SHARE_REMOVED_WITHIN_DEADLINE and not 0 <= target <= 1:
        raise BadUserInput("kpi.target of SHARE_REMOVED_WITHIN_DEADLINE is a share between 0 and 1")
    if target < 0:
        raise BadUserInput(f"kpi.target of {metric.value} must not be negative")
    return Kpi(metric, comparison, float(target))


def clean_progress(progress: int) -> int:
    if not 0 <= progress <= 100:
        raise BadUserInput(f"progress is a percentage from 0 to 100, got {progress}")
    return progress


# ------------------------------------------------------------- transitions


def check_agreement_version(agreement: Agreement, expected: int | None) -> None:
    if expected is not None and expected != agreement.version:
        raise Conflict(f"agreement is at version {agreement.version}, not {expected}; reload and retry")


def set_agreement_status(agreement: Agreement, status: AgreementStatus) -> Agreement:
    if status not in AGREEMENT_LIFECYCLE[agreement.status]:
        raise Conflict(f"an agreement that is {agreement.status.value} cannot become {status.value}")
    return replace(agreement, status=status, version=agreement.version + 1)


def check_commitment_version(commitment: Commitment, expected: int | None) -> None:
    if expected is not None and expected != commitment.version:
        raise Conflict(f"commitment is at version {commitment.version}, not {expected}; reload and retry")


def update_commitment(
    commitment: Commitment,
    status: CommitmentStatus,
    progress: int,
    *,
    actor_kind: OrganizationKind,
    now: datetime,
    note: str | None,
) -> tuple[Commitment, CommitmentUpdate]:
    if commitment.status in FINAL_COMMITMENT:
        raise Conflict(f"a commitment that is {commitment.status.value} can no longer change")
    clean_progress(progress)
    if status is C.DONE and progress != 100:
        raise BadUserInput("a DONE commitment has progress 100")
    changed = replace(commitment, status=status, progress=progress, version=commitment.version + 1)
    return changed, CommitmentUpdate(now, status, progress, actor_kind, note)
