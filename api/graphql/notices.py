"""Notices over GraphQL: types redacted by tier, queries, and the lifecycle mutations.

A field the viewer's tier hides resolves to null without an error (ACCESS.md);
the tier is computed once per notice by the access policy and carried with it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from ..domain.access import Tier, shows
from ..domain.errors import BadUserInput, NotFound
from ..domain.ids import expect_global_id, from_global_id, to_global_id
from ..domain.notices import (
    ContentCategory,
    ContentHash,
    HashAlgorithm,
    HistoryEntry,
    Notice,
    NoticeStatus,
    RefusalReason,
    Transition,
    VerificationOutcome,
    clean_hashes,
)
from ..domain.organizations import OrganizationKind, Viewer
from ..services.notice_reads import Visible, list_notices, url_filter, visible
from ..services.notices import Reported, ReportInput
from ..store.notices import NoticeFilter as StoreFilter
from . import cursors
from .context import Info
from .identity import WhileAlive
from .inputs import fast_input
from .types import Node, OrganizationType, PageInfo, load_organization

NoticeStatusEnum = strawberry.enum(NoticeStatus)
ContentCategoryEnum = strawberry.enum(ContentCategory)
HashAlgorithmEnum = strawberry.enum(HashAlgorithm)
RefusalReasonEnum = strawberry.enum(RefusalReason)
VerificationOutcomeEnum = strawberry.enum(VerificationOutcome)
VisibilityEnum = strawberry.enum(Tier, name="Visibility", description="How much of an object the viewer may see (ACCESS.md).")


@strawberry.type(name="ContentHash")
class ContentHashType:
    algorithm: HashAlgorithm
    value: str


@strawberry.type(name="NoticeTransition")
class NoticeTransitionType:
    at: datetime
    from_status: NoticeStatus | None
    to_status: NoticeStatus
    actor_kind: OrganizationKind
    note: str | None


# The objects a page builds by the hundred (a notice, its edge, its history entries) are made
# with their finished __dict__ instead of through the __init__ strawberry generates, which takes
# each field as a keyword and sets it as an attribute: 8.47 -> 8.11 million instructions a
# 50-notice page (`python -m bench.inprocess_read --instructions`; a helper function doing the
# same cost half of that back in calls). The classes made so have no __post_init__, __slots__ or
# field defaults that matter; tests/test_records.py checks that each builder names every field
# once and builds what the class's own __init__ would.
_new = object.__new__


@strawberry.type(name="Notice")
class NoticeType(Node):
    seen: strawberry.Private[Visible]
    # Read with a page (list_notices), so these fields resolve without an await per
    # notice (graphql-core's per-awaitable cost dominated a 50-notice page).
    prefetched_orgs: strawberry.Private[dict[UUID, OrganizationType] | None] = None
    prefetched_history: strawberry.Private[list[HistoryEntry] | None] = None
    reference: str
    status: NoticeStatus
    category: ContentCategory
    visibility: Tier
    reported_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    removed_at: datetime | None
    seconds_to_removal: int | None
    refusal_reason: RefusalReason | None
    version: int

    @classmethod
    def of(
        cls, seen: Visible, orgs: dict[UUID, OrganizationType] | None = None, history: list[HistoryEntry] | None = None
    ) -> NoticeType:
        n = seen.notice
        built = _new(cls)
        built.__dict__ = {
            "id": to_global_id("Notice", n.id),
            "seen": seen,
            "prefetched_orgs": orgs,
            "prefetched_history": history,
            "reference": n.reference,
            "status": n.status,
            "category": n.category,
            "visibility": seen.tier,
            "reported_at": n.reported_at,
            "due_at": n.due_at,
            "acknowledged_at": n.acknowledged_at,
            "removed_at": n.removed_at,
            "seconds_to_removal": n.seconds_to_removal,
            "refusal_reason": n.refusal_reason,
            "version": n.version,
        }
        return built

    @strawberry.field(description="The company asked to remove the content.")
    def provider(self, info: Info) -> OrganizationType:
        return self._organization(info, self.seen.notice.provider_id)  # type: ignore[return-value]

    @strawberry.field(description="Null below the CASE tier.")
    def reporter(self, info: Info) -> OrganizationType | None:
        if not shows(self.seen.tier, "reporter"):
            return None
        return self._organization(info, self.seen.notice.reporter_id)  # type: ignore[return-value]

    def _organization(self, info: Info, organization_id: UUID) -> OrganizationType | Awaitable[OrganizationType]:
        """A plain value when prefetched; otherwise an awaitable, which graphql-core awaits."""
        found = self.prefetched_orgs.get(organization_id) if self.prefetched_orgs is not None else None
        return found if found is not None else load_organization(info, organization_id)

    @strawberry.field(description="Null below the FULL tier. Every read is written to the audit log.")
    async def url(self, info: Info) -> str | None:
        if not shows(self.seen.tier, "url"):
            return None
        return await info.context.loaders.url(info.context.require_viewer()).load(self.seen.notice)

    @strawberry.field(description="Null below the FULL tier.")
    async def content_hashes(self, info: Info) -> list[ContentHashType] | None:
        if not shows(self.seen.tier, "contentHashes"):
            return None
        hashes = await info.context.loaders.hashes.load(self.seen.notice.id)
        return [ContentHashType(algorithm=h.algorithm, value=h.value) for h in hashes]

    @strawberry.field
    def overdue(self, info: Info) -> bool:
        return self.seen.notice.overdue(info.context.now)

    @strawberry.field(description="Police or prosecution asked the company to preserve evidence. Null below the CASE tier.")
    def preservation_requested(self) -> bool | None:
        return self.seen.notice.preservation_requested if shows(self.seen.tier, "preservationRequested") else None

    @strawberry.field(description="Earlier notices with the same URL or matching content hashes; FULL tier only.")
    async def related_notices(self, info: Info) -> list[NoticeType] | None:
        if not shows(self.seen.tier, "relatedNotices"):
            return None
        viewer = info.context.require_viewer()
        related = await info.context.loaders.related.load(self.seen.notice.id)
        return [NoticeType.of(v) for n in related if (v := visible(viewer, n)) is not None]

    @strawberry.field
    def history(self, info: Info) -> list[NoticeTransitionType]:
        if self.prefetched_history is not None:
            return self._transitions(self.prefetched_history)
        return self._load_history(info)  # type: ignore[return-value]

    async def _load_history(self, info: Info) -> list[NoticeTransitionType]:
        return self._transitions(await info.context.loaders.history.load(self.seen.notice.id))

    def _transitions(self, entries: list[HistoryEntry]) -> list[NoticeTransitionType]:
        show_notes = shows(self.seen.tier, "note")
        transitions = []
        for e in entries:
            transition = _new(NoticeTransitionType)  # see _new
            transition.__dict__ = {
                "at": e.at,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "actor_kind": e.actor_kind,
                "note": e.note if show_notes else None,
            }
            transitions.append(transition)
        return transitions


# Per query (its field nodes), while the parser cache keeps it: strawberry converts the AST
# into selections on every access of info.selected_fields, the same each time.
_WANTED: WhileAlive[tuple[tuple[int, ...], frozenset[str], frozenset[str]]] = WhileAlive()


def _wanted(info: Info) -> tuple[frozenset[str], frozenset[str]]:
    """The field names selected below this field, at any depth and two deep. Directives are not
    evaluated (a field under @skip counts as selected), so neither depends on the request."""
    nodes = info._raw_info.field_nodes
    ids = tuple(map(id, nodes))
    found = _WANTED.get(nodes[0])
    if found is not None and found[0] == ids:
        return found[1], found[2]
    selected = info.selected_fields
    return _WANTED.put(nodes[0], (ids, frozenset(_selected_names(selected)), frozenset(_selected_names(selected, depth=2))))[1:]


def _selected_names(selections: list[Selection], depth: int | None = None) -> set[str]:
    """Field names selected below these selections (fragments included), `depth` fields deep at most."""
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            if depth == 0:
                continue
            names.add(selection.name)
            names |= _selected_names(selection.selections, None if depth is None else depth - 1)
        else:
            names |= _selected_names(selection.selections, depth)
    return names


@strawberry.type
class NoticeEdge:
    cursor: str
    node: NoticeType


@strawberry.type
class NoticeConnection:
    edges: list[NoticeEdge]
    page_info: PageInfo
    total_count: int


@fast_input
@strawberry.input
class ContentHashInput:
    algorithm: HashAlgorithm
    value: str


@fast_input
@strawberry.input
class NoticeFilter:
    statuses: list[NoticeStatus] | None = None
    provider_ids: list[strawberry.ID] | None = None
    categories: list[ContentCategory] | None = None
    overdue: bool | None = None
    reported_after: datetime | None = None
    reported_before: datetime | None = None
    url: str | None = strawberry.field(
        default=None, description="Exact URL; matched through its keyed hash, never stored in the clear for search."
    )
    content_hash: ContentHashInput | None = None


@fast_input
@strawberry.input
class ReportNoticeInput:
    provider_id: strawberry.ID
    url: str
    category: ContentCategory
    content_hashes: list[ContentHashInput] | None = strawberry.field(default_factory=list)
    note: str | None = strawberry.field(default=None, description="At most 2000 characters.")
    idempotency_key: str | None = None


@strawberry.input
class NoticeActionInput:
    notice_id: strawberry.ID
    note: str | None = None
    expected_version: int | None = strawberry.field(
        default=None, description="If given and not the notice's current version, the call fails with CONFLICT."
    )


@strawberry.type
class ReportNoticePayload:
    notice: NoticeType
    deduplicated: bool = strawberry.field(
        description="True when an open notice for the same provider and URL already existed and is returned instead."
    )


@strawberry.type
class ReportNoticesPayload:
    results: list[ReportNoticePayload]


def _cursor(notice_id: UUID) -> str:
    return cursors.encode("notice", notice_id)


def _after(cursor: str | None) -> UUID | None:
    return cursors.decode(cursor, "notice", cursors.uuid, "notices")


def _store_filter(info: Info, given: NoticeFilter | None) -> StoreFilter:
    if given is None:
        return StoreFilter()
    content_hash: ContentHash | None = None
    if given.content_hash is not None:
        content_hash = clean_hashes([(given.content_hash.algorithm.value, given.content_hash.value)], field="filter.contentHash")[0]
    if given.reported_after and given.reported_before and given.reported_after >= given.reported_before:
        raise BadUserInput("filter.reportedAfter must be before filter.reportedBefore")
    return StoreFilter(
        statuses=tuple(given.statuses or ()),
        provider_ids=tuple(expect_global_id(p, "Organization") for p in given.provider_ids or ()),
        categories=tuple(given.categories or ()),
        overdue=given.overdue,
        reported_after=given.reported_after,
        reported_before=given.reported_before,
        url_hmac=url_filter(info.context.resources.protector, given.url) if given.url is not None else None,
        content_hash=content_hash,
    )


def _report_input(given: ReportNoticeInput) -> ReportInput:
    return ReportInput(
        provider_id=expect_global_id(given.provider_id, "Organization"),
        url=given.url,
        category=given.category,
        content_hashes=[(h.algorithm.value, h.value) for h in given.content_hashes or ()],
        note=given.note,
        idempotency_key=given.idempotency_key,
    )


def _payload(info: Info, reported: Reported) -> ReportNoticePayload:
    seen = visible(info.context.require_viewer(), reported.notice)
    assert seen is not None, "a reporter always sees what it reported"
    return ReportNoticePayload(notice=NoticeType.of(seen), deduplicated=reported.deduplicated)


async def resolve_node(info: Info, key: UUID) -> NoticeType | None:
    seen = visible(info.context.require_viewer(), await info.context.loaders.notice.load(key))
    return NoticeType.of(seen) if seen else None


@strawberry.type
class NoticeQuery:
    @strawberry.field
    async def notice(self, info: Info, id: strawberry.ID) -> NoticeType | None:
        type_name, key = from_global_id(id)
        return await resolve_node(info, key) if type_name == "Notice" else None

    @strawberry.field
    async def notices(
        self, info: Info, filter: NoticeFilter | None = None, first: int | None = 50, after: str | None = None
    ) -> NoticeConnection:
        wanted, near = _wanted(info)
        page = await list_notices(
            info.context.pool,
            info.context.require_viewer(),
            _store_filter(info, filter),
            now=info.context.now,
            first=50 if first is None else first,
            after=_after(after),
            count_total="totalCount" in near,
            with_organizations=bool(wanted & {"provider", "reporter"}),
            with_history="history" in wanted,
            known=info.context.resources.organizations,
        )
        orgs = {i: OrganizationType.from_record(o) for i, o in page.organizations.items()} if page.organizations else None
        history = page.history
        nodes = [NoticeType.of(v, orgs, history[i] if history is not None else None) for i, v in enumerate(page.items)]
        # An edge's cursor is encoded only when some selection (fragments included) names one: it
        # is a fiftieth of a page's work, and most clients page by pageInfo.endCursor alone.
        with_cursors = "cursor" in wanted
        return NoticeConnection(
            edges=_edges(nodes, with_cursors),
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=_cursor(nodes[-1].seen.notice.id) if nodes else None),
            total_count=page.total,
        )


def _edges(nodes: list[NoticeType], with_cursors: bool) -> list[NoticeEdge]:
    edges = []
    for node in nodes:
        edge = _new(NoticeEdge)  # see _new
        edge.__dict__ = {"cursor": _cursor(node.seen.notice.id) if with_cursors else "", "node": node}
        edges.append(edge)
    return edges


async def _act(info: Info, input: NoticeActionInput, transition: Transition, **extra: object) -> NoticeType:
    viewer = info.context.require_viewer()
    notice = await info.context.resources.notices.act(
        viewer,
        expect_global_id(input.notice_id, "Notice"),
        transition,
        note=input.note,
        expected_version=input.expected_version,
        **extra,  # type: ignore[arg-type]
    )
    return _seen(viewer, notice)


def _seen(viewer: Viewer, notice: Notice) -> NoticeType:
    seen = visible(viewer, notice)
    assert seen is not None, "an actor that may act on a notice also sees it"
    return NoticeType.of(seen)


@strawberry.type
class NoticeMutation:
    @strawberry.mutation
    async def report_notice(self, info: Info, input: ReportNoticeInput) -> ReportNoticePayload:
        reported = await info.context.resources.notices.report(info.context.require_viewer(), [_report_input(input)])
        return _payload(info, reported[0])

    @strawberry.mutation(description="At most 1000 inputs; each result in input order. All or nothing.")
    async def report_notices(self, info: Info, inputs: list[ReportNoticeInput]) -> ReportNoticesPayload:
        viewer = info.context.require_viewer()
        converted = []
        for index, given in enumerate(inputs):
            try:
                converted.append(_report_input(given))
            except (BadUserInput, NotFound) as error:
                raise type(error)(f"inputs[{index}].providerId: {error.message}") from None
        reported = await info.context.resources.notices.report(viewer, converted)
        return ReportNoticesPayload(results=[_payload(info, r) for r in reported])

    @strawberry.mutation
    async def acknowledge_notice(self, info: Info, input: NoticeActionInput) -> NoticeType:
        return await _act(info, input, Transition.ACKNOWLEDGE)

    @strawberry.mutation
    async def mark_notice_removed(self, info: Info, input: NoticeActionInput) -> NoticeType:
        return await _act(info, input, Transition.REMOVE)

    @strawberry.mutation
    async def refuse_notice(self, info: Info, input: NoticeActionInput, reason: RefusalReason) -> NoticeType:
        return await _act(info, input, Transition.REFUSE, refusal_reason=reason)

    @strawberry.mutation
    async def verify_notice(self, info: Info, input: NoticeActionInput, outcome: VerificationOutcome) -> NoticeType:
        viewer = info.context.require_viewer()
        notice = await info.context.resources.notices.verify(
            viewer, expect_global_id(input.notice_id, "Notice"), outcome, note=input.note, expected_version=input.expected_version
        )
        return _seen(viewer, notice)

    @strawberry.mutation
    async def escalate_notice(self, info: Info, input: NoticeActionInput) -> NoticeType:
        return await _act(info, input, Transition.ESCALATE)

    @strawberry.mutation
    async def withdraw_notice(self, info: Info, input: NoticeActionInput) -> NoticeType:
        return await _act(info, input, Transition.WITHDRAW)

    @strawberry.mutation
    async def request_preservation(self, info: Info, input: NoticeActionInput) -> NoticeType:
        viewer = info.context.require_viewer()
        notice = await info.context.resources.notices.request_preservation(
            viewer, expect_global_id(input.notice_id, "Notice"), note=input.note, expected_version=input.expected_version
        )
        return _seen(viewer, notice)
