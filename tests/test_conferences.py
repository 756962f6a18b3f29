"""Conferences, agreements and commitments: lifecycles, role rules and visibility (ACCESS.md), live KPIs, events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from api.domain.ids import from_global_id
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from tests.conftest import Factory, Member, error_codes
from tests.notices_helpers import act, report

A, ORG = Role.ANALYST, Role.ORGANIZER
COMMITMENT_FIELDS = """
    id title status progress overdue dueOn version owner { id } agreement { id }
    kpi { metric comparison target current met }
    updates { status progress note }
"""
CONFERENCE_FIELDS = f"""
    id title heldOn organizer {{ id }} participants {{ id }}
    agreements {{ id title status version parties {{ id }} conference {{ id }} commitments {{ {COMMITMENT_FIELDS} }} }}
"""
CREATE_CONFERENCE = f"mutation($i: CreateConferenceInput!) {{ r: createConference(input: $i) {{ {CONFERENCE_FIELDS} }} }}"
CREATE_AGREEMENT = "mutation($i: CreateAgreementInput!) { r: createAgreement(input: $i) { id status version parties { id } } }"
SET_STATUS = "mutation($i: SetAgreementStatusInput!) { r: setAgreementStatus(input: $i) { id status version } }"
ADD = f"mutation($i: AddCommitmentInput!) {{ r: addCommitment(input: $i) {{ {COMMITMENT_FIELDS} }} }}"
UPDATE = f"mutation($i: UpdateCommitmentInput!) {{ r: updateCommitment(input: $i) {{ {COMMITMENT_FIELDS} }} }}"
CONFERENCES = "{ conferences { id } }"
COMMITMENTS = f"""query($o: ID, $s: [CommitmentStatus!], $d: Boolean) {{
  commitments(ownerId: $o, statuses: $s, overdue: $d) {{ {COMMITMENT_FIELDS} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id } }"
COMMITMENT = f"query($id: ID!) {{ node(id: $id) {{ ... on Commitment {{ {COMMITMENT_FIELDS} }} }} }}"


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in result, result
    return result["data"]["r"]  # type: ignore[no-any-return]


class Setup:
    organizer: Member
    police: Member
    hotline: Member
    company: Member
    conference: dict[str, Any]
    agreement: dict[str, Any]


@pytest.fixture
async def s(make: Factory) -> Setup:
    setup = Setup()
    setup.organizer = await make.member(K.GOVERNMENT, ORG, A)
    setup.police = await make.member(K.POLICE, A)
    setup.hotline = await make.member(K.HOTLINE, A)
    setup.company = await make.member(K.COMPANY, A)
    participants = [setup.police.org_id, setup.hotline.org_id, setup.company.org_id]
    setup.conference = ok(
        await setup.organizer.gql(
            CREATE_CONFERENCE,
            {"i": {"title": "Public-private conference", "heldOn": "2018-02-13", "participantIds": participants}},
        )
    )
    setup.agreement = ok(
        await setup.organizer.gql(
            CREATE_AGREEMENT,
            {
                "i": {
                    "conferenceId": setup.conference["id"],
                    "title": "Companies remove reported material within 24 hours",
                    "description": "From notification to removal, at most one day.",
                    "partyIds": [setup.company.org_id, setup.hotline.org_id, setup.police.org_id],
                }
            },
        )
    )
    return setup


async def add(s: Setup, owner: Member, **extra: Any) -> dict[str, Any]:
    given = {"agreementId": s.agreement["id"], "ownerId": owner.org_id, "title": "Remove within 24h", "description": "", **extra}
    return ok(await s.organizer.gql(ADD, {"i": given}))


async def test_conference_agreement_commitment_read_back(s: Setup) -> None:
    c = s.conference
    assert c["title"] == "Public-private conference" and c["heldOn"] == "2018-02-13"
    assert c["organizer"]["id"] == s.organizer.org_id
    assert [p["id"] for p in c["participants"]] == [s.police.org_id, s.hotline.org_id, s.company.org_id]
    assert s.agreement["status"] == "DRAFT" and s.agreement["version"] == 1
    commitment = await add(s, s.company, dueOn="2018-06-01", kpi={"metric": "OVERDUE_NOTICES", "comparison": "AT_MOST", "target": 0})
    assert commitment["status"] == "PLANNED" and commitment["progress"] == 0
    assert commitment["kpi"]["metric"] == "OVERDUE_NOTICES" and commitment["kpi"]["current"] is None
    read = ok(await s.company.gql("{ r: conferences { id agreements { id conference { id } commitments { id kpi { current } } } } }"))
    mine = next(x for x in read if x["id"] == c["id"])
    assert mine["agreements"][0]["commitments"][0]["id"] == commitment["id"]
    assert mine["agreements"][0]["conference"]["id"] == c["id"]


@pytest.mark.parametrize(
    ("kind", "sees"),
    [(K.GOVERNMENT, True), (K.REGULATOR, True), (K.POLICE, False), (K.PROSECUTOR, False), (K.HOTLINE, False), (K.COMPANY, False)],
)
async def test_visibility_of_conferences_and_what_hangs_off_them(s: Setup, make: Factory, kind: K, sees: bool) -> None:
    """Organizer, participants, and every GOVERNMENT and REGULATOR organization; nobody else."""
    commitment = await add(s, s.company)
    outsider = await make.member(kind, A, ORG)
    ids = [x["id"] for x in (await outsider.gql(CONFERENCES))["data"]["conferences"]]
    assert (s.conference["id"] in ids) is sees
    for object_id in (s.conference["id"], s.agreement["id"], commitment["id"]):
        node = (await outsider.gql(NODE, {"id": object_id}))["data"]["node"]
        assert (node is not None) is sees
    listed = [x["id"] for x in (await outsider.gql(COMMITMENTS))["data"]["commitments"]]
    assert (commitment["id"] in listed) is sees
    for participant in (s.police, s.hotline, s.company, s.organizer):
        assert s.conference["id"] in [x["id"] for x in (await participant.gql(CONFERENCES))["data"]["conferences"]]
    if not sees:
        # invisible: NOT_FOUND even with the ORGANIZER role
        given = {"conferenceId": s.conference["id"], "title": "x", "description": "", "partyIds": [outsider.org_id]}
        assert error_codes(await outsider.gql(CREATE_AGREEMENT, {"i": given})) == ["NOT_FOUND"]
        assert error_codes(await outsider.gql(SET_STATUS, {"i": {"agreementId": s.agreement["id"], "status": "AGREED"}})) == ["NOT_FOUND"]
        update = {"commitmentId": commitment["id"], "status": "IN_PROGRESS", "progress": 10}
        assert error_codes(await outsider.gql(UPDATE, {"i": update})) == ["NOT_FOUND"]


async def test_organizer_role_is_needed_to_create(s: Setup, make: Factory) -> None:
    analyst = await make.member(K.GOVERNMENT, A)  # sees every conference, but is no organizer
    given = {"title": "Another", "heldOn": "2019-01-01", "participantIds": []}
    assert error_codes(await analyst.gql(CREATE_CONFERENCE, {"i": given})) == ["FORBIDDEN"]
    agreement = {"conferenceId": s.conference["id"], "title": "x", "description": "", "partyIds": [s.company.org_id]}
    assert error_codes(await analyst.gql(CREATE_AGREEMENT, {"i": agreement})) == ["FORBIDDEN"]
    assert error_codes(await analyst.gql(SET_STATUS, {"i": {"agreementId": s.agreement["id"], "status": "AGREED"}})) == ["FORBIDDEN"]
    commitment = {"agreementId": s.agreement["id"], "ownerId": s.company.org_id, "title": "t", "description": ""}
    assert error_codes(await analyst.gql(ADD, {"i": commitment})) == ["FORBIDDEN"]
    # Any kind with the ORGANIZER role may organize.
    company_organizer = await make.member(K.COMPANY, ORG)
    assert "errors" not in await company_organizer.gql(CREATE_CONFERENCE, {"i": given})


async def test_parties_and_owners_must_belong(s: Setup, make: Factory) -> None:
    stranger = await make.member(K.COMPANY, A)
    given = {"conferenceId": s.conference["id"], "title": "x", "description": "", "partyIds": [stranger.org_id]}
    assert error_codes(await s.organizer.gql(CREATE_AGREEMENT, {"i": given})) == ["BAD_USER_INPUT"]
    commitment = {"agreementId": s.agreement["id"], "ownerId": stranger.org_id, "title": "t", "description": ""}
    assert error_codes(await s.organizer.gql(ADD, {"i": commitment})) == ["BAD_USER_INPUT"]
    bad_kpi = {**commitment, "ownerId": s.company.org_id, "kpi": {"metric": "SHARE_REMOVED_WITHIN_DEADLINE", "comparison": "AT_LEAST", "target": 95}}
    assert error_codes(await s.organizer.gql(ADD, {"i": bad_kpi})) == ["BAD_USER_INPUT"]


async def test_agreement_lifecycle(s: Setup) -> None:
    aid = s.agreement["id"]

    async def set_status(status: str, **extra: Any) -> dict[str, Any]:
        return await s.organizer.gql(SET_STATUS, {"i": {"agreementId": aid, "status": status, **extra}})

    assert error_codes(await set_status("ACTIVE")) == ["CONFLICT"], "DRAFT must be AGREED first"
    assert error_codes(await set_status("COMPLETED")) == ["CONFLICT"]
    assert ok(await set_status("AGREED", expectedVersion=1))["version"] == 2
    assert error_codes(await set_status("ACTIVE", expectedVersion=1)) == ["CONFLICT"], "stale version"
    assert error_codes(await set_status("AGREED")) == ["CONFLICT"], "no change is no transition"
    assert ok(await set_status("ACTIVE"))["status"] == "ACTIVE"
    assert ok(await set_status("COMPLETED"))["status"] == "COMPLETED"
    assert error_codes(await set_status("WITHDRAWN")) == ["CONFLICT"], "COMPLETED is final"
    given = {"agreementId": aid, "ownerId": s.company.org_id, "title": "late", "description": ""}
    assert error_codes(await s.organizer.gql(ADD, {"i": given})) == ["CONFLICT"]


async def test_commitment_updates_roles_and_history(s: Setup, make: Factory) -> None:
    commitment = await add(s, s.company)
    cid = commitment["id"]

    async def update(member: Member, status: str, progress: int, **extra: Any) -> dict[str, Any]:
        return await member.gql(UPDATE, {"i": {"commitmentId": cid, "status": status, "progress": progress, **extra}})

    owner_member = await make.member(K.COMPANY, Role.MEMBER, organization=s.company.organization)
    assert error_codes(await update(owner_member, "IN_PROGRESS", 10)) == ["FORBIDDEN"], "the owner's ANALYST"
    assert error_codes(await update(s.hotline, "IN_PROGRESS", 10)) == ["FORBIDDEN"], "another party"
    regulator = await make.member(K.REGULATOR, A, ORG)
    assert error_codes(await update(regulator, "IN_PROGRESS", 10)) == ["FORBIDDEN"], "sees it, but organizes another conference"
    government = await make.member(K.GOVERNMENT, A)
    assert error_codes(await update(government, "IN_PROGRESS", 10)) == ["FORBIDDEN"]

    assert ok(await update(s.company, "IN_PROGRESS", 40, note="hash matching live on 2 of 5 platforms"))["version"] == 2
    assert error_codes(await update(s.company, "AT_RISK", 40, expectedVersion=1)) == ["CONFLICT"]
    assert ok(await update(s.organizer, "AT_RISK", 40, expectedVersion=2))["status"] == "AT_RISK"
    assert error_codes(await update(s.company, "IN_PROGRESS", 140)) == ["BAD_USER_INPUT"]
    assert error_codes(await update(s.company, "DONE", 90)) == ["BAD_USER_INPUT"]
    done = ok(await update(s.company, "DONE", 100, note="mail me at someone@example.org"))
    assert [(u["status"], u["progress"]) for u in done["updates"]] == [
        ("PLANNED", 0), ("IN_PROGRESS", 40), ("AT_RISK", 40), ("DONE", 100)
    ]
    assert done["updates"][1]["note"] == "hash matching live on 2 of 5 platforms"
    assert done["updates"][3]["note"] == "mail me at [redacted]"
    assert error_codes(await update(s.company, "IN_PROGRESS", 50)) == ["CONFLICT"], "DONE is final"
    assert error_codes(await update(s.organizer, "WITHDRAWN", 50)) == ["CONFLICT"]


async def test_overdue_and_the_commitments_filter(s: Setup) -> None:
    today = datetime.now(UTC).date()
    late = await add(s, s.company, dueOn=(today - timedelta(days=1)).isoformat())
    missed = await add(s, s.company, dueOn=(today - timedelta(days=2)).isoformat())
    ok(await s.company.gql(UPDATE, {"i": {"commitmentId": missed["id"], "status": "MISSED", "progress": 20}}))
    done = await add(s, s.company, dueOn=(today - timedelta(days=3)).isoformat())
    ok(await s.company.gql(UPDATE, {"i": {"commitmentId": done["id"], "status": "DONE", "progress": 100}}))
    future = await add(s, s.hotline, dueOn=(today + timedelta(days=30)).isoformat())
    undated = await add(s, s.police)
    assert late["overdue"] and not future["overdue"] and not undated["overdue"]

    async def ids(**variables: Any) -> set[str]:
        result = await s.organizer.gql(COMMITMENTS, variables)
        assert "errors" not in result, result
        return {c["id"] for c in result["data"]["commitments"]}

    mine = {late["id"], missed["id"], done["id"], future["id"], undated["id"]}
    assert await ids(d=True) & mine == {late["id"], missed["id"]}, "MISSED counts as overdue, DONE does not"
    assert await ids(d=False) & mine == {done["id"], future["id"], undated["id"]}
    assert await ids(o=s.company.org_id) == {late["id"], missed["id"], done["id"]}
    assert await ids(o=s.company.org_id, s=["DONE", "MISSED"]) == {missed["id"], done["id"]}
    assert await ids(o=s.hotline.org_id, d=True) == set()


async def test_events_of_the_conference_aggregates(s: Setup, pool: asyncpg.Pool) -> None:
    commitment = await add(s, s.company)
    ok(await s.organizer.gql(SET_STATUS, {"i": {"agreementId": s.agreement["id"], "status": "AGREED"}}))
    ok(await s.company.gql(UPDATE, {"i": {"commitmentId": commitment["id"], "status": "IN_PROGRESS", "progress": 5, "note": "secret"}}))
    conference_id = str(from_global_id(s.conference["id"])[1])
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT subject, envelope FROM events WHERE subject LIKE '%.' || $1 ORDER BY seq", conference_id)
    assert [r["subject"] for r in rows] == [
        f"td.{name}.{conference_id}"
        for name in ("conference.created", "agreement.created", "commitment.added", "agreement.status_changed", "commitment.updated")
    ]
    updated = rows[-1]["envelope"]
    assert updated["type"] == "nl.takedown.commitment.updated.v1"
    assert updated["data"]["status"] == "IN_PROGRESS" and updated["data"]["previousStatus"] == "PLANNED"
    assert "secret" not in str(updated)


async def test_idempotent_creation(s: Setup) -> None:
    given = {"title": "Follow-up", "heldOn": "2018-09-01", "participantIds": [s.company.org_id], "idempotencyKey": "conf-1"}
    first = ok(await s.organizer.gql(CREATE_CONFERENCE, {"i": given}))
    again = ok(await s.organizer.gql(CREATE_CONFERENCE, {"i": given}))
    assert first["id"] == again["id"]
    c1 = await add(s, s.company, idempotencyKey="c-1")
    c2 = await add(s, s.company, idempotencyKey="c-1")
    assert c1["id"] == c2["id"]


async def test_kpis_are_measured_live_and_flip_as_notices_go_overdue(s: Setup, pool: asyncpg.Pool) -> None:
    share = await add(s, s.company, kpi={"metric": "SHARE_REMOVED_WITHIN_DEADLINE", "comparison": "AT_LEAST", "target": 0.9})
    overdue = await add(s, s.company, kpi={"metric": "OVERDUE_NOTICES", "comparison": "AT_MOST", "target": 0})
    median = await add(s, s.company, kpi={"metric": "MEDIAN_SECONDS_TO_REMOVAL", "comparison": "AT_MOST", "target": 86400})
    nothing = await add(s, s.police, kpi={"metric": "OVERDUE_NOTICES", "comparison": "AT_MOST", "target": 0})

    async def kpi(commitment: dict[str, Any]) -> dict[str, Any]:
        result = await s.hotline.gql(COMMITMENT, {"id": commitment["id"]})
        assert "errors" not in result, result
        return result["data"]["node"]["kpi"]  # type: ignore[no-any-return]

    assert (await kpi(share))["current"] is None and (await kpi(share))["met"] is None, "no notices: nothing measured"
    removed = await report(s.hotline, s.company.organization)
    pending = await report(s.hotline, s.company.organization)
    assert "errors" not in await act(s.company, "remove", removed["id"])
    _, removed_key = from_global_id(removed["id"])
    _, pending_key = from_global_id(pending["id"])
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE notices SET reported_at = removed_at - interval '2 hours', due_at = removed_at + interval '22 hours' WHERE id = $1",
            removed_key,
        )
    assert await kpi(share) == {"metric": "SHARE_REMOVED_WITHIN_DEADLINE", "comparison": "AT_LEAST", "target": 0.9, "current": 1.0, "met": True}
    assert (await kpi(overdue))["current"] == 0 and (await kpi(overdue))["met"] is True
    assert (await kpi(median))["current"] == 7200 and (await kpi(median))["met"] is True
    assert (await kpi(nothing))["current"] is None, "the police party has no notices"

    async with pool.acquire() as conn:  # a day passes: the pending notice is now past its deadline
        await conn.execute(
            "UPDATE notices SET reported_at = reported_at - interval '25 hours', due_at = due_at - interval '25 hours' WHERE id = $1",
            pending_key,
        )
    assert (await kpi(share))["current"] == 0.5 and (await kpi(share))["met"] is False
    assert (await kpi(overdue))["current"] == 1 and (await kpi(overdue))["met"] is False
    assert (await kpi(median))["met"] is True, "the median is of removed notices only"
    # The reporter sees the same figures measured over its reported notices.
    hotline_kpi = await add(s, s.hotline, kpi={"metric": "OVERDUE_NOTICES", "comparison": "AT_MOST", "target": 0})
    assert (await kpi(hotline_kpi))["current"] == 1

    async with pool.acquire() as conn:  # notices older than 90 days no longer count
        await conn.execute(
            "UPDATE notices SET reported_at = reported_at - interval '91 days', due_at = due_at - interval '91 days',"
            " removed_at = removed_at - interval '91 days' WHERE id = ANY($1::uuid[])",
            [removed_key, pending_key],
        )
    assert (await kpi(share))["current"] is None and (await kpi(overdue))["met"] is None


def test_overdue_is_a_utc_calendar_rule() -> None:
    from api.domain.conferences import Commitment, CommitmentStatus

    base = Commitment(
        id=__import__("uuid").uuid4(), agreement_id=__import__("uuid").uuid4(), conference_id=__import__("uuid").uuid4(),
        owner_id=__import__("uuid").uuid4(), title="t", description="", due_on=date(2018, 6, 1),
        status=CommitmentStatus.IN_PROGRESS, progress=0, kpi=None, version=1,
    )
    assert not base.overdue(datetime(2018, 6, 1, 23, 59, tzinfo=UTC))
    assert base.overdue(datetime(2018, 6, 2, 0, 0, tzinfo=UTC))


async def test_demo_conference_of_february_2018(services: Any, settings: Any) -> None:
    from api.seed import seed
    from api.store.pool import create_pool
    from tests.conftest import fresh_database

    isolated = settings.with_overrides(database_url=await fresh_database(services))
    pool = await create_pool(isolated)
    try:
        seeded = await seed(pool)
        await seed(pool)  # a second run adds nothing
        async with pool.acquire() as conn:
            conferences = await conn.fetch("SELECT id, title, held_on FROM conferences")
            agreements = await conn.fetch("SELECT title, status FROM agreements ORDER BY title")
            owners = await conn.fetch(
                "SELECT o.kind, count(*) AS n FROM commitments m JOIN organizations o ON o.id = m.owner_id GROUP BY o.kind"
            )
            kpis = await conn.fetchval("SELECT count(*) FROM commitments WHERE kpi_metric IS NOT NULL")
            participants = await conn.fetchval("SELECT count(*) FROM conference_participants")
    finally:
        await pool.close()
    assert [(c["held_on"], c["title"]) for c in conferences] == [
        (date(2018, 2, 13), "Public-private conference on online child sexual abuse material")
    ]
    assert participants == len(seeded) - 1, "everyone but the organizing ministry"
    titles = [a["title"] for a in agreements]
    assert "Companies remove reported material within 24 hours" in titles
    assert "Companies deploy hash matching on uploads" in titles
    assert "The hotline and police report through the platform" in titles
    assert "Government publishes national figures yearly" in titles
    assert {a["status"] for a in agreements} == {"ACTIVE"}
    by_kind = {r["kind"]: r["n"] for r in owners}
    companies = sum(1 for o, _ in seeded if o.kind is K.COMPANY)
    assert by_kind["COMPANY"] == 3 * companies, "every company commits to removal, no overdue notices and hash matching"
    assert set(by_kind) == {"COMPANY", "REGULATOR", "HOTLINE", "POLICE", "GOVERNMENT", "PROSECUTOR"}
    assert kpis == 2 * companies + 1


async def test_a_demo_conference_seed_stopped_half_way_is_completed_by_the_next_run(services: Any, settings: Any) -> None:
    """A run stopped after the conference, one draft agreement and one of its commitments: the
    next run completes it as a run that was never stopped would have, without duplicates."""
    from api import seed_conference as demo
    from api.seed import DEMO, seed
    from api.services import conferences as commands
    from api.services.organizations import create_organization
    from api.store.pool import create_pool
    from tests.conftest import fresh_database

    async def snapshot(pool: asyncpg.Pool) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return {
                "conferences": await conn.fetchval("SELECT count(*) FROM conferences"),
                "agreements": sorted(tuple(r) for r in await conn.fetch("SELECT title, status FROM agreements")),
                "commitments": sorted(tuple(r) for r in await conn.fetch(
                    "SELECT o.name, m.title, m.status, m.progress FROM commitments m JOIN organizations o ON o.id = m.owner_id")),
            }

    complete = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    stopped = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        await seed(complete)
        seeded = [await create_organization(stopped, None, name=d.name, kind=d.kind, country="NL") for d in DEMO]
        viewer = demo._viewer(next(o for o in seeded if o.kind is K.GOVERNMENT))
        conference = await commands.create_conference(
            stopped, viewer, title=demo.TITLE, held_on=demo.HELD_ON, idempotency_key=None, now=demo.HELD_AT,
            participant_ids=[o.id for o in seeded if o.id != viewer.organization_id])
        first = demo.AGREEMENTS[0]
        agreement = await commands.create_agreement(
            stopped, viewer, conference_id=conference.id, title=first.title, description=first.description,
            party_ids=[p for who in first.parties for p in demo._ids(seeded, who)], idempotency_key=None, now=demo.HELD_AT)
        item = first.commitments[0]
        await commands.add_commitment(
            stopped, viewer, agreement_id=agreement.id, owner_id=demo._ids(seeded, item.owner)[0], title=item.title,
            description=item.description, due_on=item.due_on, kpi=item.kpi, idempotency_key=None, now=demo.HELD_AT)

        assert await demo.seed_conference(stopped, seeded) is True
        assert await demo.seed_conference(stopped, seeded) is False
        assert await snapshot(stopped) == await snapshot(complete)
    finally:
        await complete.close()
        await stopped.close()


async def test_seeding_again_never_undoes_a_users_change_to_the_demo(services: Any, settings: Any) -> None:
    """`takedown dev` seeds on every start: a commitment moved back to PLANNED since stays PLANNED."""
    from api import seed_conference as demo
    from api.domain.conferences import CommitmentStatus
    from api.seed import seed
    from api.services import conferences as commands
    from api.store.pool import create_pool
    from tests.conftest import fresh_database

    pool = await create_pool(settings.with_overrides(database_url=await fresh_database(services)))
    try:
        seeded = [organization for organization, _ in await seed(pool)]
        viewer = demo._viewer(next(o for o in seeded if o.kind is K.GOVERNMENT))
        async with pool.acquire() as conn:
            pilot = await conn.fetchrow("SELECT id, status FROM commitments WHERE title = 'Pilot victim alerts'")
        assert pilot["status"] == "IN_PROGRESS"
        await commands.change_commitment(pool, viewer, pilot["id"], status=CommitmentStatus.PLANNED, progress=0,
                                         note="on hold", expected_version=None, now=datetime.now(UTC))
        assert await demo.seed_conference(pool, seeded) is False
        async with pool.acquire() as conn:
            after = await conn.fetchrow("SELECT status, progress FROM commitments WHERE id = $1", pilot["id"])
        assert (after["status"], after["progress"]) == ("PLANNED", 0)
    finally:
        await pool.close()


async def test_commitment_overdue_is_emitted_once(s: Setup, pool: asyncpg.Pool) -> None:
    from api.services.conferences import mark_overdue_commitments

    late = await add(s, s.company, dueOn="2018-06-01")
    done = await add(s, s.company, dueOn="2018-06-01")
    ok(await s.company.gql(UPDATE, {"i": {"commitmentId": done["id"], "status": "DONE", "progress": 100}}))
    await add(s, s.company, dueOn="2018-06-03")
    june_2 = datetime(2018, 6, 2, 0, 0, 1, tzinfo=UTC)
    marked = 0
    for _ in range(100):  # other tests' commitments may be due as well; bounded
        step = await mark_overdue_commitments(pool, june_2, limit=50)
        marked += step
        if step < 50:
            break
    assert marked >= 1
    assert await mark_overdue_commitments(pool, june_2) == 0, "once"
    conference_id = str(from_global_id(s.conference["id"])[1])
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT aggregate_id, envelope FROM events WHERE subject = $1 ORDER BY seq", f"td.commitment.overdue.{conference_id}"
        )
    assert [r["envelope"]["data"]["commitmentId"] for r in rows] == [late["id"]]
    async with pool.acquire() as conn:
        audited = await conn.fetch("SELECT object_id, subject FROM audit_log WHERE action = 'commitment.overdue' AND object_id = ANY($1::text[])",
                                   [late["id"], done["id"]])
    assert [(r["object_id"], r["subject"]) for r in audited] == [(late["id"], "platform")]
    assert rows[0]["envelope"]["type"] == "nl.takedown.commitment.overdue.v1" and "tdactorkind" not in rows[0]["envelope"]


async def test_a_participant_with_the_organizer_role_cannot_shape_anothers_conference(s: Setup, make: Factory) -> None:
    insider = await make.member(K.COMPANY, ORG, A, organization=s.company.organization)
    status = await insider.gql(SET_STATUS, {"i": {"agreementId": s.agreement["id"], "status": "WITHDRAWN"}})
    assert error_codes(status) == ["FORBIDDEN"]
    added = await insider.gql(ADD, {"i": {"agreementId": s.agreement["id"], "ownerId": s.police.org_id,
                                          "title": "Police do it all", "description": "."}})
    assert error_codes(added) == ["FORBIDDEN"]
    agreement = await insider.gql(CREATE_AGREEMENT, {"i": {"conferenceId": s.conference["id"], "title": "Ours",
                                                           "description": ".", "partyIds": [s.company.org_id]}})
    assert error_codes(agreement) == ["FORBIDDEN"]


async def test_a_company_cannot_measure_a_competitor_through_a_kpi(make: Factory) -> None:
    company = await make.member(K.COMPANY, ORG, A)
    competitor = await make.organization(K.COMPANY)
    from api.domain.ids import to_global_id

    competitor_id = to_global_id("Organization", competitor.id)
    conference = ok(await company.gql(CREATE_CONFERENCE, {"i": {"title": "Industry day", "heldOn": "2018-03-01",
                                                                "participantIds": [competitor_id]}}))
    agreement = ok(await company.gql(CREATE_AGREEMENT, {"i": {"conferenceId": conference["id"], "title": "Speed",
                                                              "description": ".", "partyIds": [company.org_id, competitor_id]}}))
    kpi = {"metric": "MEDIAN_SECONDS_TO_REMOVAL", "comparison": "AT_MOST", "target": 3600}
    spying = await company.gql(ADD, {"i": {"agreementId": agreement["id"], "ownerId": competitor_id, "title": "Be fast",
                                           "description": ".", "kpi": kpi}})
    assert error_codes(spying) == ["FORBIDDEN"]
    own = await company.gql(ADD, {"i": {"agreementId": agreement["id"], "ownerId": company.org_id, "title": "We are fast",
                                        "description": ".", "kpi": kpi}})
    assert "errors" not in own
    plain = await company.gql(ADD, {"i": {"agreementId": agreement["id"], "ownerId": competitor_id, "title": "Be fast",
                                          "description": "no measurement"}})
    assert "errors" not in plain, "a commitment without a KPI is still fine"


async def test_control_characters_are_bad_input(s: Setup) -> None:
    result = await s.organizer.gql(CREATE_AGREEMENT, {"i": {"conferenceId": s.conference["id"], "title": "Nul\u0000",
                                                            "description": ".", "partyIds": [s.police.org_id]}})
    assert error_codes(result) == ["BAD_USER_INPUT"] and "control characters" in result["errors"][0]["message"]


async def test_titles_and_descriptions_are_screened_like_notes(s: Setup, pool: asyncpg.Pool) -> None:
    """They reach every participant and the events: contact details are redacted before anything is stored."""
    agreement = ok(await s.organizer.gql(CREATE_AGREEMENT, {"i": {
        "conferenceId": s.conference["id"], "title": "Call j.jansen@example.org or +31 6 1234 5678",
        "description": "Host 192.0.2.14 by 2018-02-13", "partyIds": [s.police.org_id]}}))
    commitment = await add(s, s.company, title="Ask 020 123 4567", description="mail abuse@host.example, NTC-2018-000123")
    async with pool.acquire() as conn:
        stored = await conn.fetchrow("SELECT title, description FROM agreements WHERE id = $1", from_global_id(agreement["id"])[1])
        described = await conn.fetchval("SELECT description FROM commitments WHERE id = $1", from_global_id(commitment["id"])[1])
        events = [r["envelope"] for r in await conn.fetch(
            "SELECT envelope FROM events WHERE aggregate_id = ANY($1::uuid[])",
            [from_global_id(agreement["id"])[1], from_global_id(commitment["id"])[1]])]
    assert stored["title"] == "Call [redacted] or [redacted]"
    assert stored["description"] == "Host [redacted] by 2018-02-13"
    assert commitment["title"] == "Ask [redacted]"
    assert described == "mail [redacted], NTC-2018-000123", "references and dates are not phone numbers"
    text = str(events)
    assert events and all(secret not in text for secret in ("jansen", "1234 5678", "192.0.2.14", "123 4567", "abuse@"))


async def test_a_title_that_redaction_makes_too_long_is_bad_input(s: Setup) -> None:
    """197 characters with an e-mail address are 201 once redacted: BAD_USER_INPUT, not the database's CHECK."""
    title = "x" * 190 + " a@b.nl"
    result = await s.organizer.gql(CREATE_AGREEMENT, {"i": {
        "conferenceId": s.conference["id"], "title": title, "description": ".", "partyIds": [s.police.org_id]}})
    assert error_codes(result) == ["BAD_USER_INPUT"] and "at most 200" in result["errors"][0]["message"]
    fits = ok(await s.organizer.gql(CREATE_AGREEMENT, {"i": {
        "conferenceId": s.conference["id"], "title": "x" * 185 + " a@b.nl", "description": ".", "partyIds": [s.police.org_id]}}))
    assert fits["status"] == "DRAFT"
