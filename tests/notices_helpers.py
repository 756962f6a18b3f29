"""Shared GraphQL documents and a small factory for notice tests."""

from __future__ import annotations

import secrets
from typing import Any

from api.domain.ids import to_global_id
from api.domain.organizations import Organization
from tests.conftest import Member

NOTICE_FIELDS = """
    id reference status category visibility url version overdue dueAt reportedAt acknowledgedAt removedAt
    secondsToRemoval refusalReason preservationRequested
    provider { id } reporter { id }
    contentHashes { algorithm value }
    relatedNotices { id }
    history { fromStatus toStatus actorKind note }
"""
REPORT = f"mutation($i: ReportNoticeInput!) {{ reportNotice(input: $i) {{ deduplicated notice {{ {NOTICE_FIELDS} }} }} }}"
REPORT_MANY = "mutation($i: [ReportNoticeInput!]!) { reportNotices(inputs: $i) { results { deduplicated notice { id reference } } } }"
NOTICE = f"query($id: ID!) {{ notice(id: $id) {{ {NOTICE_FIELDS} }} }}"
ACTIONS = {
    "acknowledge": "acknowledgeNotice(input: $i)",
    "remove": "markNoticeRemoved(input: $i)",
    "refuse": "refuseNotice(input: $i, reason: NOT_ILLEGAL)",
    "verify_offline": "verifyNotice(input: $i, outcome: OFFLINE)",
    "verify_online": "verifyNotice(input: $i, outcome: STILL_ONLINE)",
    "escalate": "escalateNotice(input: $i)",
    "withdraw": "withdrawNotice(input: $i)",
    "preserve": "requestPreservation(input: $i)",
}


def unique_url() -> str:
    return f"https://files.example-host.test/{secrets.token_hex(6)}/image.jpg"


def report_input(provider: Organization, **overrides: Any) -> dict[str, Any]:
    given: dict[str, Any] = {
        "providerId": to_global_id("Organization", provider.id),
        "url": unique_url(),
        "category": "BASELINE_CSAM",
    }
    given.update(overrides)
    return given


async def report(reporter: Member, provider: Organization, **overrides: Any) -> dict[str, Any]:
    result = await reporter.gql(REPORT, {"i": report_input(provider, **overrides)})
    assert "errors" not in result, result
    return result["data"]["reportNotice"]["notice"]  # type: ignore[no-any-return]


async def act(member: Member, action: str, notice_id: str, **extra: Any) -> dict[str, Any]:
    document = f"mutation($i: NoticeActionInput!) {{ result: {ACTIONS[action]} {{ id status version }} }}"
    return await member.gql(document, {"i": {"noticeId": notice_id, **extra}})
