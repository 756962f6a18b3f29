"""Victim alerts: held by police or a hotline, seen by the holder alone, matched when content is taken down."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from nats.js import api as js_api
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.app import create_app
from api.domain.ids import from_global_id, to_global_id, uuid7
from api.domain.notices import hamming
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.domain.victim_alerts import VictimAlert, clean_alert_hashes
from api.messaging.nats import ConsumerSpec
from api.protect import load_url_protector
from api.services import victim_alerts as alerts_service
from api.store import victim_alerts as alerts_store
from tests.conftest import Factory, Member, error_codes
from tests.eventing import GraphQLWs, Running, eventually, serve
from tests.notices_helpers import act, report
from workers import victim_alerts as matcher
from workers.webhooks import WebhooksWorker

A = Role.ANALYST
ALERT_FIELDS = "id victimToken createdAt cancelledAt contentHashes { algorithm value } matches { at removed notice { id status visibility } }"
REGISTER = f"mutation($i: RegisterVictimAlertInput!) {{ r: registerVictimAlert(input: $i) {{ {ALERT_FIELDS} }} }}"
CANCEL = f"mutation($id: ID!) {{ r: cancelVictimAlert(id: $id) {{ {ALERT_FIELDS} }} }}"
ALERTS = f"{{ r: victimAlerts {{ {ALERT_FIELDS} }} }}"
NODE = f"query($id: ID!) {{ r: node(id: $id) {{ ... on VictimAlert {{ {ALERT_FIELDS} }} }} }}"


def ok(result: dict[str, Any]) -> Any:
    assert "errors" not in result, result
    return result["data"]["r"]


def flip(value: str, bits: int) -> str:
    """The hash with its lowest `bits` bits inverted: exactly that Hamming distance away."""
    return f"{int(value, 16) ^ ((1 << bits) - 1):064x}"


def pdq() -> str:
    return secrets.token_hex(32)


async def register(member: Member, *hashes: tuple[str, str], token: str = "victim-7f3a", **extra: Any) -> dict[str, Any]:
    given = {"victimToken": token, "contentHashes": [{"algorithm": a, "value": v} for a, v in hashes], **extra}
    return ok(await member.gql(REGISTER, {"i": given}))  # type: ignore[no-any-return]


async def removal_envelopes(pool: asyncpg.Pool, notice_id: str, name: str = "removed") -> list[dict[str, Any]]:
    _, key = from_global_id(notice_id)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT envelope FROM events WHERE aggregate_id = $1 AND subject LIKE 'td.notice.' || $2 || '.%' ORDER BY seq", key, name
        )
    return [r["envelope"] for r in rows]


async def matched_events(pool: asyncpg.Pool, alert_id: str) -> list[asyncpg.Record]:
    _, key = from_global_id(alert_id)
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT subject, envelope FROM events WHERE aggregate_id = $1 ORDER BY seq", key)


async def test_register_read_cancel_by_the_holder_alone(make: Factory, pool: asyncpg.Pool) -> None:
    police = await make.member(K.POLICE, A)
    value = pdq()
    alert = await register(police, ("PDQ", value.upper()), ("SHA256", "ab" * 32), token="  case 2018-0042 / v3  ")
    assert alert["victimToken"] == "case 2018-0042 / v3" and alert["cancelledAt"] is None and alert["matches"] == []
    assert sorted((h["algorithm"], h["value"]) for h in alert["contentHashes"]) == [("PDQ", value), ("SHA256", "ab" * 32)]
    colleague = await make.member(K.POLICE, Role.MEMBER, organization=police.organization)
    assert [a["id"] for a in ok(await colleague.gql(ALERTS))] == [alert["id"]], "every member of the holder reads it"
    assert ok(await colleague.gql(NODE, {"id": alert["id"]}))["victimToken"] == "case 2018-0042 / v3"

    for kind in K:
        other = await make.member(kind, A, Role.ORG_ADMIN, Role.ORGANIZER)
        assert ok(await other.gql(ALERTS)) == [], kind
        assert ok(await other.gql(NODE, {"id": alert["id"]})) is None, kind
        assert error_codes(await other.gql(CANCEL, {"id": alert["id"]})) == ["NOT_FOUND"], kind

    assert error_codes(await colleague.gql(CANCEL, {"id": alert["id"]})) == ["FORBIDDEN"], "cancelling takes an ANALYST"
    cancelled = ok(await police.gql(CANCEL, {"id": alert["id"]}))
    assert cancelled["cancelledAt"] is not None
    assert error_codes(await police.gql(CANCEL, {"id": alert["id"]})) == ["CONFLICT"]

    _, key = from_global_id(alert["id"])
    async with pool.acquire() as conn:
        stored = await conn.fetchrow("SELECT token_ciphertext FROM victim_alerts WHERE id = $1", key)
    assert b"case 2018-0042" not in bytes(stored["token_ciphertext"]), "the token is encrypted at rest"


@pytest.mark.parametrize(
    ("kind", "roles", "allowed"),
    [
        (K.POLICE, (A,), True),
        (K.HOTLINE, (A,), True),
        (K.POLICE, (Role.MEMBER, Role.ORG_ADMIN), False),
        (K.PROSECUTOR, (A,), False),
        (K.REGULATOR, (A,), False),
        (K.GOVERNMENT, (A, Role.ORGANIZER, Role.PLATFORM_ADMIN), False),
        (K.COMPANY, (A,), False),
    ],
)
async def test_who_may_register(make: Factory, kind: K, roles: tuple[Role, ...], allowed: bool) -> None:
    member = await make.member(kind, *roles)
    given = {"victimToken": "t-1", "contentHashes": [{"algorithm": "MD5", "value": "0" * 32}]}
    result = await member.gql(REGISTER, {"i": given})
    assert error_codes(result) == ([] if allowed else ["FORBIDDEN"])


async def test_input_is_checked_and_keys_are_idempotent(make: Factory) -> None:
    hotline = await make.member(K.HOTLINE, A)
    bad = [
        {"victimToken": "t", "contentHashes": []},
        {"victimToken": "   ", "contentHashes": [{"algorithm": "MD5", "value": "0" * 32}]},
        {"victimToken": "t", "contentHashes": [{"algorithm": "PDQ", "value": "xyz"}]},
        {"victimToken": "t" * 201, "contentHashes": [{"algorithm": "MD5", "value": "0" * 32}]},
    ]
    for given in bad:
        assert error_codes(await hotline.gql(REGISTER, {"i": given})) == ["BAD_USER_INPUT"], given
    first = await register(hotline, ("MD5", "1" * 32), idempotencyKey="alert-1")
    again = await register(hotline, ("MD5", "1" * 32), idempotencyKey="alert-1")
    assert first["id"] == again["id"] and len(ok(await hotline.gql(ALERTS))) == 1


async def test_removal_matches_exact_hashes_and_pdq_within_31_bits(make: Factory, pool: asyncpg.Pool) -> None:
    police = await make.member(K.POLICE, A)
    hotline = await make.member(K.HOTLINE, A)
    company = await make.member(K.COMPANY, A)
    base, sha = pdq(), secrets.token_hex(32)
    near, far = flip(base, 31), flip(base, 32)
    assert (hamming(base, near), hamming(base, far)) == (31, 32)

    alert = await register(police, ("PDQ", base), ("SHA256", sha), token="tok-police-1")
    other_alert = await register(hotline, ("SHA256", sha), token="tok-hotline-1")
    cancelled = await register(police, ("SHA256", sha), token="tok-police-cancelled")
    ok(await police.gql(CANCEL, {"id": cancelled["id"]}))

    at_31 = await report(hotline, company.organization, contentHashes=[{"algorithm": "PDQ", "value": near}])
    at_32 = await report(hotline, company.organization, contentHashes=[{"algorithm": "PDQ", "value": far}])
    exact = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": sha}])
    other_md5 = await report(hotline, company.organization, contentHashes=[{"algorithm": "MD5", "value": sha[:32]}])
    for notice in (at_31, at_32, exact, other_md5):
        assert "errors" not in await act(company, "remove", notice["id"])

    # A reported (not removed) notice's event matches nothing.
    reported_envelope = (await removal_envelopes(pool, exact["id"], "reported"))[0]
    assert await matcher.handle(pool, reported_envelope) == 0

    new = 0
    for notice in (at_31, at_32, exact, other_md5):
        for envelope in await removal_envelopes(pool, notice["id"]):
            new += await matcher.handle(pool, envelope)
    assert new == 3, "police: PDQ at 31 and SHA256; hotline: SHA256; nothing at 32 bits, nothing for the cancelled alert"
    async with pool.acquire() as conn:  # the platform's matches are on the record, one per alert told
        audited = await conn.fetch(
            "SELECT object_id, subject FROM audit_log WHERE action = 'victim_alert.match' AND object_id = ANY($1::text[])",
            [alert["id"], other_alert["id"], cancelled["id"]])
    assert sorted(r["object_id"] for r in audited) == sorted([alert["id"], alert["id"], other_alert["id"]])
    assert {r["subject"] for r in audited} == {"platform"}

    # Handling the same events again records and emits nothing (the unique (alert, notice) key).
    async with pool.acquire() as conn:
        for notice in (at_31, exact):
            for envelope in await removal_envelopes(pool, notice["id"]):
                assert await matcher.handle(conn, envelope) == 0

    seen = ok(await police.gql(NODE, {"id": alert["id"]}))
    assert sorted(m["notice"]["id"] for m in seen["matches"]) == sorted([at_31["id"], exact["id"]])
    assert all(m["removed"] and m["notice"]["status"] == "REMOVED" and m["notice"]["visibility"] == "FULL" for m in seen["matches"])
    assert [m["notice"]["id"] for m in ok(await hotline.gql(NODE, {"id": other_alert["id"]}))["matches"]] == [exact["id"]]
    assert ok(await police.gql(NODE, {"id": cancelled["id"]}))["matches"] == []

    police_events = await matched_events(pool, alert["id"])
    holder = str(police.organization.id)
    assert [r["subject"] for r in police_events] == [f"td.victim_alert.matched.{holder}"] * 2
    hotline_events = await matched_events(pool, other_alert["id"])
    assert [r["subject"] for r in hotline_events] == [f"td.victim_alert.matched.{hotline.organization.id}"]
    for record in police_events + hotline_events:
        envelope = record["envelope"]
        text = str(envelope)
        assert envelope["type"] == "nl.takedown.victim_alert.matched.v1"
        assert "tok-" not in text and sha not in text and base not in text and near not in text
        assert set(envelope["data"]) == {"victimAlertId", "noticeId", "matchedAt", "removed"}
    assert {r["envelope"]["data"]["noticeId"] for r in police_events} == {at_31["id"], exact["id"]}


async def test_verified_offline_matches_too_and_only_once(make: Factory, pool: asyncpg.Pool) -> None:
    police = await make.member(K.POLICE, A)
    company = await make.member(K.COMPANY, A)
    md5 = secrets.token_hex(16)
    alert = await register(police, ("MD5", md5))
    notice = await report(police, company.organization, contentHashes=[{"algorithm": "MD5", "value": md5}])
    assert "errors" not in await act(company, "remove", notice["id"])
    assert "errors" not in await act(police, "verify_offline", notice["id"])
    verified = await removal_envelopes(pool, notice["id"], "verified")
    assert verified and verified[0]["data"]["status"] == "VERIFIED_OFFLINE"
    assert await matcher.handle(pool, verified[0]) == 1
    assert await matcher.handle(pool, (await removal_envelopes(pool, notice["id"]))[0]) == 0
    assert len(await matched_events(pool, alert["id"])) == 1


def test_the_worker_listens_to_removals_only() -> None:
    removed = "nl.takedown.notice.removed.v1"
    notice = to_global_id("Notice", UUID(int=1))
    assert matcher._notice_id({"type": removed, "data": {"status": "REMOVED", "noticeId": notice}}) == UUID(int=1)
    acknowledged = {"type": "nl.takedown.notice.acknowledged.v1", "data": {"status": "ACKNOWLEDGED", "noticeId": notice}}
    assert matcher._notice_id(acknowledged) is None
    reappeared = {"type": "nl.takedown.notice.reappeared.v1", "data": {"status": "NOTIFIED", "noticeId": notice}}
    assert matcher._notice_id(reappeared) is None
    junk = {"type": removed, "data": {"status": "REMOVED", "noticeId": to_global_id("Organization", UUID(int=1))}}
    assert matcher._notice_id(junk) is None
    assert matcher._notice_id({"type": removed, "data": {"status": "REMOVED", "noticeId": "%%%"}}) is None
    preserved = {"type": "nl.takedown.notice.preservation_requested.v1", "data": {"status": "REMOVED", "noticeId": notice}}
    assert matcher._notice_id(preserved) is None, "only the removal and verification events"


# ------------------------------------------------------- delivery end to end


@pytest.fixture
async def delivery(settings: Any, pool: asyncpg.Pool, relay: Any) -> AsyncIterator[tuple[str, Receiver, str]]:
    """A live API server (subscriptions), the matcher and webhooks workers, a loopback receiver; on the session relay."""
    receiver = Receiver()
    spec = ConsumerSpec(f"va-webhooks-{secrets.token_hex(4)}", ack_wait_seconds=10, deliver_policy=js_api.DeliverPolicy.NEW)
    async with serve(receiver.app()) as hooks, serve(create_app(settings)) as server, httpx.AsyncClient() as http:
        worker = WebhooksWorker(settings, pool, load_url_protector(settings), http, durable=spec.durable, spec=spec)
        matching = matcher.VictimAlertsWorker(
            settings,
            pool,
            spec=ConsumerSpec(
                f"va-matcher-{secrets.token_hex(4)}",
                filter_subject=matcher.CONSUMER_FILTER,
                ack_wait_seconds=10,
                deliver_policy=js_api.DeliverPolicy.NEW,
            ),
        )
        async with Running(worker), Running(matching):
            await asyncio.wait_for(worker.runner.ready.wait(), 30)
            await asyncio.wait_for(matching.runner.ready.wait(), 30)
            yield server, receiver, f"http://{hooks}"


@dataclass
class Receiver:
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.calls.setdefault(request.path_params["name"], []).append(json.loads(await request.body()))
            return Response(status_code=204)

        return Starlette(routes=[Route("/{name}", hook, methods=["POST"])])


SUBSCRIBE = """subscription($f: EventFilter) { events(filter: $f) {
  type notice { id } victimAlert { id victimToken contentHashes { value } } } }"""
CREATE_WEBHOOK = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }"


async def live(ws: GraphQLWs, reporter: Member, provider: Member) -> None:
    await ws.subscribe(SUBSCRIBE, {"f": {"types": ["NOTICE_REPORTED", "VICTIM_ALERT_MATCHED"]}})
    for _ in range(50):  # there is no "subscribed" message: live once a first event arrives
        await report(reporter, provider.organization)
        try:
            await ws.events(1, timeout=1.0)
            return
        except (TimeoutError, AssertionError):
            continue
    raise AssertionError("the subscription never went live")


async def test_a_match_reaches_its_organization_alone_by_subscription_and_webhook(
    make: Factory, pool: asyncpg.Pool, delivery: tuple[str, Receiver, str]
) -> None:
    server, receiver, hooks = delivery
    holder = await make.member(K.POLICE, A, Role.ORG_ADMIN)
    other_police = await make.member(K.POLICE, A, Role.ORG_ADMIN)
    company = await make.member(K.COMPANY, A, Role.ORG_ADMIN)
    for member, name in ((holder, "holder"), (other_police, "other"), (company, "company")):
        given = {"url": f"{hooks}/{name}-{member.organization.id}", "eventTypes": ["VICTIM_ALERT_MATCHED"]}
        assert "errors" not in await member.gql(CREATE_WEBHOOK, {"i": given})
    sha = secrets.token_hex(32)
    alert = await register(holder, ("SHA256", sha), token="tok-e2e-41")

    async with GraphQLWs(server, holder.token) as mine, GraphQLWs(server, other_police.token) as theirs:
        await live(mine, holder, company)
        await live(theirs, holder, company)
        notice = await report(holder, company.organization, contentHashes=[{"algorithm": "SHA256", "value": sha}])
        assert "errors" not in await act(company, "remove", notice["id"])  # relay -> JetStream -> the matcher

        got: dict[str, Any] | None = None
        for _ in range(60):  # late warm-up reports may still arrive first
            event = (await mine.events(1, timeout=10))[0]
            if event["type"] == "VICTIM_ALERT_MATCHED":
                got = event
                break
        assert got is not None
        assert got["notice"]["id"] == notice["id"]
        assert got["victimAlert"] == {"id": alert["id"], "victimToken": "tok-e2e-41", "contentHashes": [{"value": sha}]}
        others = await theirs.silence(1.0)
        assert all(f.get("payload", {}).get("data", {}).get("events", {}).get("type") != "VICTIM_ALERT_MATCHED" for f in others)

    holder_hook = f"holder-{holder.organization.id}"

    async def delivered() -> bool:
        return bool(receiver.calls.get(holder_hook))

    await eventually(delivered, timeout=30)
    body = receiver.calls[holder_hook][0]
    assert body["type"] == "nl.takedown.victim_alert.matched.v1" and body["data"]["noticeId"] == notice["id"]
    assert "tok-e2e" not in json.dumps(body) and sha not in json.dumps(body)
    await asyncio.sleep(0.5)
    assert set(receiver.calls) == {holder_hook}, "no other organization's webhook is called"


async def test_an_alert_registered_after_the_removal_is_matched_at_once(make: Factory, pool: asyncpg.Pool) -> None:
    """The victim is told even when the content came down before the alert existed."""
    police = await make.member(K.POLICE, A)
    hotline = await make.member(K.HOTLINE, A)
    company = await make.member(K.COMPANY, A)
    base, sha = pdq(), secrets.token_hex(32)
    removed_pdq = await report(hotline, company.organization, contentHashes=[{"algorithm": "PDQ", "value": flip(base, 31)}])
    removed_far = await report(hotline, company.organization, contentHashes=[{"algorithm": "PDQ", "value": flip(base, 32)}])
    verified = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": sha}])
    still_up = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": sha}],
                            url="https://other.example-host.test/still-up.jpg")
    for notice in (removed_pdq, removed_far, verified):
        assert "errors" not in await act(company, "remove", notice["id"])
    assert "errors" not in await act(hotline, "verify_offline", verified["id"])

    alert = await register(police, ("PDQ", base), ("SHA256", sha), token="tok-late", idempotencyKey="late-1")
    assert sorted(m["notice"]["id"] for m in alert["matches"]) == sorted([removed_pdq["id"], verified["id"]])
    events = await matched_events(pool, alert["id"])
    assert sorted(r["envelope"]["data"]["noticeId"] for r in events) == sorted([removed_pdq["id"], verified["id"]])
    assert {r["subject"] for r in events} == {f"td.victim_alert.matched.{police.organization.id}"}
    async with pool.acquire() as conn:  # what the holder learnt at once is on the record
        audited = await conn.fetch("SELECT object_id FROM audit_log WHERE action = 'victim_alert.match' AND organization_id = $1",
                                   police.organization.id)
    assert sorted(r["object_id"] for r in audited) == sorted([removed_pdq["id"], verified["id"]])

    # Registering again with the same key changes nothing; the notice still online matches when it comes down.
    again = await register(police, ("PDQ", base), ("SHA256", sha), token="tok-late", idempotencyKey="late-1")
    assert again["id"] == alert["id"] and len(await matched_events(pool, alert["id"])) == 2
    assert "errors" not in await act(company, "remove", still_up["id"])
    assert await matcher.handle(pool, (await removal_envelopes(pool, still_up["id"]))[0]) == 1
    assert len(await matched_events(pool, alert["id"])) == 3


async def test_a_removal_committed_while_an_alert_is_being_registered_is_still_matched(
    make: Factory, pool: asyncpg.Pool
) -> None:
    """The registration's backfill query runs before the removal commits; the removal's matcher would
    run before the registration commits. The matching lock makes the matcher wait and then see the alert."""
    police = await make.member(K.POLICE, A)
    hotline = await make.member(K.HOTLINE, A)
    company = await make.member(K.COMPANY, A)
    sha = secrets.token_hex(32)
    notice = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": sha}])
    now = datetime.now(UTC)
    alert = VictimAlert(uuid7(), police.organization.id, b"x", "k", now, None)

    async def remove_then_match() -> None:
        assert "errors" not in await act(company, "remove", notice["id"])
        await matcher.handle(pool, (await removal_envelopes(pool, notice["id"]))[0])

    async with pool.acquire() as registering:
        tx = registering.transaction()
        await tx.start()
        await alerts_store.insert(registering, alert, clean_alert_hashes([("SHA256", sha)]))
        assert await alerts_service._match_already_removed(registering, alert, now=now) == []  # not removed yet
        removal = asyncio.create_task(remove_then_match())
        done, _ = await asyncio.wait([removal], timeout=1.0)
        assert not done, "the matcher waits for the registration to commit"
        await tx.commit()
    await asyncio.wait_for(removal, 20)
    async with pool.acquire() as conn:
        matches = await conn.fetchval("SELECT count(*) FROM victim_alert_matches WHERE alert_id = $1", alert.id)
    assert matches == 1
