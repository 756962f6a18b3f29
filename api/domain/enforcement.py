"""Administrative enforcement: the case lifecycle of ACCESS.md.

    OPEN -> WARNING_SENT -> ORDER_ISSUED -> COMPLIED | PENALTY_IMPOSED -> CLOSED
    OPEN -> ORDER_ISSUED;  ORDER_ISSUED -> OBJECTION_FILED (the provider)
    OBJECTION_FILED -> COMPLIED | PENALTY_IMPOSED | CLOSED;  the regulator may close from any status

Pure: commands hand in the current case, the actor and the time; they get the
new case and its history step back, or CONFLICT and nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from .errors import BadUserInput, Conflict
from .organizations import OrganizationKind


class EnforcementStatus(StrEnum):
    OPEN = "OPEN"
    WARNING_SENT = "WARNING_SENT"
    ORDER_ISSUED = "ORDER_ISSUED"
    OBJECTION_FILED = "OBJECTION_FILED"
    COMPLIED = "COMPLIED"
    PENALTY_IMPOSED = "PENALTY_IMPOSED"
    CLOSED = "CLOSED"


class Step(StrEnum):
    """What an actor asks for; the value is the event name (td.enforcement.<value>.<provider>)."""

    WARN = "warning_sent"
    ORDER = "order_issued"
    OBJECT = "objection_filed"
    COMPLY = "complied"
    PENALIZE = "penalty_imposed"
    CLOSE = "closed"


E = EnforcementStatus
LIFECYCLE: dict[Step, tuple[frozenset[EnforcementStatus], EnforcementStatus]] = {
    Step.WARN: (frozenset({E.OPEN}), E.WARNING_SENT),
    Step.ORDER: (frozenset({E.OPEN, E.WARNING_SENT}), E.ORDER_ISSUED),
    Step.OBJECT: (frozenset({E.ORDER_ISSUED}), E.OBJECTION_FILED),
    Step.COMPLY: (frozenset({E.ORDER_ISSUED, E.OBJECTION_FILED}), E.COMPLIED),
    Step.PENALIZE: (frozenset({E.ORDER_ISSUED, E.OBJECTION_FILED}), E.PENALTY_IMPOSED),
    Step.CLOSE: (frozenset(set(E) - {E.CLOSED}), E.CLOSED),
}
MAX_NOTICES = 1000
PENALTY_MAX = 2_147_483_647  # GraphQL Int


@dataclass(frozen=True)
class EnforcementCase:
    id: UUID
    reference: str
    provider_id: UUID
    status: EnforcementStatus
    opened_at: datetime
    order_due_at: datetime | None
    penalty_euros: int | None
    version: int


@dataclass(frozen=True)
class EnforcementStep:
    at: datetime
    status: EnforcementStatus
    actor_kind: OrganizationKind
    note: str | None


@dataclass(frozen=True)
class Moved:
    case: EnforcementCase
    step: EnforcementStep
    name: Step
    previous: EnforcementStatus


def check_version(case: EnforcementCase, expected: int | None) -> None:
    if expected is not None and expected != case.version:
        raise Conflict(f"case {case.reference} is at version {case.version}, not {expected}; reload and retry")


def check_order(due_at: datetime, penalty_euros: int, now: datetime) -> None:
    if due_at.tzinfo is None:
        raise BadUserInput("dueAt needs a time zone offset")
    if due_at <= now:
        raise BadUserInput("dueAt of a removal order must be in the future")
    if not 0 <= penalty_euros <= PENALTY_MAX:
        raise BadUserInput("penaltyEuros must be a whole, non-negative number of euros")


def apply(
    case: EnforcementCase,
    step: Step,
    *,
    actor_kind: OrganizationKind,
    now: datetime,
    note: str | None = None,
    order_due_at: datetime | None = None,
    penalty_euros: int | None = None,
) -> Moved:
    """Move a case along the lifecycle, or raise CONFLICT and change nothing."""
    sources, target = LIFECYCLE[step]
    if case.status not in sources:
        raise Conflict(f"case {case.reference} is {case.status.value}; it cannot move to {target.value}")
    changes: dict[str, object] = {"status": target, "version": case.version + 1}
    if step is Step.ORDER:
        if order_due_at is None or penalty_euros is None:
            raise BadUserInput("a removal order needs dueAt and penaltyEuros")
        check_order(order_due_at, penalty_euros, now)
        changes["order_due_at"] = order_due_at
        changes["penalty_euros"] = penalty_euros
    moved = replace(case, **changes)  # type: ignore[arg-type]
    return Moved(moved, EnforcementStep(now, target, actor_kind, note), step, case.status)


def reference(year: int, number: int) -> str:
    return f"ENF-{year}-{number:06d}"
