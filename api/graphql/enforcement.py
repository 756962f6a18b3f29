"""Administrative enforcement over GraphQL: cases redacted by the enforcement tier, list, and the lifecycle mutations."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from ..domain.access import Tier, shows
from ..domain.enforcement import EnforcementCase, EnforcementStatus, EnforcementStep, Step
from ..domain.ids import expect_global_id, to_global_id
from ..domain.organizations import OrganizationKind
from ..services import enforcement as service
from ..services.enforcement import VisibleCase, visible
from ..services.notice_reads import visible as visible_notice
from ..store import enforcement as store
from . import cursors
from .context import Info
from .notices import NoticeType
from .types import Node, OrganizationType, PageInfo, load_organization

EnforcementStatusEnum = strawberry.enum(EnforcementStatus)


@strawberry.type(name="EnforcementStep")
class EnforcementStepType:
    at: datetime
    status: EnforcementStatus
    actor_kind: OrganizationKind
    note: str | None


@strawberry.type(name="EnforcementCase")
class EnforcementCaseType(Node):
    seen: strawberry.Private[VisibleCase]
    reference: str
    status: EnforcementStatus
    visibility: Tier
    opened_at: datetime
    order_due_at: datetime | None = strawberry.field(description="Deadline of the removal order, when one is issued.")
    version: int

    @classmethod
    def of(cls, seen: VisibleCase) -> EnforcementCaseType:
        c = seen.case
        return cls(
            id=strawberry.ID(to_global_id("EnforcementCase", c.id)),
            seen=seen,
            reference=c.reference,
            status=c.status,
            visibility=seen.tier,
            opened_at=c.opened_at,
            order_due_at=c.order_due_at,
            version=c.version,
        )

    @strawberry.field
    async def provider(self, info: Info) -> OrganizationType:
        return await load_organization(info, self.seen.case.provider_id)

    @strawberry.field(description="Penalty in whole euros; null below the CASE tier.")
    def penalty_euros(self) -> int | None:
        return self.seen.case.penalty_euros if shows(self.seen.tier, "penaltyEuros") else None

    @strawberry.field(description="Each notice with its own tier; notices the viewer may not see are left out.")
    async def notices(self, info: Info) -> list[NoticeType]:
        viewer = info.context.require_viewer()
        ids = await info.context.loaders.keyed("enforcement.notice_ids", store.notice_ids).load(self.seen.case.id)
        loaded = await info.context.loaders.notice.load_many(ids)
        return [NoticeType.of(v) for n in loaded if (v := visible_notice(viewer, n)) is not None]

    @strawberry.field
    async def history(self, info: Info) -> list[EnforcementStepType]:
        steps: list[EnforcementStep] = await info.context.loaders.keyed("enforcement.history", store.history).load(
            self.seen.case.id
        )
        notes = shows(self.seen.tier, "note")
        return [EnforcementStepType(at=s.at, status=s.status, actor_kind=s.actor_kind, note=s.note if notes else None) for s in steps]


@strawberry.type
class EnforcementCaseEdge:
    cursor: str
    node: EnforcementCaseType


@strawberry.type
class EnforcementCaseConnection:
    edges: list[EnforcementCaseEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class OpenEnforcementCaseInput:
    provider_id: strawberry.ID
    notice_ids: list[strawberry.ID]
    note: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class EnforcementActionInput:
    case_id: strawberry.ID
    note: str | None = None
    expected_version: int | None = None


@strawberry.input
class IssueOrderInput:
    case_id: strawberry.ID
    due_at: datetime
    penalty_euros: int
    note: str | None = None
    expected_version: int | None = None


def _cursor(case_id: UUID) -> str:
    return cursors.encode("enforcement", case_id)


def _after(cursor: str | None) -> UUID | None:
    return cursors.decode(cursor, "enforcement", cursors.uuid, "enforcement cases")


async def resolve_node(info: Info, key: UUID) -> EnforcementCaseType | None:
    loaded = await info.context.loaders.keyed("enforcement.case", store.by_ids).load(key)
    seen = visible(info.context.require_viewer(), loaded)
    return EnforcementCaseType.of(seen) if seen else None


def _seen(info: Info, case: EnforcementCase) -> EnforcementCaseType:
    seen = visible(info.context.require_viewer(), case)
    assert seen is not None, "who may act on a case also sees it"
    return EnforcementCaseType.of(seen)


@strawberry.type
class EnforcementQuery:
    @strawberry.field
    async def enforcement_cases(
        self,
        info: Info,
        provider_id: strawberry.ID | None = None,
        statuses: list[EnforcementStatus] | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> EnforcementCaseConnection:
        page = await service.list_cases(
            info.context.pool,
            info.context.require_viewer(),
            provider_id=expect_global_id(provider_id, "Organization") if provider_id is not None else None,
            statuses=list(statuses or ()),
            first=50 if first is None else first,
            after=_after(after),
        )
        edges = [EnforcementCaseEdge(cursor=_cursor(v.case.id), node=EnforcementCaseType.of(v)) for v in page.items]
        return EnforcementCaseConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None),
            total_count=page.total,
        )


async def _act(info: Info, input: EnforcementActionInput, step: Step) -> EnforcementCaseType:
    case = await service.act(
        info.context.pool,
        info.context.require_viewer(),
        expect_global_id(input.case_id, "EnforcementCase"),
        step,
        now=info.context.now,
        note=input.note,
        expected_version=input.expected_version,
    )
    return _seen(info, case)


@strawberry.type
class EnforcementMutation:
    @strawberry.mutation
    async def open_enforcement_case(self, info: Info, input: OpenEnforcementCaseInput) -> EnforcementCaseType:
        case = await service.open_case(
            info.context.pool,
            info.context.require_viewer(),
            provider_id=expect_global_id(input.provider_id, "Organization"),
            notice_ids=[expect_global_id(n, "Notice") for n in input.notice_ids],
            note=input.note,
            idempotency_key=input.idempotency_key,
            now=info.context.now,
        )
        return _seen(info, case)

    @strawberry.mutation
    async def send_warning(self, info: Info, input: EnforcementActionInput) -> EnforcementCaseType:
        return await _act(info, input, Step.WARN)

    @strawberry.mutation
    async def issue_order(self, info: Info, input: IssueOrderInput) -> EnforcementCaseType:
        case = await service.act(
            info.context.pool,
            info.context.require_viewer(),
            expect_global_id(input.case_id, "EnforcementCase"),
            Step.ORDER,
            now=info.context.now,
            note=input.note,
            expected_version=input.expected_version,
            order_due_at=input.due_at,
            penalty_euros=input.penalty_euros,
        )
        return _seen(info, case)

    @strawberry.mutation
    async def file_objection(self, info: Info, input: EnforcementActionInput) -> EnforcementCaseType:
        return await _act(info, input, Step.OBJECT)

    @strawberry.mutation
    async def record_compliance(self, info: Info, input: EnforcementActionInput) -> EnforcementCaseType:
        return await _act(info, input, Step.COMPLY)

    @strawberry.mutation
    async def impose_penalty(self, info: Info, input: EnforcementActionInput) -> EnforcementCaseType:
        return await _act(info, input, Step.PENALIZE)

    @strawberry.mutation
    async def close_enforcement_case(self, info: Info, input: EnforcementActionInput) -> EnforcementCaseType:
        return await _act(info, input, Step.CLOSE)
