"""The tier matrix: every organization kind against every Notice field, and related notices by URL and hash."""

from __future__ import annotations

from uuid import uuid4

import pytest

from api.domain import access
from api.domain.notices import hamming
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role, Viewer
from tests.conftest import Factory
from tests.notices_helpers import NOTICE, act, report

FULL_ONLY = ("url", "contentHashes", "relatedNotices")
CASE_AND_UP = ("reporter", "preservationRequested")
ALWAYS = ("id", "reference", "status", "category", "provider", "reportedAt", "dueAt", "overdue", "history", "version")

# (who, expected visibility) — who: "reporter", "provider", or a kind for an unrelated organization
MATRIX = [
    ("reporter", "FULL"),
    ("provider", "FULL"),
    (K.POLICE, "FULL"),
    (K.PROSECUTOR, "FULL"),
    (K.REGULATOR, "CASE"),
    (K.GOVERNMENT, "STATUS"),
    (K.HOTLINE, "STATUS"),
    (K.COMPANY, None),
]


@pytest.mark.parametrize(("who", "tier"), MATRIX, ids=[str(w) for w, _ in MATRIX])
async def test_every_field_for_every_kind(make: Factory, who, tier) -> None:  # type: ignore[no-untyped-def]
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    police = await make.member(K.POLICE, Role.ANALYST)
    md5 = {"algorithm": "MD5", "value": uuid4().hex}
    earlier = await report(hotline, company.organization, contentHashes=[md5])
    notice = await report(hotline, company.organization, note="first sighting", contentHashes=[md5])
    await act(police, "preserve", notice["id"])
    await act(company, "refuse", notice["id"], note="we think this is legal")

    viewer = {"reporter": hotline, "provider": company}.get(who) or await make.member(who, Role.MEMBER)
    seen = (await viewer.gql(NOTICE, {"id": notice["id"]}))["data"]["notice"]
    listed = (await viewer.gql("query($id: [ID!]) { notices(filter: {providerIds: $id}) { edges { node { id } } } }",
                               {"id": [company.org_id]}))["data"]["notices"]["edges"]
    if tier is None:
        assert seen is None
        assert listed == []
        return
    assert notice["id"] in {e["node"]["id"] for e in listed}
    assert seen["visibility"] == tier
    for field in ALWAYS:
        assert seen[field] is not None, field
    assert seen["refusalReason"] == "NOT_ILLEGAL"
    for field in FULL_ONLY:
        assert (seen[field] is not None) is (tier == "FULL"), field
    for field in CASE_AND_UP:
        assert (seen[field] is not None) is (tier in ("FULL", "CASE")), field
    notes = [h["note"] for h in seen["history"]]
    assert notes == (["first sighting", "we think this is legal"] if tier in ("FULL", "CASE") else [None, None])
    if tier == "FULL":
        assert seen["url"].startswith("https://")
        assert seen["contentHashes"] == [md5]
        assert seen["relatedNotices"] == [{"id": earlier["id"]}]
        assert seen["preservationRequested"] is True


@pytest.mark.parametrize("kind", list(K))
@pytest.mark.parametrize("relation", ["reporter", "provider", "none"])
def test_list_scope_agrees_with_the_tier_table(kind: K, relation: str) -> None:
    """The SQL scope (notice_scope) and the per-notice tier (notice_tier) are one rule written twice."""
    me, other_a, other_b = uuid4(), uuid4(), uuid4()
    viewer = Viewer("s", me, kind, frozenset())
    reporter = me if relation == "reporter" else other_a
    provider = me if relation == "provider" else other_b
    tier = access.notice_tier(viewer, reporter_id=reporter, provider_id=provider)
    scope = access.notice_scope(viewer)
    related = relation != "none"
    in_scope = related or not scope.related_only
    full_in_scope = related or scope.full_tier_everywhere
    assert (tier is not None) is in_scope
    assert (tier is access.Tier.FULL) is full_in_scope


@pytest.mark.parametrize(("distance", "related"), [(0, True), (31, True), (32, False)])
async def test_pdq_hashes_match_within_hamming_distance_31(make: Factory, distance: int, related: bool) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    base = f"{uuid4().int:064x}"[-64:]
    near = f"{int(base, 16) ^ ((1 << distance) - 1):064x}"
    assert hamming(base, near) == distance
    first = await report(hotline, provider, contentHashes=[{"algorithm": "PDQ", "value": base}])
    second = await report(hotline, provider, contentHashes=[{"algorithm": "PDQ", "value": near}])
    assert (second["relatedNotices"] == [{"id": first["id"]}]) is related
    found = await hotline.gql(
        "query($h: ContentHashInput) { notices(filter: {contentHash: $h}) { edges { node { id } } } }",
        {"h": {"algorithm": "PDQ", "value": base}},
    )
    ids = {e["node"]["id"] for e in found["data"]["notices"]["edges"]}
    assert first["id"] in ids
    assert (second["id"] in ids) is related


async def test_related_notices_leave_out_what_the_viewer_may_not_see(make: Factory) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    elsewhere = await make.organization(K.COMPANY)
    sha = {"algorithm": "SHA256", "value": f"{uuid4().hex}{uuid4().hex}"}
    other = await report(hotline, elsewhere, contentHashes=[sha])
    own_earlier = await report(hotline, company.organization, contentHashes=[sha])
    latest = await report(hotline, company.organization, contentHashes=[sha])
    assert {r["id"] for r in latest["relatedNotices"]} == {other["id"], own_earlier["id"]}
    as_company = (await company.gql(NOTICE, {"id": latest["id"]}))["data"]["notice"]
    assert as_company["relatedNotices"] == [{"id": own_earlier["id"]}], "another company's notice stays invisible"


async def test_url_and_hash_searches_only_match_full_tier_notices(make: Factory) -> None:
    """Searching by URL would otherwise tell a STATUS-tier viewer which URLs were reported."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    notice = await report(hotline, provider)
    url = notice["url"]
    query = "query($u: String) { notices(filter: {url: $u}) { totalCount edges { node { id } } } }"
    assert (await hotline.gql(query, {"u": url}))["data"]["notices"]["totalCount"] == 1
    police = await make.member(K.POLICE)
    shouted_host = url.replace("files.example-host.test", "FILES.Example-Host.test:443")
    assert (await police.gql(query, {"u": shouted_host}))["data"]["notices"]["totalCount"] == 1, "matched on the normalized form"
    assert (await police.gql(query, {"u": url.replace("image.jpg", "IMAGE.jpg")}))["data"]["notices"]["totalCount"] == 0
    for kind in (K.GOVERNMENT, K.REGULATOR, K.HOTLINE):
        outsider = await make.member(kind)
        assert (await outsider.gql(query, {"u": url}))["data"]["notices"]["totalCount"] == 0, kind
