"""Administrative enforcement: the case lifecycle, its tiers and role rules (ACCESS.md), history and events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from api.domain.ids import from_global_id, to_global_id
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from tests.conftest import Factory, Member, error_codes
from tests.notices_helpers import report

A = Role.ANALYST
CASE_FIELDS = """
    id reference status visibility openedAt orderDueAt penaltyEuros version
    provider { id }
    notices { id visibility url }
    history { status actorKind note }
"""
OPEN = f"mutation($i: OpenEnforcementCaseInput!) {{ openEnforcementCase(input: $i) {{ {CASE_FIELDS} }} }}"
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on EnforcementCase {{ {CASE_FIELDS} }} }} }}"
LIST = """query($p: ID, $s: [EnforcementStatus!], $first: Int, $after: String) {
  enforcementCases(providerId: $p, statuses: $s, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status } } } }"""
STEPS = {
    "warn": "sendWarning(input: $i)",
    "object": "fileObjection(input: $i)",
    "comply": "recordCompliance(input: $i)",
    "penalize": "imposePenalty(input: $i)",
    "close": "closeEnforcementCase(input: $i)",
}
ORDER = f"mutation($i: IssueOrderInput!) {{ result: issueOrder(input: $i) {{ {CASE_FIELDS} }} }}"


async def step(member: Member, name: str, case_id: str, **extra: Any) -> dict[str, Any]:
    document = f"mutation($i: EnforcementActionInput!) {{ result: {STEPS[name]} {{ {CASE_FIELDS} }} }}"
    return await member.gql(document, {"i": {"caseId": case_id, **extra}})


async def order(member: Member, case_id: str, *, hours: int = 48, penalty: int = 25_000, **extra: Any) -> dict[str, Any]:
    due = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    return await member.gql(ORDER, {"i": {"caseId": case_id, "dueAt": due, "penaltyEuros": penalty, **extra}})


def ok(result: dict[str, Any], name: str = "result") -> dict[str, Any]:
    assert "errors" not in result, result
    return result["data"][name]  # type: ignore[no-any-return]


class Parties:
    def __init__(self, regulator: Member, provider: Member, hotline: Member, notice_ids: list[str]) -> None:
        self.regulator, self.provider, self.hotline, self.notice_ids = regulator, provider, hotline, notice_ids


@pytest.fixture
async def parties(make: Factory) -> Parties:
    regulator = await make.member(K.REGULATOR, A)
    provider = await make.member(K.COMPANY, A)
    hotline = await make.member(K.HOTLINE, A)
    notices = [await report(hotline, provider.organization) for _ in range(2)]
    return Parties(regulator, provider, hotline, [n["id"] for n in notices])


async def open_case(p: Parties, **extra: Any) -> dict[str, Any]:
    given = {"providerId": p.provider.org_id, "noticeIds": p.notice_ids, "note": "no removal after 3 reminders", **extra}
    return ok(await p.regulator.gql(OPEN, {"i": given}), "openEnforcementCase")


async def test_the_full_lifecycle_with_history_and_events(parties: Parties, pool: asyncpg.Pool) -> None:
    p = parties
    case = await open_case(p)
    assert case["status"] == "OPEN" and case["visibility"] == "FULL" and case["version"] == 1
    assert case["reference"].startswith(f"ENF-{datetime.now(UTC).year}-")
    assert [n["id"] for n in case["notices"]] == p.notice_ids
    cid = case["id"]

    assert ok(await step(p.regulator, "warn", cid, note="remove within 24 hours"))["status"] == "WARNING_SENT"
    ordered = ok(await order(p.regulator, cid, penalty=50_000, expectedVersion=2))
    assert ordered["status"] == "ORDER_ISSUED" and ordered["penaltyEuros"] == 50_000 and ordered["orderDueAt"]
    assert ok(await step(p.provider, "object", cid, note="we were never notified"))["status"] == "OBJECTION_FILED"
    assert ok(await step(p.regulator, "penalize", cid))["status"] == "PENALTY_IMPOSED"
    closed = ok(await step(p.regulator, "close", cid, expectedVersion=5))
    assert closed["status"] == "CLOSED" and closed["version"] == 6
    assert [(h["status"], h["actorKind"]) for h in closed["history"]] == [
        ("OPEN", "REGULATOR"),
        ("WARNING_SENT", "REGULATOR"),
        ("ORDER_ISSUED", "REGULATOR"),
        ("OBJECTION_FILED", "COMPANY"),
        ("PENALTY_IMPOSED", "REGULATOR"),
        ("CLOSED", "REGULATOR"),
    ]
    assert closed["history"][0]["note"] == "no removal after 3 reminders"

    _, key = from_global_id(cid)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT subject, envelope FROM events WHERE aggregate_id = $1 ORDER BY seq", key)
    provider = str(p.provider.organization.id)
    assert [r["subject"] for r in rows] == [
        f"td.enforcement.{name}.{provider}"
        for name in ("opened", "warning_sent", "order_issued", "objection_filed", "penalty_imposed", "closed")
    ]
    last = rows[-1]["envelope"]
    assert last["type"] == "nl.takedown.enforcement.closed.v1" and last["tdaggregateversion"] == 6
    assert last["data"]["status"] == "CLOSED" and last["data"]["previousStatus"] == "PENALTY_IMPOSED"
    assert "penaltyEuros" not in last["data"] and "note" not in json.dumps(last["data"])


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], ["object", "comply", "penalize"]),  # OPEN
        (["warn"], ["warn", "object", "comply", "penalize"]),  # WARNING_SENT
        (["order"], ["warn"]),  # ORDER_ISSUED (straight from OPEN)
        (["order", "object"], ["object", "warn"]),  # OBJECTION_FILED
        (["order", "comply"], ["comply", "penalize", "object", "warn"]),  # COMPLIED
        (["order", "penalize"], ["penalize", "comply", "object"]),  # PENALTY_IMPOSED
        (["close"], ["close", "warn", "comply"]),  # CLOSED
    ],
)
async def test_illegal_steps_conflict_and_change_nothing(parties: Parties, path: list[str], illegal: list[str]) -> None:
    p = parties
    cid = (await open_case(p))["id"]
    for name in path:
        actor = p.provider if name == "object" else p.regulator
        ok(await order(actor, cid) if name == "order" else await step(actor, name, cid))
    before = ok(await p.regulator.gql(NODE, {"id": cid}), "node")
    for name in illegal:
        actor = p.provider if name == "object" else p.regulator
        assert error_codes(await step(actor, name, cid)) == ["CONFLICT"], (path, name)
    if path and path[-1] != "warn":  # an order is issued from OPEN or WARNING_SENT only
        assert error_codes(await order(p.regulator, cid)) == ["CONFLICT"]
    assert ok(await p.regulator.gql(NODE, {"id": cid}), "node") == before


async def test_objection_then_compliance_or_closing(parties: Parties) -> None:
    p = parties
    first = (await open_case(p))["id"]
    ok(await order(p.regulator, first))
    ok(await step(p.provider, "object", first))
    assert ok(await step(p.regulator, "comply", first))["status"] == "COMPLIED"
    assert ok(await step(p.regulator, "close", first))["status"] == "CLOSED"
    second = (await open_case(p))["id"]
    ok(await order(p.regulator, second))
    ok(await step(p.provider, "object", second))
    assert ok(await step(p.regulator, "close", second))["status"] == "CLOSED"


async def test_stale_version_conflicts(parties: Parties) -> None:
    p = parties
    cid = (await open_case(p))["id"]
    assert error_codes(await step(p.regulator, "warn", cid, expectedVersion=7)) == ["CONFLICT"]
    ok(await step(p.regulator, "warn", cid, expectedVersion=1))
    assert error_codes(await order(p.regulator, cid, expectedVersion=1)) == ["CONFLICT"]


async def test_order_needs_a_future_deadline_and_a_sane_penalty(parties: Parties) -> None:
    p = parties
    cid = (await open_case(p))["id"]
    assert error_codes(await order(p.regulator, cid, hours=-1)) == ["BAD_USER_INPUT"]
    assert error_codes(await order(p.regulator, cid, penalty=-5)) == ["BAD_USER_INPUT"]
    assert ok(await p.regulator.gql(NODE, {"id": cid}), "node")["status"] == "OPEN"


async def test_opening_needs_notices_of_that_provider(parties: Parties, make: Factory) -> None:
    p = parties
    other = await make.member(K.COMPANY, A)
    foreign = await report(p.hotline, other.organization)
    given = {"providerId": p.provider.org_id, "noticeIds": [p.notice_ids[0], foreign["id"]]}
    assert error_codes(await p.regulator.gql(OPEN, {"i": given})) == ["BAD_USER_INPUT"]
    assert error_codes(await p.regulator.gql(OPEN, {"i": {"providerId": p.provider.org_id, "noticeIds": []}})) == ["BAD_USER_INPUT"]
    not_a_company = {"providerId": p.hotline.org_id, "noticeIds": p.notice_ids}
    assert error_codes(await p.regulator.gql(OPEN, {"i": not_a_company})) == ["BAD_USER_INPUT"]
    missing = {"providerId": p.provider.org_id, "noticeIds": [to_global_id("Notice", from_global_id(p.provider.org_id)[1])]}
    assert error_codes(await p.regulator.gql(OPEN, {"i": missing})) == ["NOT_FOUND"]


async def test_idempotency_key_returns_the_first_case(parties: Parties) -> None:
    p = parties
    first = await open_case(p, idempotencyKey="case-42")
    again = await open_case(p, idempotencyKey="case-42")
    assert again["id"] == first["id"]
    listed = ok(await p.regulator.gql(LIST, {"p": p.provider.org_id}), "enforcementCases")
    assert listed["totalCount"] == 1


@pytest.mark.parametrize(
    ("kind", "roles"),
    [(K.POLICE, (A,)), (K.PROSECUTOR, (A,)), (K.GOVERNMENT, (A, Role.ORGANIZER)), (K.HOTLINE, (A,)), (K.REGULATOR, (Role.MEMBER,))],
)
async def test_only_regulator_analysts_open_and_steer_cases(parties: Parties, make: Factory, kind: K, roles: tuple[Role, ...]) -> None:
    p = parties
    someone = await make.member(kind, *roles)
    given = {"providerId": p.provider.org_id, "noticeIds": p.notice_ids}
    assert error_codes(await someone.gql(OPEN, {"i": given})) == ["FORBIDDEN"]
    cid = (await open_case(p))["id"]
    for name in ("warn", "comply", "penalize", "close"):
        assert error_codes(await step(someone, name, cid)) == ["FORBIDDEN"], name
    assert error_codes(await order(someone, cid)) == ["FORBIDDEN"]
    # Objection: the provider alone.
    ok(await order(p.regulator, cid))
    assert error_codes(await step(someone, "object", cid)) == ["FORBIDDEN"]
    assert error_codes(await step(p.regulator, "object", cid)) == ["FORBIDDEN"]
    provider_member = await make.member(K.COMPANY, Role.MEMBER, organization=p.provider.organization)
    assert error_codes(await step(provider_member, "object", cid)) == ["FORBIDDEN"], "the provider's ANALYST, not any member"
    for name in ("warn", "comply", "penalize", "close"):
        assert error_codes(await step(p.provider, name, cid)) == ["FORBIDDEN"], name


async def test_tiers_of_a_case_and_its_notices(parties: Parties, make: Factory) -> None:
    p = parties
    cid = (await open_case(p))["id"]
    ok(await order(p.regulator, cid, penalty=10_000, note="order of the regulator"))

    def seen(result: dict[str, Any]) -> dict[str, Any]:
        return ok(result, "node")

    provider = seen(await p.provider.gql(NODE, {"id": cid}))
    assert provider["visibility"] == "FULL" and provider["penaltyEuros"] == 10_000
    assert provider["history"][-1]["note"] == "order of the regulator"
    assert all(n["visibility"] == "FULL" and n["url"] for n in provider["notices"])

    for kind in (K.POLICE, K.PROSECUTOR):
        viewer = await make.member(kind)
        case = seen(await viewer.gql(NODE, {"id": cid}))
        assert case["visibility"] == "CASE" and case["penaltyEuros"] == 10_000
        assert case["history"][-1]["note"] == "order of the regulator"
        assert [n["visibility"] for n in case["notices"]] == ["FULL", "FULL"], "notices keep their own tier"

    government = await make.member(K.GOVERNMENT)
    other_hotline = await make.member(K.HOTLINE)
    for viewer in (government, other_hotline):
        case = seen(await viewer.gql(NODE, {"id": cid}))
        assert case["visibility"] == "STATUS" and case["status"] == "ORDER_ISSUED"
        assert case["penaltyEuros"] is None and all(h["note"] is None for h in case["history"])
        assert case["orderDueAt"] and case["openedAt"] and case["reference"]
        assert [(n["visibility"], n["url"]) for n in case["notices"]] == [("STATUS", None)] * 2
    reporter_view = seen(await p.hotline.gql(NODE, {"id": cid}))
    assert reporter_view["visibility"] == "STATUS"
    assert [n["visibility"] for n in reporter_view["notices"]] == ["FULL", "FULL"], "the reporter sees its own notices"

    stranger = await make.member(K.COMPANY, A)
    assert (await stranger.gql(NODE, {"id": cid}))["data"]["node"] is None
    listed = ok(await stranger.gql(LIST, {}), "enforcementCases")
    assert cid not in [e["node"]["id"] for e in listed["edges"]]
    assert error_codes(await step(stranger, "object", cid)) == ["NOT_FOUND"]


async def test_lists_filter_and_page(parties: Parties) -> None:
    p = parties
    ids = [(await open_case(p))["id"] for _ in range(3)]
    ok(await step(p.regulator, "warn", ids[0]))
    mine = ok(await p.provider.gql(LIST, {"first": 2}), "enforcementCases")
    assert mine["totalCount"] == 3 and mine["pageInfo"]["hasNextPage"]
    rest = ok(await p.provider.gql(LIST, {"first": 2, "after": mine["pageInfo"]["endCursor"]}), "enforcementCases")
    assert [e["node"]["id"] for e in mine["edges"] + rest["edges"]] == list(reversed(ids))
    warned = ok(await p.regulator.gql(LIST, {"p": p.provider.org_id, "s": ["WARNING_SENT"]}), "enforcementCases")
    assert [e["node"]["id"] for e in warned["edges"]] == [ids[0]]
    assert error_codes(await p.regulator.gql(LIST, {"after": "bm90LWEtY3Vyc29y"})) == ["BAD_USER_INPUT"]
