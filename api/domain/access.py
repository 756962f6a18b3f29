"""The access policy (contract/ACCESS.md), in one place.

Visibility follows the viewer organization's kind and its relation to the
object; roles decide what the viewer may do. Resolvers and commands ask this
module; they never decide themselves. Every table below mirrors a table of
ACCESS.md, in the same order, so the two can be read side by side, and
tests/test_access_policy.py runs the whole matrix.

This module is pure: the relation of the viewer to an object (who reported a
notice, who provides it, who organizes a conference) is handed in by the
caller, which reads it from the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from .errors import Forbidden
from .organizations import OrganizationKind as K
from .organizations import Role, Viewer


class Tier(StrEnum):
    """How much of an object the viewer may see; `None` (no tier) means it does not exist for them."""

    FULL = "FULL"
    CASE = "CASE"
    STATUS = "STATUS"


TIER_RANK = {Tier.STATUS: 0, Tier.CASE: 1, Tier.FULL: 2}

# ## Tiers: the fields a tier hides resolve to null. FULL shows everything; CASE all but
# url, contentHashes, relatedNotices; STATUS also hides reporter, preservationRequested,
# notes and penalties.
SHOWN_FROM: dict[str, Tier] = {
    "url": Tier.FULL,
    "contentHashes": Tier.FULL,
    "relatedNotices": Tier.FULL,
    "reporter": Tier.CASE,
    "preservationRequested": Tier.CASE,
    "note": Tier.CASE,
    "penaltyEuros": Tier.CASE,
}


def shows(tier: Tier, field: str) -> bool:
    """Whether a viewer at `tier` sees `field`; fields not listed are shown at every tier."""
    needed = SHOWN_FROM.get(field)
    return needed is None or TIER_RANK[tier] >= TIER_RANK[needed]


@dataclass(frozen=True)
class Relation:
    """The viewer-independent facts about an object that the rules look at."""

    reporter_id: UUID | None = None
    provider_id: UUID | None = None
    organization_id: UUID | None = None  # the organization an administrative action targets
    owner_id: UUID | None = None  # a commitment's owner
    organizer_id: UUID | None = None  # a conference's organizer
    participant_ids: frozenset[UUID] = frozenset()
    holder_id: UUID | None = None  # the organization that registered a victim alert


Predicate = Callable[[Viewer, Relation], bool]


def kinds(*allowed: K) -> Predicate:
    return lambda viewer, _: viewer.organization_kind in allowed


def anyone(viewer: Viewer, relation: Relation) -> bool:
    return True


def the_reporter(viewer: Viewer, relation: Relation) -> bool:
    return relation.reporter_id is not None and viewer.organization_id == relation.reporter_id


def the_provider(viewer: Viewer, relation: Relation) -> bool:
    return relation.provider_id is not None and viewer.organization_id == relation.provider_id


def its_own_organization(viewer: Viewer, relation: Relation) -> bool:
    return relation.organization_id is not None and viewer.organization_id == relation.organization_id


def the_owner(viewer: Viewer, relation: Relation) -> bool:
    return relation.owner_id is not None and viewer.organization_id == relation.owner_id


def the_organizer(viewer: Viewer, relation: Relation) -> bool:
    return relation.organizer_id is not None and viewer.organization_id == relation.organizer_id


def the_holder(viewer: Viewer, relation: Relation) -> bool:
    return relation.holder_id is not None and viewer.organization_id == relation.holder_id


def either(*predicates: Predicate) -> Predicate:
    return lambda viewer, relation: any(p(viewer, relation) for p in predicates)


# ------------------------------------------------------------------- tiers

# ## Notices: first matching row wins.
NOTICE_TIERS: tuple[tuple[Predicate, Tier | None], ...] = (
    (the_reporter, Tier.FULL),
    (the_provider, Tier.FULL),
    (kinds(K.POLICE, K.PROSECUTOR), Tier.FULL),
    (kinds(K.REGULATOR), Tier.CASE),
    (kinds(K.GOVERNMENT, K.HOTLINE), Tier.STATUS),
    (kinds(K.COMPANY), None),
)

@dataclass(frozen=True)
class NoticeScope:
    """NOTICE_TIERS as set logic, for the SQL that lists notices (tests check the two agree).

    `related_only`: the viewer sees only notices its organization reported or provides.
    `full_tier_everywhere`: every notice it sees, it sees at the FULL tier.
    """

    organization_id: UUID
    related_only: bool
    full_tier_everywhere: bool


def notice_scope(viewer: Viewer) -> NoticeScope:
    return NoticeScope(
        organization_id=viewer.organization_id,
        related_only=viewer.organization_kind is K.COMPANY,
        full_tier_everywhere=viewer.organization_kind in (K.POLICE, K.PROSECUTOR),
    )


# ## Enforcement cases
ENFORCEMENT_TIERS: tuple[tuple[Predicate, Tier | None], ...] = (
    (kinds(K.REGULATOR), Tier.FULL),
    (the_provider, Tier.FULL),
    (kinds(K.POLICE, K.PROSECUTOR), Tier.CASE),
    (kinds(K.GOVERNMENT, K.HOTLINE), Tier.STATUS),
    (kinds(K.COMPANY), None),
)


def _first_tier(rows: Iterable[tuple[Predicate, Tier | None]], viewer: Viewer, relation: Relation) -> Tier | None:
    for predicate, tier in rows:
        if predicate(viewer, relation):
            return tier
    return None


def notice_tier(viewer: Viewer, *, reporter_id: UUID, provider_id: UUID) -> Tier | None:
    return _first_tier(NOTICE_TIERS, viewer, Relation(reporter_id=reporter_id, provider_id=provider_id))


def enforcement_scope(viewer: Viewer) -> UUID | None:
    """ENFORCEMENT_TIERS as set logic for listing: the one provider whose cases a viewer sees, or None for all."""
    return viewer.organization_id if viewer.organization_kind is K.COMPANY else None


def enforcement_tier(viewer: Viewer, *, provider_id: UUID) -> Tier | None:
    return _first_tier(ENFORCEMENT_TIERS, viewer, Relation(provider_id=provider_id))


# ## Conferences, agreements, commitments
def sees_conference(viewer: Viewer, *, organizer_id: UUID, participant_ids: frozenset[UUID]) -> bool:
    return (
        viewer.organization_id == organizer_id
        or viewer.organization_id in participant_ids
        or viewer.organization_kind in (K.GOVERNMENT, K.REGULATOR)
    )


# ## Victim alerts
def sees_victim_alert(viewer: Viewer, *, holder_id: UUID) -> bool:
    return viewer.organization_id == holder_id


# ## Statistics
PROVIDER_NAMES_SHOWN_TO = frozenset({K.GOVERNMENT, K.REGULATOR, K.POLICE, K.PROSECUTOR, K.HOTLINE})
COMPANY_SUPPRESSION_THRESHOLD = 5


@dataclass(frozen=True)
class StatisticsView:
    names_providers: bool
    suppression_threshold: int


def statistics_view(viewer: Viewer) -> StatisticsView:
    if viewer.organization_kind in PROVIDER_NAMES_SHOWN_TO:
        return StatisticsView(names_providers=True, suppression_threshold=0)
    return StatisticsView(names_providers=False, suppression_threshold=COMPANY_SUPPRESSION_THRESHOLD)


# ----------------------------------------------------------------- actions


class Action(StrEnum):
    REPORT_NOTICE = "reportNotice"
    ACKNOWLEDGE_NOTICE = "acknowledgeNotice"
    MARK_NOTICE_REMOVED = "markNoticeRemoved"
    REFUSE_NOTICE = "refuseNotice"
    VERIFY_NOTICE = "verifyNotice"
    ESCALATE_NOTICE = "escalateNotice"
    WITHDRAW_NOTICE = "withdrawNotice"
    REQUEST_PRESERVATION = "requestPreservation"
    OPEN_ENFORCEMENT_CASE = "openEnforcementCase"
    SEND_WARNING = "sendWarning"
    ISSUE_ORDER = "issueOrder"
    RECORD_COMPLIANCE = "recordCompliance"
    IMPOSE_PENALTY = "imposePenalty"
    CLOSE_ENFORCEMENT_CASE = "closeEnforcementCase"
    FILE_OBJECTION = "fileObjection"
    CREATE_CONFERENCE = "createConference"
    CREATE_AGREEMENT = "createAgreement"
    SET_AGREEMENT_STATUS = "setAgreementStatus"
    ADD_COMMITMENT = "addCommitment"
    UPDATE_COMMITMENT = "updateCommitment"
    REGISTER_VICTIM_ALERT = "registerVictimAlert"
    CANCEL_VICTIM_ALERT = "cancelVictimAlert"
    CREATE_WEBHOOK = "createWebhook"
    DELETE_WEBHOOK = "deleteWebhook"
    LIST_API_CLIENTS = "apiClients"
    REGISTER_API_CLIENT = "registerApiClient"
    REVOKE_API_CLIENT = "revokeApiClient"
    CREATE_ORGANIZATION = "createOrganization"
    READ_AUDIT_LOG = "auditLog"


@dataclass(frozen=True)
class Grant:
    """One way to be allowed: hold `role` in an organization for which `who` holds."""

    role: Role
    who: Predicate = anyone


ANALYST, ORG_ADMIN, ORGANIZER, PLATFORM_ADMIN = Role.ANALYST, Role.ORG_ADMIN, Role.ORGANIZER, Role.PLATFORM_ADMIN
_ORG_ADMINISTRATION = (Grant(ORG_ADMIN, its_own_organization), Grant(PLATFORM_ADMIN))
_REGULATOR = (Grant(ANALYST, kinds(K.REGULATOR)),)

# ## Actions: "who" for each action; ANALYST unless the row says otherwise.
ACTIONS: dict[Action, tuple[Grant, ...]] = {
    Action.REPORT_NOTICE: (Grant(ANALYST, kinds(K.HOTLINE, K.POLICE)),),
    Action.ACKNOWLEDGE_NOTICE: (Grant(ANALYST, the_provider),),
    Action.MARK_NOTICE_REMOVED: (Grant(ANALYST, the_provider),),
    Action.REFUSE_NOTICE: (Grant(ANALYST, the_provider),),
    Action.VERIFY_NOTICE: (Grant(ANALYST, either(the_reporter, kinds(K.POLICE))),),
    Action.ESCALATE_NOTICE: (Grant(ANALYST, either(the_reporter, kinds(K.POLICE, K.PROSECUTOR, K.REGULATOR))),),
    Action.WITHDRAW_NOTICE: (Grant(ANALYST, the_reporter),),
    Action.REQUEST_PRESERVATION: (Grant(ANALYST, kinds(K.POLICE, K.PROSECUTOR)),),
    Action.OPEN_ENFORCEMENT_CASE: _REGULATOR,
    Action.SEND_WARNING: _REGULATOR,
    Action.ISSUE_ORDER: _REGULATOR,
    Action.RECORD_COMPLIANCE: _REGULATOR,
    Action.IMPOSE_PENALTY: _REGULATOR,
    Action.CLOSE_ENFORCEMENT_CASE: _REGULATOR,
    Action.FILE_OBJECTION: (Grant(ANALYST, the_provider),),
    # ACCESS.md says "ORGANIZER role (any kind)"; we read the last three as the ORGANIZER of the
    # conference's organizing organization, as updateCommitment says outright. Otherwise any
    # participant holding ORGANIZER could withdraw the ministry's agreements or add commitments
    # for other parties.
    Action.CREATE_CONFERENCE: (Grant(ORGANIZER),),
    Action.CREATE_AGREEMENT: (Grant(ORGANIZER, the_organizer),),
    Action.SET_AGREEMENT_STATUS: (Grant(ORGANIZER, the_organizer),),
    Action.ADD_COMMITMENT: (Grant(ORGANIZER, the_organizer),),
    Action.UPDATE_COMMITMENT: (Grant(ANALYST, the_owner), Grant(ORGANIZER, the_organizer)),
    Action.REGISTER_VICTIM_ALERT: (Grant(ANALYST, kinds(K.POLICE, K.HOTLINE)),),
    Action.CANCEL_VICTIM_ALERT: (Grant(ANALYST, the_holder),),
    Action.CREATE_WEBHOOK: _ORG_ADMINISTRATION,
    Action.DELETE_WEBHOOK: _ORG_ADMINISTRATION,
    Action.LIST_API_CLIENTS: _ORG_ADMINISTRATION,
    Action.REGISTER_API_CLIENT: _ORG_ADMINISTRATION,
    Action.REVOKE_API_CLIENT: _ORG_ADMINISTRATION,
    Action.CREATE_ORGANIZATION: (Grant(PLATFORM_ADMIN),),
    Action.READ_AUDIT_LOG: (Grant(PLATFORM_ADMIN), Grant(ORG_ADMIN)),
}


def may(viewer: Viewer, action: Action, relation: Relation = Relation()) -> bool:
    return any(viewer.has(grant.role) and grant.who(viewer, relation) for grant in ACTIONS[action])


def require(viewer: Viewer, action: Action, relation: Relation = Relation()) -> None:
    """Raise FORBIDDEN unless the viewer may act; callers check visibility first (NOT_FOUND)."""
    if not may(viewer, action, relation):
        raise Forbidden(f"{action.value} is not allowed for this organization and role")


@dataclass(frozen=True)
class AuditScope:
    """Which audit entries the viewer may read: all (`organization_id` None) or one organization's."""

    organization_id: UUID | None


def audit_scope(viewer: Viewer) -> AuditScope | None:
    """None: the viewer may not read the audit log at all."""
    if viewer.has(PLATFORM_ADMIN):
        return AuditScope(None)
    if viewer.has(ORG_ADMIN):
        return AuditScope(viewer.organization_id)
    return None


def may_measure(viewer: Viewer, owner_id: UUID) -> bool:
    """Whether the viewer may attach a KPI (a live measurement of the owner's notices) to a commitment.

    A KPI shows its measured value to everyone who sees the commitment, so a company
    organizing a conference could otherwise measure a competitor exactly, where
    statistics give it only a suppressed `others` row. Kinds that may see provider
    figures may measure anyone; others only their own organization.
    """
    return viewer.organization_kind in PROVIDER_NAMES_SHOWN_TO or viewer.organization_id == owner_id


def may_grant(viewer: Viewer, roles: Iterable[Role]) -> bool:
    """No principal can grant roles it does not hold (so only PLATFORM_ADMIN grants PLATFORM_ADMIN)."""
    return set(roles) <= viewer.roles


def sees_api_client(viewer: Viewer, *, organization_id: UUID) -> bool:
    return may(viewer, Action.LIST_API_CLIENTS, Relation(organization_id=organization_id))
