"""Conferences, agreements and commitments over GraphQL, with KPIs measured at read time."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import asyncpg
import strawberry

from ..domain.conferences import (
    Agreement,
    AgreementStatus,
    Commitment,
    CommitmentStatus,
    CommitmentUpdate,
    Conference,
    KpiComparison,
    KpiMetric,
    Measures,
    clean_kpi,
    met,
)
from ..domain.errors import NotFound
from ..domain.ids import expect_global_id, to_global_id
from ..services import conferences as service
from ..store import conferences as store
from .context import Info
from .types import Node, OrganizationType, load_organization

AgreementStatusEnum = strawberry.enum(AgreementStatus)
CommitmentStatusEnum = strawberry.enum(CommitmentStatus)
KpiMetricEnum = strawberry.enum(KpiMetric, description="A measurable target bound to live takedown data.")
KpiComparisonEnum = strawberry.enum(KpiComparison)


async def _organizations(info: Info, ids: tuple[UUID, ...]) -> list[OrganizationType]:
    return [await load_organization(info, i) for i in ids]


async def _conference(info: Info, conference_id: UUID) -> Conference | None:
    return await info.context.loaders.keyed("conference", store.conferences_by_ids).load(conference_id)


async def _visible_conference(info: Info, conference_id: UUID) -> Conference | None:
    conference = await _conference(info, conference_id)
    return conference if service.sees(info.context.require_viewer(), conference) else None


@strawberry.type(name="Conference")
class ConferenceType(Node):
    record: strawberry.Private[Conference]
    title: str
    held_on: date

    @classmethod
    def of(cls, c: Conference) -> ConferenceType:
        return cls(id=strawberry.ID(to_global_id("Conference", c.id)), record=c, title=c.title, held_on=c.held_on)

    @strawberry.field
    async def organizer(self, info: Info) -> OrganizationType:
        return await load_organization(info, self.record.organizer_id)

    @strawberry.field
    async def participants(self, info: Info) -> list[OrganizationType]:
        return await _organizations(info, self.record.participant_ids)

    @strawberry.field
    async def agreements(self, info: Info) -> list[AgreementType]:
        found = await info.context.loaders.keyed("conference.agreements", store.agreements_of).load(self.record.id)
        return [AgreementType.of(a) for a in found]


@strawberry.type(name="Agreement")
class AgreementType(Node):
    record: strawberry.Private[Agreement]
    title: str
    description: str
    status: AgreementStatus
    version: int

    @classmethod
    def of(cls, a: Agreement) -> AgreementType:
        return cls(
            id=strawberry.ID(to_global_id("Agreement", a.id)),
            record=a,
            title=a.title,
            description=a.description,
            status=a.status,
            version=a.version,
        )

    @strawberry.field
    async def conference(self, info: Info) -> ConferenceType:
        found = await _conference(info, self.record.conference_id)
        assert found is not None
        return ConferenceType.of(found)

    @strawberry.field
    async def parties(self, info: Info) -> list[OrganizationType]:
        return await _organizations(info, self.record.party_ids)

    @strawberry.field
    async def commitments(self, info: Info) -> list[CommitmentType]:
        found = await info.context.loaders.keyed("agreement.commitments", store.commitments_of).load(self.record.id)
        return [CommitmentType.of(c) for c in found]


@strawberry.type(name="Kpi")
class KpiType:
    metric: KpiMetric
    comparison: KpiComparison
    target: float
    current: float | None = strawberry.field(description="Measured now over the last 90 days; null when the owner has no notices.")
    met: bool | None


@strawberry.type(name="CommitmentUpdate")
class CommitmentUpdateType:
    at: datetime
    status: CommitmentStatus
    progress: int
    note: str | None


@strawberry.type(name="Commitment")
class CommitmentType(Node):
    record: strawberry.Private[Commitment]
    title: str
    description: str
    due_on: date | None
    status: CommitmentStatus
    progress: int = strawberry.field(description="0..100")
    version: int

    @classmethod
    def of(cls, c: Commitment) -> CommitmentType:
        return cls(
            id=strawberry.ID(to_global_id("Commitment", c.id)),
            record=c,
            title=c.title,
            description=c.description,
            due_on=c.due_on,
            status=c.status,
            progress=c.progress,
            version=c.version,
        )

    @strawberry.field
    async def agreement(self, info: Info) -> AgreementType:
        found = await info.context.loaders.keyed("agreement", store.agreements_by_ids).load(self.record.agreement_id)
        assert found is not None
        return AgreementType.of(found)

    @strawberry.field
    async def owner(self, info: Info) -> OrganizationType:
        return await load_organization(info, self.record.owner_id)

    @strawberry.field
    def overdue(self, info: Info) -> bool:
        return self.record.overdue(info.context.now)

    @strawberry.field
    async def kpi(self, info: Info) -> KpiType | None:
        kpi = self.record.kpi
        if kpi is None:
            return None
        now = info.context.now

        async def measure(conn: asyncpg.Connection, owners: list[UUID]) -> list[Measures]:
            return await store.measures(conn, owners, now)

        measures: Measures = await info.context.loaders.keyed("kpi.measures", measure).load(self.record.owner_id)
        current = measures.value(kpi.metric)
        return KpiType(metric=kpi.metric, comparison=kpi.comparison, target=kpi.target, current=current, met=met(kpi, current))

    @strawberry.field
    async def updates(self, info: Info) -> list[CommitmentUpdateType]:
        found: list[CommitmentUpdate] = await info.context.loaders.keyed("commitment.updates", store.updates).load(
            self.record.id
        )
        return [CommitmentUpdateType(at=u.at, status=u.status, progress=u.progress, note=u.note) for u in found]


# ------------------------------------------------------------------ inputs


@strawberry.input
class CreateConferenceInput:
    title: str
    held_on: date
    participant_ids: list[strawberry.ID]
    idempotency_key: str | None = None


@strawberry.input
class CreateAgreementInput:
    conference_id: strawberry.ID
    title: str
    description: str
    party_ids: list[strawberry.ID]
    idempotency_key: str | None = None


@strawberry.input
class KpiInput:
    metric: KpiMetric
    comparison: KpiComparison
    target: float


@strawberry.input
class AddCommitmentInput:
    agreement_id: strawberry.ID
    owner_id: strawberry.ID
    title: str
    description: str
    due_on: date | None = None
    kpi: KpiInput | None = None
    idempotency_key: str | None = None


@strawberry.input
class UpdateCommitmentInput:
    commitment_id: strawberry.ID
    status: CommitmentStatus
    progress: int
    note: str | None = None
    expected_version: int | None = None


@strawberry.input
class SetAgreementStatusInput:
    agreement_id: strawberry.ID
    status: AgreementStatus
    expected_version: int | None = None


# ------------------------------------------------------------ node, queries


async def resolve_conference(info: Info, key: UUID) -> ConferenceType | None:
    found = await _visible_conference(info, key)
    return ConferenceType.of(found) if found else None


async def resolve_agreement(info: Info, key: UUID) -> AgreementType | None:
    found = await info.context.loaders.keyed("agreement", store.agreements_by_ids).load(key)
    if found is None or await _visible_conference(info, found.conference_id) is None:
        return None
    return AgreementType.of(found)


async def resolve_commitment(info: Info, key: UUID) -> CommitmentType | None:
    found = await info.context.loaders.keyed("commitment", store.commitments_by_ids).load(key)
    if found is None or await _visible_conference(info, found.conference_id) is None:
        return None
    return CommitmentType.of(found)


@strawberry.type
class ConferenceQuery:
    @strawberry.field
    async def conferences(self, info: Info) -> list[ConferenceType]:
        return [ConferenceType.of(c) for c in await service.conferences(info.context.pool, info.context.require_viewer())]

    @strawberry.field
    async def commitments(
        self,
        info: Info,
        owner_id: strawberry.ID | None = None,
        statuses: list[CommitmentStatus] | None = None,
        overdue: bool | None = None,
    ) -> list[CommitmentType]:
        found = await service.commitments(
            info.context.pool,
            info.context.require_viewer(),
            owner_id=expect_global_id(owner_id, "Organization") if owner_id is not None else None,
            statuses=list(statuses or ()),
            overdue=overdue,
            now=info.context.now,
        )
        return [CommitmentType.of(c) for c in found]


def _ids(values: list[strawberry.ID], field: str) -> list[UUID]:
    ids = []
    for index, value in enumerate(values):
        try:
            ids.append(expect_global_id(value, "Organization"))
        except NotFound:
            raise NotFound(f"{field}[{index}]: no organization with that id") from None
    return ids


@strawberry.type
class ConferenceMutation:
    @strawberry.mutation
    async def create_conference(self, info: Info, input: CreateConferenceInput) -> ConferenceType:
        conference = await service.create_conference(
            info.context.pool,
            info.context.require_viewer(),
            title=input.title,
            held_on=input.held_on,
            participant_ids=_ids(input.participant_ids, "participantIds"),
            idempotency_key=input.idempotency_key,
            now=info.context.now,
        )
        return ConferenceType.of(conference)

    @strawberry.mutation
    async def create_agreement(self, info: Info, input: CreateAgreementInput) -> AgreementType:
        agreement = await service.create_agreement(
            info.context.pool,
            info.context.require_viewer(),
            conference_id=expect_global_id(input.conference_id, "Conference"),
            title=input.title,
            description=input.description,
            party_ids=_ids(input.party_ids, "partyIds"),
            idempotency_key=input.idempotency_key,
            now=info.context.now,
        )
        return AgreementType.of(agreement)

    @strawberry.mutation
    async def set_agreement_status(self, info: Info, input: SetAgreementStatusInput) -> AgreementType:
        agreement = await service.set_status(
            info.context.pool,
            info.context.require_viewer(),
            expect_global_id(input.agreement_id, "Agreement"),
            input.status,
            expected_version=input.expected_version,
            now=info.context.now,
        )
        return AgreementType.of(agreement)

    @strawberry.mutation
    async def add_commitment(self, info: Info, input: AddCommitmentInput) -> CommitmentType:
        kpi = clean_kpi(input.kpi.metric, input.kpi.comparison, input.kpi.target) if input.kpi else None
        commitment = await service.add_commitment(
            info.context.pool,
            info.context.require_viewer(),
            agreement_id=expect_global_id(input.agreement_id, "Agreement"),
            owner_id=expect_global_id(input.owner_id, "Organization"),
            title=input.title,
            description=input.description,
            due_on=input.due_on,
            kpi=kpi,
            idempotency_key=input.idempotency_key,
            now=info.context.now,
        )
        return CommitmentType.of(commitment)

    @strawberry.mutation
    async def update_commitment(self, info: Info, input: UpdateCommitmentInput) -> CommitmentType:
        commitment = await service.change_commitment(
            info.context.pool,
            info.context.require_viewer(),
            expect_global_id(input.commitment_id, "Commitment"),
            status=input.status,
            progress=input.progress,
            note=input.note,
            expected_version=input.expected_version,
            now=info.context.now,
        )
        return CommitmentType.of(commitment)
