"""The access policy as a matrix: every row of ACCESS.md implemented in api/domain/access.py."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from api.domain import access
from api.domain.access import Action, Relation, Tier
from api.domain.errors import Forbidden
from api.domain.notices import ContentCategory, Notice, NoticeStatus
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role, Viewer
from api.services.notice_reads import Visible, visible_all

REPORTER, PROVIDER, OTHER = uuid4(), uuid4(), uuid4()


def viewer(kind: K, *roles: Role, org=None) -> Viewer:  # type: ignore[no-untyped-def]
    return Viewer(subject="s", organization_id=org or uuid4(), organization_kind=kind, roles=frozenset(roles))


@pytest.mark.parametrize(
    ("kind", "org", "tier"),
    [
        (K.HOTLINE, REPORTER, Tier.FULL),
        (K.POLICE, REPORTER, Tier.FULL),
        (K.COMPANY, PROVIDER, Tier.FULL),
        (K.POLICE, OTHER, Tier.FULL),
        (K.PROSECUTOR, OTHER, Tier.FULL),
        (K.REGULATOR, OTHER, Tier.CASE),
        (K.GOVERNMENT, OTHER, Tier.STATUS),
        (K.HOTLINE, OTHER, Tier.STATUS),
        (K.COMPANY, OTHER, None),
    ],
)
def test_notice_tier_follows_kind_and_relation(kind: K, org, tier) -> None:  # type: ignore[no-untyped-def]
    assert access.notice_tier(viewer(kind, org=org), reporter_id=REPORTER, provider_id=PROVIDER) == tier


@pytest.mark.parametrize(
    ("kind", "org", "tier"),
    [
        (K.REGULATOR, OTHER, Tier.FULL),
        (K.COMPANY, PROVIDER, Tier.FULL),
        (K.POLICE, OTHER, Tier.CASE),
        (K.PROSECUTOR, OTHER, Tier.CASE),
        (K.GOVERNMENT, OTHER, Tier.STATUS),
        (K.HOTLINE, OTHER, Tier.STATUS),
        (K.COMPANY, OTHER, None),
    ],
)
def test_enforcement_tier(kind: K, org, tier) -> None:  # type: ignore[no-untyped-def]
    assert access.enforcement_tier(viewer(kind, org=org), provider_id=PROVIDER) == tier


@pytest.mark.parametrize("kind", list(K))
def test_conferences_are_seen_by_organizer_participants_government_and_regulator(kind: K) -> None:
    organizer, participant = uuid4(), uuid4()
    outsider = viewer(kind)
    assert access.sees_conference(viewer(kind, org=organizer), organizer_id=organizer, participant_ids=frozenset())
    assert access.sees_conference(viewer(kind, org=participant), organizer_id=organizer, participant_ids=frozenset({participant}))
    expected = kind in (K.GOVERNMENT, K.REGULATOR)
    assert access.sees_conference(outsider, organizer_id=organizer, participant_ids=frozenset({participant})) is expected


def test_victim_alerts_are_seen_by_their_holder_only() -> None:
    holder = uuid4()
    assert access.sees_victim_alert(viewer(K.POLICE, org=holder), holder_id=holder)
    for kind in K:
        assert not access.sees_victim_alert(viewer(kind), holder_id=holder)


@pytest.mark.parametrize("kind", list(K))
def test_statistics_name_providers_except_for_companies(kind: K) -> None:
    view = access.statistics_view(viewer(kind))
    assert view.names_providers is (kind != K.COMPANY)
    assert view.suppression_threshold == (5 if kind == K.COMPANY else 0)


# (action, relation to the viewer's own org, kinds allowed with ANALYST); "all" means any kind.
NOTICE_ACTIONS = [
    (Action.REPORT_NOTICE, None, {K.HOTLINE, K.POLICE}),
    (Action.ACKNOWLEDGE_NOTICE, "provider", set()),
    (Action.MARK_NOTICE_REMOVED, "provider", set()),
    (Action.REFUSE_NOTICE, "provider", set()),
    (Action.VERIFY_NOTICE, "reporter", {K.POLICE}),
    (Action.ESCALATE_NOTICE, "reporter", {K.POLICE, K.PROSECUTOR, K.REGULATOR}),
    (Action.WITHDRAW_NOTICE, "reporter", set()),
    (Action.REQUEST_PRESERVATION, None, {K.POLICE, K.PROSECUTOR}),
    (Action.OPEN_ENFORCEMENT_CASE, None, {K.REGULATOR}),
    (Action.SEND_WARNING, None, {K.REGULATOR}),
    (Action.ISSUE_ORDER, None, {K.REGULATOR}),
    (Action.RECORD_COMPLIANCE, None, {K.REGULATOR}),
    (Action.IMPOSE_PENALTY, None, {K.REGULATOR}),
    (Action.CLOSE_ENFORCEMENT_CASE, None, {K.REGULATOR}),
    (Action.FILE_OBJECTION, "provider", set()),
    (Action.REGISTER_VICTIM_ALERT, None, {K.POLICE, K.HOTLINE}),
    (Action.CANCEL_VICTIM_ALERT, "holder", set()),
]


@pytest.mark.parametrize(("action", "related", "kinds"), NOTICE_ACTIONS, ids=[a.value for a, _, _ in NOTICE_ACTIONS])
@pytest.mark.parametrize("kind", list(K))
def test_acting_needs_analyst_in_the_named_organization(action: Action, related, kinds, kind: K) -> None:  # type: ignore[no-untyped-def]
    me = uuid4()
    unrelated = Relation(reporter_id=OTHER, provider_id=PROVIDER, holder_id=OTHER)
    assert access.may(viewer(kind, Role.ANALYST, org=me), action, unrelated) is (kind in kinds)
    if related is not None:
        relation = Relation(**{f"{related}_id": me})
        assert access.may(viewer(kind, Role.ANALYST, org=me), action, relation)
        # the relation without the role is not enough
        assert not access.may(viewer(kind, Role.MEMBER, Role.ORG_ADMIN, Role.ORGANIZER, org=me), action, relation)
    for role in (Role.MEMBER, Role.ORG_ADMIN, Role.ORGANIZER, Role.PLATFORM_ADMIN):
        assert not access.may(viewer(kind, role, org=me), action, unrelated)


@pytest.mark.parametrize("kind", list(K))
def test_any_kind_with_the_organizer_role_creates_conferences(kind: K) -> None:
    assert access.may(viewer(kind, Role.ORGANIZER), Action.CREATE_CONFERENCE)
    assert not access.may(viewer(kind, Role.ANALYST, Role.ORG_ADMIN, Role.PLATFORM_ADMIN), Action.CREATE_CONFERENCE)


@pytest.mark.parametrize("action", [Action.CREATE_AGREEMENT, Action.SET_AGREEMENT_STATUS, Action.ADD_COMMITMENT])
@pytest.mark.parametrize("kind", list(K))
def test_only_the_conference_organizer_shapes_its_agreements(action: Action, kind: K) -> None:
    organizer, participant = uuid4(), uuid4()
    conference = Relation(organizer_id=organizer, participant_ids=frozenset({participant}))
    assert access.may(viewer(kind, Role.ORGANIZER, org=organizer), action, conference)
    assert not access.may(viewer(kind, Role.ORGANIZER, org=participant), action, conference)
    assert not access.may(viewer(kind, Role.ANALYST, Role.ORG_ADMIN, Role.PLATFORM_ADMIN, org=organizer), action, conference)


@pytest.mark.parametrize("kind", list(K))
def test_who_may_measure_another_organization(kind: K) -> None:
    me, competitor = uuid4(), uuid4()
    assert access.may_measure(viewer(kind, org=me), me)
    assert access.may_measure(viewer(kind, org=me), competitor) is (kind != K.COMPANY)


def test_update_commitment_is_for_the_owner_analyst_or_the_conference_organizer() -> None:
    owner, organizer = uuid4(), uuid4()
    relation = Relation(owner_id=owner, organizer_id=organizer)
    assert access.may(viewer(K.COMPANY, Role.ANALYST, org=owner), Action.UPDATE_COMMITMENT, relation)
    assert not access.may(viewer(K.COMPANY, Role.ORGANIZER, org=owner), Action.UPDATE_COMMITMENT, relation)
    assert access.may(viewer(K.GOVERNMENT, Role.ORGANIZER, org=organizer), Action.UPDATE_COMMITMENT, relation)
    assert not access.may(viewer(K.GOVERNMENT, Role.ANALYST, org=organizer), Action.UPDATE_COMMITMENT, relation)
    assert not access.may(viewer(K.GOVERNMENT, Role.ORGANIZER), Action.UPDATE_COMMITMENT, relation)


ADMINISTRATION = [
    Action.CREATE_WEBHOOK,
    Action.DELETE_WEBHOOK,
    Action.LIST_API_CLIENTS,
    Action.REGISTER_API_CLIENT,
    Action.REVOKE_API_CLIENT,
]


@pytest.mark.parametrize("action", ADMINISTRATION)
def test_integrations_are_for_the_org_admin_of_that_org_or_a_platform_admin(action: Action) -> None:
    mine, theirs = uuid4(), uuid4()
    admin = viewer(K.COMPANY, Role.ORG_ADMIN, org=mine)
    assert access.may(admin, action, Relation(organization_id=mine))
    assert not access.may(admin, action, Relation(organization_id=theirs))
    assert not access.may(viewer(K.COMPANY, Role.ANALYST, Role.MEMBER, org=mine), action, Relation(organization_id=mine))
    assert access.may(viewer(K.GOVERNMENT, Role.PLATFORM_ADMIN), action, Relation(organization_id=theirs))


def test_only_platform_admins_create_organizations() -> None:
    assert access.may(viewer(K.GOVERNMENT, Role.PLATFORM_ADMIN), Action.CREATE_ORGANIZATION)
    for role in (Role.MEMBER, Role.ANALYST, Role.ORG_ADMIN, Role.ORGANIZER):
        assert not access.may(viewer(K.GOVERNMENT, role), Action.CREATE_ORGANIZATION)
    with pytest.raises(Forbidden):
        access.require(viewer(K.GOVERNMENT, Role.ORG_ADMIN), Action.CREATE_ORGANIZATION)


def test_audit_scope() -> None:
    me = uuid4()
    assert access.audit_scope(viewer(K.POLICE, Role.PLATFORM_ADMIN, Role.ORG_ADMIN)) == access.AuditScope(None)
    assert access.audit_scope(viewer(K.POLICE, Role.ORG_ADMIN, org=me)) == access.AuditScope(me)
    assert access.audit_scope(viewer(K.POLICE, Role.ANALYST, Role.MEMBER, Role.ORGANIZER)) is None


def test_nobody_grants_a_role_it_does_not_hold() -> None:
    admin = viewer(K.COMPANY, Role.ORG_ADMIN, Role.ANALYST)
    assert access.may_grant(admin, {Role.ANALYST})
    assert not access.may_grant(admin, {Role.ANALYST, Role.PLATFORM_ADMIN})
    assert not access.may_grant(admin, {Role.ORGANIZER})
    assert access.may_grant(viewer(K.GOVERNMENT, Role.PLATFORM_ADMIN), {Role.PLATFORM_ADMIN})


def test_every_action_has_a_rule() -> None:
    assert set(access.ACTIONS) == set(Action)


@pytest.mark.parametrize(
    ("tier", "hidden"),
    [
        (Tier.FULL, set()),
        (Tier.CASE, {"url", "contentHashes", "relatedNotices"}),
        (Tier.STATUS, {"url", "contentHashes", "relatedNotices", "reporter", "preservationRequested", "note", "penaltyEuros"}),
    ],
)
def test_what_each_tier_hides(tier: Tier, hidden: set[str]) -> None:
    fields = {"url", "contentHashes", "relatedNotices", "reporter", "preservationRequested", "note", "penaltyEuros",
              "status", "history", "provider", "refusalReason", "secondsToRemoval"}
    assert {f for f in fields if not access.shows(tier, f)} == hidden


@pytest.mark.parametrize("kind", list(K))
def test_enforcement_list_scope_agrees_with_the_tier_table(kind: K) -> None:
    me, other = uuid4(), uuid4()
    scope = access.enforcement_scope(viewer(kind, org=me))
    for provider in (me, other):
        sees = access.enforcement_tier(viewer(kind, org=me), provider_id=provider) is not None
        assert sees is (scope is None or scope == provider)


def _notice(reporter_id, provider_id):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    return Notice(id=uuid4(), reference="TD-1", status=NoticeStatus.NOTIFIED, category=ContentCategory.BASELINE_CSAM,
                  provider_id=provider_id, reporter_id=reporter_id, url_ciphertext=b"", url_key_id="k", reported_at=now,
                  due_at=now, acknowledged_at=None, removed_at=None, refusal_reason=None, preservation_requested=False,
                  version=1)


@pytest.mark.parametrize("kind", list(K))
@pytest.mark.parametrize("org", [REPORTER, PROVIDER, OTHER])
def test_a_page_of_notices_is_seen_notice_by_notice_at_each_ones_own_tier(kind: K, org) -> None:  # type: ignore[no-untyped-def]
    """visible_all works a tier out once per (reporter, provider) pair, and reuses the one before for a
    notice with the same pair: the same answers as asking for each notice."""
    pairs = [(REPORTER, PROVIDER), (REPORTER, PROVIDER), (OTHER, PROVIDER), (REPORTER, PROVIDER), (REPORTER, OTHER),
             (OTHER, REPORTER), (OTHER, PROVIDER), (OTHER, PROVIDER), (PROVIDER, REPORTER)]
    notices = [_notice(reporter, provider) for reporter, provider in pairs]
    who = viewer(kind, org=org)
    expected = [Visible(n, tier) for n in notices
                if (tier := access.notice_tier(who, reporter_id=n.reporter_id, provider_id=n.provider_id)) is not None]
    assert visible_all(who, notices) == expected
    if (kind, org) == (K.HOTLINE, REPORTER):  # a page mixing tiers, with pairs repeated
        assert [v.tier for v in expected] == [Tier.FULL, Tier.FULL, Tier.STATUS, Tier.FULL, Tier.FULL, Tier.FULL,
                                              Tier.STATUS, Tier.STATUS, Tier.FULL]
    if (kind, org) == (K.COMPANY, PROVIDER):  # and one leaving notices out
        assert [v.notice for v in expected] == [notices[i] for i in (0, 1, 2, 3, 6, 7, 8)]
