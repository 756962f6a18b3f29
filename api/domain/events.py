"""Events as the platform publishes them: CloudEvents 1.0, structured JSON (contract/EVENTS.md).

Built here, purely, from what a command decided; stored in the same transaction
as the change (api/store/events.py); published by the relay. `data` never holds
a URL or a person's identity; content hashes appear only in notice.reported,
and only on the internal stream (delivery to viewers redacts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from .conferences import Agreement, AgreementStatus, Commitment, CommitmentStatus, Conference
from .enforcement import EnforcementCase, EnforcementStatus
from .ids import to_global_id, uuid7
from .notices import Changed, ContentHash, Notice, NoticeStatus
from .organizations import OrganizationKind

SPEC_VERSION = "1.0"
TYPE_PREFIX = "nl.takedown."
SOURCES = {
    "notice": "/takedown/notices",
    "enforcement": "/takedown/enforcement",
    "conference": "/takedown/conferences",
    "agreement": "/takedown/conferences",
    "commitment": "/takedown/conferences",
    "victim_alert": "/takedown/victim-alerts",
}


@dataclass(frozen=True)
class Event:
    id: UUID
    aggregate: str  # notice, enforcement, ...
    name: str  # reported, removed, ...
    scope: str  # the subject's last token: a provider's or a conference's id
    aggregate_id: UUID
    aggregate_type: str  # the GraphQL type of the aggregate: Notice, EnforcementCase, ...
    aggregate_version: int | None
    occurred_at: datetime
    actor_kind: OrganizationKind | None
    data: dict[str, Any]
    version: int = 1

    @property
    def subject(self) -> str:
        return f"td.{self.aggregate}.{self.name}.{self.scope}"

    @property
    def type(self) -> str:
        return f"{TYPE_PREFIX}{self.aggregate}.{self.name}.v{self.version}"

    def envelope(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": str(self.id),
            "source": SOURCES[self.aggregate],
            "type": self.type,
            "time": iso(self.occurred_at),
            "subject": to_global_id(self.aggregate_type, self.aggregate_id),
            "datacontenttype": "application/json",
            "data": self.data,
        }
        if self.aggregate_version is not None:
            envelope["tdaggregateversion"] = self.aggregate_version
        if self.actor_kind is not None:
            envelope["tdactorkind"] = self.actor_kind.value
        return envelope


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def notice_data(notice: Notice, previous: NoticeStatus | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "noticeId": to_global_id("Notice", notice.id),
        "reference": notice.reference,
        "providerId": to_global_id("Organization", notice.provider_id),
        "reporterId": to_global_id("Organization", notice.reporter_id),
        "category": notice.category.value,
        "status": notice.status.value,
        "previousStatus": previous.value if previous else None,
        "reportedAt": iso(notice.reported_at),
        "dueAt": iso(notice.due_at),
        "removedAt": iso(notice.removed_at) if notice.removed_at else None,
        "preservationRequested": notice.preservation_requested,
    }
    if notice.refusal_reason is not None:
        data["refusalReason"] = notice.refusal_reason.value
    return data


def notice_event(
    notice: Notice,
    name: str,
    *,
    at: datetime,
    actor_kind: OrganizationKind | None,
    previous: NoticeStatus | None = None,
    extra: dict[str, Any] | None = None,
) -> Event:
    return Event(
        id=uuid7(),
        aggregate="notice",
        name=name,
        scope=str(notice.provider_id),
        aggregate_id=notice.id,
        aggregate_type="Notice",
        aggregate_version=notice.version,
        occurred_at=at,
        actor_kind=actor_kind,
        data={**notice_data(notice, previous), **(extra or {})},
    )


def notice_reported(notice: Notice, hashes: tuple[ContentHash, ...], actor_kind: OrganizationKind) -> Event:
    return notice_event(
        notice,
        "reported",
        at=notice.reported_at,
        actor_kind=actor_kind,
        extra={"contentHashes": [{"algorithm": h.algorithm.value, "value": h.value} for h in hashes]},
    )


def notice_changed(changed: Changed) -> Event:
    return notice_event(
        changed.notice,
        changed.transition.value,
        at=changed.entry.at,
        actor_kind=changed.entry.actor_kind,
        previous=changed.entry.from_status,
    )


# ------------------------------------------------- enforcement, conferences, victim alerts
# `data` carries ids, statuses and timestamps only: no notes, no penalty amounts
# (null below the CASE tier), never a victim token or an alert's hashes.


def enforcement_event(
    case: EnforcementCase,
    name: str,
    *,
    at: datetime,
    actor_kind: OrganizationKind | None,
    previous: EnforcementStatus | None = None,
) -> Event:
    return Event(
        id=uuid7(),
        aggregate="enforcement",
        name=name,
        scope=str(case.provider_id),
        aggregate_id=case.id,
        aggregate_type="EnforcementCase",
        aggregate_version=case.version,
        occurred_at=at,
        actor_kind=actor_kind,
        data={
            "caseId": to_global_id("EnforcementCase", case.id),
            "reference": case.reference,
            "providerId": to_global_id("Organization", case.provider_id),
            "status": case.status.value,
            "previousStatus": previous.value if previous else None,
            "openedAt": iso(case.opened_at),
            "orderDueAt": iso(case.order_due_at) if case.order_due_at else None,
        },
    )


def conference_created(conference: Conference, *, actor_kind: OrganizationKind) -> Event:
    return Event(
        id=uuid7(),
        aggregate="conference",
        name="created",
        scope=str(conference.id),
        aggregate_id=conference.id,
        aggregate_type="Conference",
        aggregate_version=None,
        occurred_at=conference.created_at,
        actor_kind=actor_kind,
        data={
            "conferenceId": to_global_id("Conference", conference.id),
            "title": conference.title,
            "heldOn": conference.held_on.isoformat(),
            "organizerId": to_global_id("Organization", conference.organizer_id),
            "participantIds": [to_global_id("Organization", p) for p in conference.participant_ids],
        },
    )


def agreement_event(
    agreement: Agreement,
    name: str,
    *,
    at: datetime,
    actor_kind: OrganizationKind,
    previous: AgreementStatus | None = None,
) -> Event:
    return Event(
        id=uuid7(),
        aggregate="agreement",
        name=name,
        scope=str(agreement.conference_id),
        aggregate_id=agreement.id,
        aggregate_type="Agreement",
        aggregate_version=agreement.version,
        occurred_at=at,
        actor_kind=actor_kind,
        data={
            "agreementId": to_global_id("Agreement", agreement.id),
            "conferenceId": to_global_id("Conference", agreement.conference_id),
            "title": agreement.title,
            "status": agreement.status.value,
            "previousStatus": previous.value if previous else None,
            "partyIds": [to_global_id("Organization", p) for p in agreement.party_ids],
        },
    )


def commitment_event(
    commitment: Commitment,
    name: str,
    *,
    at: datetime,
    actor_kind: OrganizationKind | None,
    previous: CommitmentStatus | None = None,
) -> Event:
    return Event(
        id=uuid7(),
        aggregate="commitment",
        name=name,
        scope=str(commitment.conference_id),
        aggregate_id=commitment.id,
        aggregate_type="Commitment",
        aggregate_version=commitment.version,
        occurred_at=at,
        actor_kind=actor_kind,
        data={
            "commitmentId": to_global_id("Commitment", commitment.id),
            "agreementId": to_global_id("Agreement", commitment.agreement_id),
            "conferenceId": to_global_id("Conference", commitment.conference_id),
            "ownerId": to_global_id("Organization", commitment.owner_id),
            "status": commitment.status.value,
            "previousStatus": previous.value if previous else None,
            "progress": commitment.progress,
            "dueOn": commitment.due_on.isoformat() if commitment.due_on else None,
        },
    )


def victim_alert_matched(alert_id: UUID, holder_id: UUID, notice_id: UUID, *, at: datetime) -> Event:
    """To the holder alone (scope = its id); the data names the alert and the notice, never the token or hashes."""
    return Event(
        id=uuid7(),
        aggregate="victim_alert",
        name="matched",
        scope=str(holder_id),
        aggregate_id=alert_id,
        aggregate_type="VictimAlert",
        aggregate_version=None,
        occurred_at=at,
        actor_kind=None,
        data={
            "victimAlertId": to_global_id("VictimAlert", alert_id),
            "noticeId": to_global_id("Notice", notice_id),
            "matchedAt": iso(at),
            "removed": True,
        },
    )
