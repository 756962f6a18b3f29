"""The takedown lifecycle: every allowed transition, a sample of illegal ones, and who may take each step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import pytest

from api.domain.organizations import Organization, Role
from api.domain.organizations import OrganizationKind as K
from tests.conftest import Factory, Member, error_codes
from tests.notices_helpers import NOTICE, act, report, unique_url


@dataclass
class Parties:
    hotline: Member
    company: Member
    provider: Organization
    police: Member
    prosecutor: Member
    regulator: Member
    government: Member


@pytest.fixture
async def parties(make: Factory) -> Parties:
    company = await make.member(K.COMPANY, Role.ANALYST, Role.MEMBER)
    return Parties(
        hotline=await make.member(K.HOTLINE, Role.ANALYST),
        company=company,
        provider=company.organization,
        police=await make.member(K.POLICE, Role.ANALYST),
        prosecutor=await make.member(K.PROSECUTOR, Role.ANALYST),
        regulator=await make.member(K.REGULATOR, Role.ANALYST),
        government=await make.member(K.GOVERNMENT, Role.ANALYST, Role.ORGANIZER),
    )


async def status_after(p: Parties, steps: list[tuple[str, str]]) -> tuple[str, dict]:  # type: ignore[type-arg]
    notice = await report(p.hotline, p.provider)
    for who, action in steps:
        result = await act(getattr(p, who), action, notice["id"])
        assert "errors" not in result, (who, action, result)
    return notice["id"], (await p.hotline.gql(NOTICE, {"id": notice["id"]}))["data"]["notice"]


async def test_acknowledge_remove_verify(parties: Parties) -> None:
    _, notice = await status_after(
        parties, [("company", "acknowledge"), ("company", "remove"), ("hotline", "verify_offline")]
    )
    assert notice["status"] == "VERIFIED_OFFLINE"
    assert notice["version"] == 4
    assert [(h["fromStatus"], h["toStatus"], h["actorKind"]) for h in notice["history"]] == [
        (None, "NOTIFIED", "HOTLINE"),
        ("NOTIFIED", "ACKNOWLEDGED", "COMPANY"),
        ("ACKNOWLEDGED", "REMOVED", "COMPANY"),
        ("REMOVED", "VERIFIED_OFFLINE", "HOTLINE"),
    ]
    assert notice["acknowledgedAt"] and notice["removedAt"]
    assert notice["secondsToRemoval"] is not None and notice["secondsToRemoval"] >= 0


@pytest.mark.parametrize(
    ("steps", "final"),
    [
        ([("company", "remove")], "REMOVED"),
        ([("company", "refuse")], "REFUSED"),
        ([("company", "acknowledge"), ("company", "refuse")], "REFUSED"),
        ([("company", "refuse"), ("hotline", "escalate"), ("company", "remove")], "REMOVED"),
        ([("police", "escalate")], "ESCALATED"),
        ([("company", "acknowledge"), ("prosecutor", "escalate")], "ESCALATED"),
        ([("regulator", "escalate")], "ESCALATED"),
        ([("company", "remove"), ("police", "verify_offline")], "VERIFIED_OFFLINE"),
        ([("hotline", "withdraw")], "WITHDRAWN"),
        ([("company", "refuse"), ("hotline", "withdraw")], "WITHDRAWN"),
        ([("police", "escalate"), ("hotline", "withdraw")], "WITHDRAWN"),
        ([("company", "remove"), ("hotline", "withdraw")], "WITHDRAWN"),
    ],
)
async def test_allowed_transitions(parties: Parties, steps: list[tuple[str, str]], final: str) -> None:
    _, notice = await status_after(parties, steps)
    assert notice["status"] == final
    assert notice["version"] == len(steps) + 1
    assert len(notice["history"]) == len(steps) + 1


@pytest.mark.parametrize("start", [[("company", "remove")], [("company", "remove"), ("hotline", "verify_offline")]])
async def test_content_back_online_reopens_without_restarting_the_deadline(parties: Parties, start) -> None:  # type: ignore[no-untyped-def]
    notice_id, before = await status_after(parties, start)
    result = await act(parties.hotline, "verify_online", notice_id)
    assert result["data"]["result"]["status"] == "NOTIFIED"
    after = (await parties.hotline.gql(NOTICE, {"id": notice_id}))["data"]["notice"]
    assert after["dueAt"] == before["dueAt"]
    assert after["removedAt"] is None and after["secondsToRemoval"] is None
    assert after["history"][-1]["toStatus"] == "NOTIFIED"


async def test_content_back_online_cannot_reopen_beside_a_newer_open_notice(parties: Parties, pool: asyncpg.Pool) -> None:
    """Reported again after removal, the URL has a new open notice; the old one coming back online
    would make two open notices of one URL: CONFLICT, and neither notice nor the outbox changes."""
    url = unique_url()
    old = await report(parties.hotline, parties.provider, url=url)
    assert "errors" not in await act(parties.company, "remove", old["id"])
    newer = await report(parties.hotline, parties.provider, url=url)
    assert newer["id"] != old["id"]
    events = "SELECT count(*) FROM events WHERE envelope->>'subject' = $1"
    async with pool.acquire() as conn:
        events_before = await conn.fetchval(events, old["id"])
    result = await act(parties.hotline, "verify_online", old["id"])
    assert error_codes(result) == ["CONFLICT"] and "cannot reopen" in result["errors"][0]["message"]
    after = (await parties.hotline.gql(NOTICE, {"id": old["id"]}))["data"]["notice"]
    assert after["status"] == "REMOVED" and len(after["history"]) == 2
    async with pool.acquire() as conn:
        assert await conn.fetchval(events, old["id"]) == events_before == 2
    again = await act(parties.company, "acknowledge", newer["id"])
    assert again["data"]["result"]["status"] == "ACKNOWLEDGED", "the pool's connections are fine afterwards"


@pytest.mark.parametrize(
    ("steps", "who", "illegal"),
    [
        ([("company", "acknowledge")], "company", "acknowledge"),
        ([("company", "remove")], "company", "refuse"),
        ([], "hotline", "verify_offline"),
        ([], "hotline", "verify_online"),
        ([("company", "remove")], "police", "escalate"),
        ([("company", "refuse")], "company", "remove"),
        ([("company", "remove"), ("hotline", "verify_offline")], "hotline", "withdraw"),
        ([("hotline", "withdraw")], "hotline", "withdraw"),
        ([("hotline", "withdraw")], "company", "acknowledge"),
        ([("police", "escalate")], "police", "escalate"),
    ],
)
async def test_illegal_transitions_conflict_and_change_nothing(parties: Parties, steps, who: str, illegal: str) -> None:  # type: ignore[no-untyped-def]
    notice_id, before = await status_after(parties, steps)
    result = await act(getattr(parties, who), illegal, notice_id)
    assert error_codes(result) == ["CONFLICT"]
    assert "cannot be" in result["errors"][0]["message"]
    after = (await parties.hotline.gql(NOTICE, {"id": notice_id}))["data"]["notice"]
    assert (after["status"], after["version"], len(after["history"])) == (
        before["status"], before["version"], len(before["history"]))


async def test_stale_expected_version_conflicts(parties: Parties) -> None:
    notice = await report(parties.hotline, parties.provider)
    stale = await act(parties.company, "acknowledge", notice["id"], expectedVersion=2)
    assert error_codes(stale) == ["CONFLICT"] and "version 1" in stale["errors"][0]["message"]
    fresh = await act(parties.company, "acknowledge", notice["id"], expectedVersion=1)
    assert fresh["data"]["result"] == {"id": notice["id"], "status": "ACKNOWLEDGED", "version": 2}


async def test_preservation_flag(parties: Parties) -> None:
    notice = await report(parties.hotline, parties.provider)
    flagged = await act(parties.police, "preserve", notice["id"], note="keep logs for the case")
    assert flagged["data"]["result"]["version"] == 2
    again = await act(parties.prosecutor, "preserve", notice["id"])
    assert again["data"]["result"]["version"] == 2, "asking twice changes nothing"
    seen = (await parties.company.gql(NOTICE, {"id": notice["id"]}))["data"]["notice"]
    assert seen["preservationRequested"] is True
    assert len(seen["history"]) == 1, "the flag is not a status change"
    for who in ("company", "hotline", "regulator"):
        assert error_codes(await act(getattr(parties, who), "preserve", notice["id"])) == ["FORBIDDEN"]
    await act(parties.hotline, "withdraw", notice["id"])
    other = await report(parties.hotline, parties.provider)
    await act(parties.hotline, "withdraw", other["id"])
    assert error_codes(await act(parties.police, "preserve", other["id"])) == ["CONFLICT"]


@pytest.mark.parametrize(
    ("who", "action", "code"),
    [
        ("hotline", "acknowledge", "FORBIDDEN"),
        ("police", "remove", "FORBIDDEN"),
        ("regulator", "refuse", "FORBIDDEN"),
        ("government", "escalate", "FORBIDDEN"),
        ("company", "escalate", "FORBIDDEN"),
        ("company", "verify_offline", "FORBIDDEN"),
        ("police", "withdraw", "FORBIDDEN"),
        ("prosecutor", "withdraw", "FORBIDDEN"),
    ],
)
async def test_who_may_act(parties: Parties, who: str, action: str, code: str) -> None:
    notice = await report(parties.hotline, parties.provider)
    assert error_codes(await act(getattr(parties, who), action, notice["id"])) == [code]


async def test_acting_needs_the_analyst_role(parties: Parties, make: Factory) -> None:
    notice = await report(parties.hotline, parties.provider)
    reader = await make.member(K.COMPANY, Role.MEMBER, Role.ORG_ADMIN, organization=parties.provider)
    assert error_codes(await act(reader, "acknowledge", notice["id"])) == ["FORBIDDEN"]


async def test_another_company_cannot_even_see_the_notice(parties: Parties, make: Factory) -> None:
    notice = await report(parties.hotline, parties.provider)
    rival = await make.member(K.COMPANY, Role.ANALYST)
    assert error_codes(await act(rival, "acknowledge", notice["id"])) == ["NOT_FOUND"]
    assert (await rival.gql(NOTICE, {"id": notice["id"]}))["data"]["notice"] is None


async def test_concurrent_conflicting_actions_one_wins(parties: Parties) -> None:
    for _ in range(5):
        notice = await report(parties.hotline, parties.provider)
        outcomes = await asyncio.gather(
            act(parties.company, "remove", notice["id"]),
            act(parties.company, "refuse", notice["id"]),
            act(parties.hotline, "withdraw", notice["id"]),
        )
        won = [o for o in outcomes if "errors" not in o]
        lost = [o for o in outcomes if "errors" in o]
        # remove then withdraw is a legal sequence, so two may succeed; refuse and remove never both do.
        statuses = {o["data"]["result"]["status"] for o in won}
        assert not {"REMOVED", "REFUSED"} <= statuses
        assert all(error_codes(o) == ["CONFLICT"] for o in lost)
        final = (await parties.hotline.gql(NOTICE, {"id": notice["id"]}))["data"]["notice"]
        assert final["version"] == 1 + len(won)
        assert len(final["history"]) == 1 + len(won)


async def test_two_identical_concurrent_actions_only_one_applies(parties: Parties) -> None:
    notice = await report(parties.hotline, parties.provider)
    outcomes = await asyncio.gather(*(act(parties.company, "acknowledge", notice["id"]) for _ in range(4)))
    assert sorted("errors" in o for o in outcomes) == [False, True, True, True]
    final = (await parties.hotline.gql(NOTICE, {"id": notice["id"]}))["data"]["notice"]
    assert final["version"] == 2


@pytest.mark.parametrize(
    ("who_kind", "roles", "provider_kind", "code"),
    [
        (K.COMPANY, (Role.ANALYST,), K.COMPANY, "FORBIDDEN"),
        (K.REGULATOR, (Role.ANALYST,), K.COMPANY, "FORBIDDEN"),
        (K.HOTLINE, (Role.MEMBER,), K.COMPANY, "FORBIDDEN"),
        (K.POLICE, (Role.ANALYST,), K.HOTLINE, "BAD_USER_INPUT"),
    ],
)
async def test_who_may_report_and_to_whom(make: Factory, who_kind: K, roles, provider_kind: K, code: str) -> None:  # type: ignore[no-untyped-def]
    from tests.notices_helpers import REPORT, report_input

    reporter = await make.member(who_kind, *roles)
    provider = await make.organization(provider_kind)
    result = await reporter.gql(REPORT, {"i": report_input(provider)})
    assert error_codes(result) == [code]
    if code == "BAD_USER_INPUT":
        assert "must be a COMPANY" in result["errors"][0]["message"]
