"""Webhooks: registration rules, signed CloudEvents, retries with backoff, isolation of slow endpoints."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from nats.js import api as js_api
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.domain.errors import BadUserInput
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.messaging.nats import ConsumerSpec
from api.protect import load_url_protector
from api.services import webhooks as service
from api.settings import Settings
from tests.conftest import Factory, Member, error_codes
from tests.eventing import Running, eventually, serve
from tests.notices_helpers import report
from workers.webhooks import WebhooksWorker, backoff, next_attempt

CREATE = """mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret webhook { id url eventTypes active } } }"""
LIST = "{ webhooks { id url eventTypes deliveries { eventId attempt responseStatus succeeded at } } }"
SHA = "cd" * 32


@dataclass
class Receiver:
    """An HTTP endpoint on loopback that records what it gets; /flaky fails twice, /slow hangs."""

    calls: dict[str, list[tuple[float, dict[str, str], bytes]]] = field(default_factory=dict)
    failures_left: int = 2

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            name = request.path_params["name"]
            body = await request.body()
            self.calls.setdefault(name, []).append((time.monotonic(), dict(request.headers), body))
            if name == "slow":
                await asyncio.sleep(10)
            if name.startswith("flaky") and self.failures_left > 0:
                self.failures_left -= 1
                return Response("try later", 500)
            return Response(status_code=204)

        return Starlette(routes=[Route("/{name}", hook, methods=["POST"])])


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with serve(found.app()) as address:
        yield found, f"http://{address}"


@pytest.fixture
async def worker(settings: Settings, pool: asyncpg.Pool, relay: Any) -> AsyncIterator[WebhooksWorker]:
    quick = settings.with_overrides(webhook_backoff_base_seconds=0.05, webhook_backoff_max_seconds=0.2, webhook_timeout_seconds=2.0)
    durable = f"webhooks-test-{secrets.token_hex(4)}"
    spec = ConsumerSpec(durable, ack_wait_seconds=10, deliver_policy=js_api.DeliverPolicy.NEW)
    async with httpx.AsyncClient() as http:
        found = WebhooksWorker(quick, pool, load_url_protector(quick), http, durable=durable, spec=spec)
        async with Running(found):
            await asyncio.wait_for(found.runner.ready.wait(), 30)
            yield found


async def admin_of(make: Factory, kind: K) -> Member:
    return await make.member(kind, Role.ORG_ADMIN, Role.ANALYST, Role.MEMBER)


async def create(member: Member, url: str, types: list[str], key: str | None = None) -> dict[str, Any]:
    result = await member.gql(CREATE, {"i": {"url": url, "eventTypes": types, "idempotencyKey": key}})
    assert "errors" not in result, result
    return result["data"]["createWebhook"]  # type: ignore[no-any-return]


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written out independently of the service."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(sig.partition(",")[2], expected) for sig in headers["webhook-signature"].split())


async def test_a_receiver_failing_twice_gets_the_event_with_a_valid_signature(
    make: Factory, worker: WebhooksWorker, receiver: tuple[Receiver, str]
) -> None:
    found, base = receiver
    found.failures_left = 2
    company = await admin_of(make, K.COMPANY)
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    created = await create(company, f"{base}/flaky-{company.organization.id}", ["NOTICE_REPORTED"])
    name = f"flaky-{company.organization.id}"
    notice = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": SHA}])

    async def delivered() -> bool:
        return len(found.calls.get(name, [])) >= 3

    await eventually(delivered, timeout=30)
    calls = found.calls[name]
    assert len({c[1]["webhook-id"] for c in calls}) == 1  # the same message id on every retry
    _, headers, body = calls[-1]
    assert verify(created["secret"], headers, body)
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, body)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["content-type"] == "application/cloudevents+json"
    event = json.loads(body)
    assert event["specversion"] == "1.0" and event["type"] == "nl.takedown.notice.reported.v1"
    assert event["id"] == headers["webhook-id"] and event["subject"] == notice["id"]
    assert event["data"]["noticeId"] == notice["id"]
    assert event["data"]["contentHashes"] == [{"algorithm": "SHA256", "value": SHA}]  # the provider sees FULL
    assert "url" not in event["data"]

    async def recorded() -> list[dict[str, Any]]:
        listed = await company.gql(LIST)
        return listed["data"]["webhooks"][0]["deliveries"]  # type: ignore[no-any-return]

    async def three() -> bool:
        return len(await recorded()) == 3

    await eventually(three, timeout=10)
    attempts = await recorded()
    assert [(a["attempt"], a["responseStatus"], a["succeeded"]) for a in attempts] == [(3, 204, True), (2, 500, False), (1, 500, False)]


async def test_a_slow_endpoint_holds_up_no_one_and_each_gets_only_what_it_may_see(
    make: Factory, worker: WebhooksWorker, receiver: tuple[Receiver, str]
) -> None:
    found, base = receiver
    company = await admin_of(make, K.COMPANY)
    other_company = await admin_of(make, K.COMPANY)
    other_hotline = await admin_of(make, K.HOTLINE)
    reporter = await make.member(K.HOTLINE, Role.ANALYST)
    await create(company, f"{base}/slow", ["NOTICE_REPORTED"])
    fast = f"fast-{other_hotline.organization.id}"
    await create(other_hotline, f"{base}/{fast}", ["NOTICE_REPORTED"])
    foreign = f"foreign-{other_company.organization.id}"
    await create(other_company, f"{base}/{foreign}", ["NOTICE_REPORTED"])

    notices = [await report(reporter, company.organization, contentHashes=[{"algorithm": "SHA256", "value": SHA}]) for _ in range(3)]
    started = time.monotonic()

    async def fast_done() -> bool:
        return len(found.calls.get(fast, [])) >= 3

    await eventually(fast_done, timeout=30)
    assert time.monotonic() - started < 10  # not waiting behind the slow endpoint's timeouts
    assert found.calls.get("slow"), "the slow endpoint was tried meanwhile"
    bodies = [json.loads(c[2]) for c in found.calls[fast]]
    assert {b["data"]["noticeId"] for b in bodies} == {n["id"] for n in notices}
    for body in bodies:  # another hotline sees STATUS: no hashes, no reporter
        assert "contentHashes" not in body["data"] and "reporterId" not in body["data"]
        assert "preservationRequested" not in body["data"]
    await asyncio.sleep(0.5)
    assert foreign not in found.calls  # another company's notices never reach it


async def test_registration_rules(make: Factory, settings: Settings, pool: asyncpg.Pool) -> None:
    admin = await admin_of(make, K.COMPANY)
    analyst = await make.member(K.COMPANY, Role.ANALYST, Role.MEMBER, organization=admin.organization)
    stranger = await admin_of(make, K.COMPANY)
    variables = {"i": {"url": "http://127.0.0.1:9/hook", "eventTypes": ["NOTICE_REPORTED"]}}
    assert error_codes(await analyst.gql(CREATE, variables)) == ["FORBIDDEN"]
    bad = {"i": {"url": "http://198.51.100.7/hook", "eventTypes": ["NOTICE_REPORTED"]}}
    assert error_codes(await admin.gql(CREATE, bad)) == ["BAD_USER_INPUT"]
    empty = {"i": {"url": "https://127.0.0.1/hook", "eventTypes": []}}
    assert error_codes(await admin.gql(CREATE, empty)) == ["BAD_USER_INPUT"]

    first = await create(admin, "https://127.0.0.1:9/hook", ["NOTICE_REPORTED", "NOTICE_OVERDUE"], key="k1")
    again = await create(admin, "https://127.0.0.1:9/hook", ["NOTICE_REPORTED", "NOTICE_OVERDUE"], key="k1")
    assert again == first and first["secret"].startswith("whsec_")
    assert first["webhook"]["eventTypes"] == ["NOTICE_REPORTED", "NOTICE_OVERDUE"]
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT secret_ciphertext FROM webhooks WHERE url = $1 AND organization_id = $2", "https://127.0.0.1:9/hook", admin.organization.id)
    assert first["secret"].encode() not in stored and base64.b64decode(first["secret"][6:]) not in stored

    listed = await admin.gql(LIST)
    assert [w["id"] for w in listed["data"]["webhooks"]] == [first["webhook"]["id"]]
    assert "secret" not in json.dumps(listed)
    assert error_codes(await analyst.gql(LIST)) == ["FORBIDDEN"]
    assert (await stranger.gql(LIST))["data"]["webhooks"] == []
    delete = "mutation($id: ID!) { deleteWebhook(id: $id) }"
    assert error_codes(await stranger.gql(delete, {"id": first["webhook"]["id"]})) == ["NOT_FOUND"]
    assert (await admin.gql(delete, {"id": first["webhook"]["id"]}))["data"]["deleteWebhook"] is True
    assert (await admin.gql(LIST))["data"]["webhooks"] == []


@pytest.mark.parametrize(
    "url, production, allowed",
    [
        ("https://8.8.8.8/hook", True, True),
        ("https://127.0.0.1/hook", True, False),
        ("https://10.1.2.3/hook", True, False),
        ("https://169.254.169.254/latest/meta-data", True, False),
        ("https://[::1]/hook", True, False),
        ("https://[::ffff:10.0.0.1]/hook", True, False),
        ("https://localhost/hook", True, False),
        ("http://127.0.0.1/hook", True, False),
        ("http://127.0.0.1:8080/hook", False, True),
        ("http://8.8.8.8/hook", False, False),
        ("https://user:pw@8.8.8.8/hook", True, False),
        ("ftp://8.8.8.8/hook", True, False),
        ("https://[64:ff9b::a00:1]/hook", True, False),  # NAT64 of 10.0.0.1
        ("https://[2002:a00:1::]/hook", True, False),  # 6to4 of 10.0.0.1
        ("https://[::a00:1]/hook", True, False),  # IPv4-compatible 10.0.0.1
        ("https://..example/hook", False, False),  # an empty label
        ("https://" + "a" * 64 + ".example/hook", False, False),  # a label longer than 63
    ],
)
async def test_webhook_urls_cannot_reach_private_addresses_in_production(url: str, production: bool, allowed: bool) -> None:
    if allowed:
        assert await service.check_url(url, production=production) == url
    else:
        with pytest.raises(BadUserInput):
            await service.check_url(url, production=production)


def test_retries_last_at_least_a_day_with_capped_jittered_backoff(settings: Settings) -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    now, attempt = first, 1
    delays = []
    while (later := next_attempt(attempt, first, now, settings)) is not None:
        delays.append(later - now)
        now, attempt = later, attempt + 1
        assert attempt < 200
    assert now - first >= timedelta(hours=24)
    assert max(delays) <= timedelta(seconds=settings.webhook_backoff_max_seconds)
    assert delays[1] > delays[0] or delays[2] > delays[0]  # growing
    low = backoff(3, settings, rng=lambda: 0.0)
    high = backoff(3, settings, rng=lambda: 1.0)
    assert low == high / 2 and high == timedelta(seconds=settings.webhook_backoff_base_seconds * 4)


def test_signatures_follow_standard_webhooks() -> None:
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = service.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_deliveries_connect_to_the_address_that_was_checked() -> None:
    """No DNS-rebinding window: the request goes to the checked IP, with the name kept for Host and TLS."""
    target = await service.pinned_target("https://8.8.8.8:8443/hook?x=1", production=True)
    assert target.url == "https://8.8.8.8:8443/hook?x=1"
    named = await service.pinned_target("http://localhost:8080/hook", production=False)
    assert named.url.startswith(("http://127.0.0.1:8080/hook", "http://[::1]:8080/hook"))
    assert named.host_header == "localhost:8080" and named.sni_hostname is None


async def test_a_delivery_page_outside_1_to_200_is_bad_input(make: Factory) -> None:
    admin = await admin_of(make, K.COMPANY)
    created = await admin.gql(CREATE, {"i": {"url": "http://127.0.0.1:9/hook", "eventTypes": ["NOTICE_REPORTED"]}})
    assert "errors" not in created, created
    for first in (0, -5, 201):
        result = await admin.gql(f"{{ webhooks {{ deliveries(first: {first}) {{ attempt }} }} }}")
        assert error_codes(result) == ["BAD_USER_INPUT"], (first, result)
    assert "errors" not in await admin.gql("{ webhooks { deliveries(first: 200) { attempt } } }")
