"""GraphQL subscriptions and the paged events query: visibility, redaction, latency, resume, slow clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from api.app import create_app
from api.auth.keys import issue_token
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.protect import UrlProtector
from api.services import events as events_service
from api.settings import Settings
from tests.conftest import Factory, Member, unexpected_errors_logged
from tests.eventing import GraphQLWs, serve
from tests.notices_helpers import REPORT_MANY, act, report, report_input

EVENT_FIELDS = "id cursor type occurredAt actorKind notice { id status visibility contentHashes { value } reporter { id } provider { id } }"
SUBSCRIBE = f"subscription($after: String, $filter: EventFilter) {{ events(after: $after, filter: $filter) {{ {EVENT_FIELDS} }} }}"
PAGE = f"query($after: String, $first: Int, $filter: EventFilter) {{ events(after: $after, first: $first, filter: $filter) {{ edges {{ cursor node {{ {EVENT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
SHA = "ab" * 32
REGISTER_CLIENT = """mutation($org: ID!, $name: String!, $roles: [Role!]!) {
  registerApiClient(organizationId: $org, name: $name, roles: $roles) { clientSecret client { id clientId } } }"""
REVOKE_CLIENT = "mutation($id: ID!) { revokeApiClient(id: $id) { revokedAt } }"


@pytest.fixture(scope="module")
async def server(settings: Settings, relay: Any) -> AsyncIterator[str]:
    async with serve(create_app(settings)) as address:
        yield address


async def members(make: Factory) -> tuple[Member, Member, Member]:
    hotline = await make.member(K.HOTLINE, Role.ANALYST, Role.MEMBER)
    company = await make.member(K.COMPANY, Role.ANALYST, Role.MEMBER)
    prosecutor = await make.member(K.PROSECUTOR, Role.ANALYST, Role.MEMBER)
    return hotline, company, prosecutor


async def test_a_prosecutor_receives_each_event_within_a_second_of_the_commit(make: Factory, server: str) -> None:
    hotline, company, prosecutor = await members(make)
    async with GraphQLWs(server, prosecutor.token) as ws:
        await ws.subscribe(SUBSCRIBE, {"filter": {"providerIds": [company.org_id]}})
        # The subscription is live once a first event arrives (there is no "subscribed" message).
        await _warm_up(ws, hotline, company)
        delays = []
        for _ in range(5):
            notice = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": SHA}])
            returned = time.perf_counter()
            event = (await ws.events(1, timeout=5))[0]
            delays.append(time.perf_counter() - returned)
            assert event["type"] == "NOTICE_REPORTED" and event["notice"]["id"] == notice["id"]
            assert event["notice"]["visibility"] == "FULL" and event["notice"]["contentHashes"] == [{"value": SHA}]
            assert event["actorKind"] == "HOTLINE"
        assert max(delays) < 1.0, delays


async def test_a_company_never_receives_another_companys_notice_events(make: Factory, server: str) -> None:
    hotline, company, _ = await members(make)
    other = await make.organization(K.COMPANY)
    async with GraphQLWs(server, company.token) as ws:
        await ws.subscribe(SUBSCRIBE)
        first = await _warm_up(ws, hotline, company)
        foreign = [await report(hotline, other) for _ in range(3)]
        own = await report(hotline, company.organization)
        events = await ws.events(1)
        # Events arrive in commit order: had the others' come, they would have come first.
        assert events[0]["notice"]["id"] == own["id"]
        assert first["notice"]["provider"]["id"] == company.org_id
        assert not await ws.silence(0.5)

    page = await company.gql(PAGE, {"first": 100})
    assert "errors" not in page, page
    seen = {e["node"]["notice"]["id"] for e in page["data"]["events"]["edges"]}
    assert own["id"] in seen and not seen & {n["id"] for n in foreign}


async def test_resume_after_disconnect_yields_exactly_the_missed_events(make: Factory, server: str) -> None:
    hotline, company, prosecutor = await members(make)
    mine = {"providerIds": [company.org_id]}
    async with GraphQLWs(server, prosecutor.token) as ws:
        await ws.subscribe(SUBSCRIBE, {"filter": mine})
        first = await _warm_up(ws, hotline, company)
        warm = ws.ignored
    cursor = first["cursor"]

    missed = [await report(hotline, company.organization) for _ in range(3)]
    await act(company, "acknowledge", missed[0]["id"])

    async with GraphQLWs(server, prosecutor.token) as ws:
        ws.ignored = warm  # a warm-up notice slower than the first is not what this test counts
        await ws.subscribe(SUBSCRIBE, {"after": cursor, "filter": mine})
        replayed = await ws.events(4)
        assert [(e["type"], e["notice"]["id"]) for e in replayed] == [
            ("NOTICE_REPORTED", missed[0]["id"]),
            ("NOTICE_REPORTED", missed[1]["id"]),
            ("NOTICE_REPORTED", missed[2]["id"]),
            ("NOTICE_ACKNOWLEDGED", missed[0]["id"]),
        ]
        # The notice is resolved as it is now, not as it was when the event happened.
        assert replayed[0]["notice"]["status"] == "ACKNOWLEDGED"
        live = await report(hotline, company.organization)
        nxt = await ws.events(1)
        assert nxt[0]["notice"]["id"] == live["id"]
        assert not await ws.silence(0.5)  # no duplicate of anything replayed
    cursors = [e["cursor"] for e in replayed + nxt]
    assert len(set(cursors)) == len(cursors)

    # The paged query is the same stream.
    page = await prosecutor.gql(PAGE, {"after": cursor, "filter": mine, "first": 10})
    paged = [e["cursor"] for e in page["data"]["events"]["edges"] if e["node"]["notice"]["id"] not in warm]
    assert paged == cursors


async def test_a_slow_subscriber_is_cut_off_and_resumes_with_its_cursor(
    make: Factory, settings: Settings, relay: Any
) -> None:
    hotline, company, prosecutor = await members(make)
    mine = {"providerIds": [company.org_id]}
    async with serve(create_app(settings.with_overrides(subscription_buffer=2))) as address:
        async with GraphQLWs(address, prosecutor.token) as ws:
            await ws.subscribe(SUBSCRIBE, {"filter": mine})
            last = (await _warm_up(ws, hotline, company))["cursor"]
            burst = await hotline.gql(REPORT_MANY, {"i": [report_input(company.organization) for _ in range(200)]})
            ids = [r["notice"]["id"] for r in burst["data"]["reportNotices"]["results"]]
            received, last, error = await _until_ended(ws, last, close_code=4008, frames=300)
            assert error["extensions"]["code"] == "UNAVAILABLE"
            assert error["extensions"]["reason"] == "SLOW_CONSUMER"

        async with GraphQLWs(address, prosecutor.token) as ws:
            await ws.subscribe(SUBSCRIBE, {"after": last, "filter": mine})
            rest = await ws.events(len(ids) - len(received), timeout=60)
    assert received + [e["notice"]["id"] for e in rest] == ids


async def test_events_are_redacted_to_the_viewers_tier(make: Factory, relay: Any) -> None:
    hotline, company, _ = await members(make)
    regulator = await make.member(K.REGULATOR, Role.MEMBER)
    government = await make.member(K.GOVERNMENT, Role.MEMBER)
    notice = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": SHA}])
    mine = {"providerIds": [company.org_id], "types": ["NOTICE_REPORTED"]}
    tiers = {}
    for viewer in (company, regulator, government, hotline):
        page = await viewer.gql(PAGE, {"filter": mine, "first": 100})
        assert "errors" not in page, page
        found = [e["node"] for e in page["data"]["events"]["edges"] if e["node"]["notice"]["id"] == notice["id"]]
        assert len(found) == 1
        tiers[viewer.organization.kind] = found[0]["notice"]
    assert tiers[K.COMPANY]["contentHashes"] == [{"value": SHA}]
    assert tiers[K.REGULATOR]["visibility"] == "CASE" and tiers[K.REGULATOR]["contentHashes"] is None
    assert tiers[K.REGULATOR]["reporter"] is not None
    assert tiers[K.GOVERNMENT]["visibility"] == "STATUS" and tiers[K.GOVERNMENT]["reporter"] is None
    assert tiers[K.GOVERNMENT]["contentHashes"] is None


async def test_the_paged_query_walks_the_stream_in_order(make: Factory, relay: Any) -> None:
    hotline, company, prosecutor = await members(make)
    reported = [await report(hotline, company.organization) for _ in range(5)]
    mine = {"providerIds": [company.org_id]}
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = (await prosecutor.gql(PAGE, {"after": after, "first": 2, "filter": mine}))["data"]["events"]
        seen += [e["node"]["notice"]["id"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == [n["id"] for n in reported]
    node = await prosecutor.gql('query($id: ID!) { node(id: $id) { ... on Event { type notice { id } } } }', {"id": page["edges"][-1]["node"]["id"]})
    assert node["data"]["node"] == {"type": "NOTICE_REPORTED", "notice": {"id": reported[-1]["id"]}}
    other = await make.member(K.COMPANY, Role.MEMBER)
    assert (await other.gql('query($id: ID!) { node(id: $id) { id } }', {"id": page["edges"][-1]["node"]["id"]}))["data"]["node"] is None
    bad = await prosecutor.gql(PAGE, {"after": "not-a-cursor"})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def _warm_up(ws: GraphQLWs, hotline: Member, company: Member) -> dict[str, Any]:
    """Report until the (just subscribed) subscription delivers; returns the first event."""

    async def one() -> str:
        return str((await report(hotline, company.organization))["id"])

    return await ws.warm_up(one)


async def test_preservation_requests_are_not_delivered_below_the_case_tier(make: Factory, relay: Any) -> None:
    """The event type says what preservationRequested would, so STATUS-tier viewers do not get the event."""
    hotline, company, prosecutor = await members(make)
    notice = await report(hotline, company.organization)
    police = await make.member(K.POLICE, Role.ANALYST)
    await act(police, "preserve", notice["id"])
    kinds = {"providerIds": [company.org_id], "types": ["NOTICE_PRESERVATION_REQUESTED"]}

    async def preservation_events(viewer: Member) -> list[str]:
        page = await viewer.gql(PAGE, {"filter": kinds, "first": 100})
        assert "errors" not in page, page
        return [e["node"]["notice"]["id"] for e in page["data"]["events"]["edges"] if e["node"]["notice"]["id"] == notice["id"]]

    assert await preservation_events(prosecutor) == [notice["id"]]
    assert await preservation_events(company) == [notice["id"]]
    assert await preservation_events(await make.member(K.REGULATOR)) == [notice["id"]]
    assert await preservation_events(await make.member(K.GOVERNMENT)) == []
    assert await preservation_events(await make.member(K.HOTLINE)) == []


async def test_a_cursor_beyond_any_position_is_bad_input(make: Factory) -> None:
    prosecutor = await make.member(K.PROSECUTOR)
    import base64

    huge = base64.urlsafe_b64encode(b"event:99999999999999999999").decode()
    result = await prosecutor.gql(PAGE, {"after": huge})
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_feeds_end_when_the_hub_stops(settings: Settings) -> None:
    """A subscriber waiting on the live feed is released (and told to resume) when the process shuts down."""
    import asyncio

    from api.messaging.hub import FeedOverflow, LiveHub

    hub = LiveHub(settings, lambda: None)
    with hub.feed(None) as feed:
        waiting = asyncio.ensure_future(feed.get())
        await asyncio.sleep(0)
        await hub.stop()
        with pytest.raises(FeedOverflow):
            await asyncio.wait_for(waiting, 2)


async def _until_ended(ws: GraphQLWs, last: str, *, close_code: int, frames: int = 50) -> tuple[list[str], str, dict[str, Any]]:
    """Events until the subscription's error frame, which must carry the last cursor received; then it
    completes and the server closes the connection with `close_code`. Returns (notice ids, last cursor, error)."""
    received: list[str] = []
    for _ in range(frames):
        frame = await ws.frame(20)
        if frame["type"] == "next" and "errors" in frame["payload"]:
            error: dict[str, Any] = frame["payload"]["errors"][0]
            break
        assert frame["type"] == "next", frame
        received.append(frame["payload"]["data"]["events"]["notice"]["id"])
        last = frame["payload"]["data"]["events"]["cursor"]
    else:
        raise AssertionError(f"no error within {frames} frames")
    assert error["extensions"]["resumeAfter"] == last
    assert (await ws.frame(5))["type"] == "complete"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.frame(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code
    return received, last, error


async def test_a_subscription_ends_when_its_token_expires(make: Factory, settings: Settings, relay: Any) -> None:
    hotline, company, prosecutor = await members(make)
    short = issue_token(make.signing_key, settings, subject="short-lived", organization_id=str(prosecutor.organization.id),
                        roles=["ANALYST", "MEMBER"], ttl_seconds=6)
    issued = time.monotonic()
    async with serve(create_app(settings.with_overrides(jwt_leeway_seconds=0))) as address, GraphQLWs(address, short) as ws:
        await ws.subscribe(SUBSCRIBE, {"filter": {"providerIds": [company.org_id]}})
        last = (await _warm_up(ws, hotline, company))["cursor"]
        _, _, error = await _until_ended(ws, last, close_code=4401)
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "expired" in error["message"]
    assert 5.0 < time.monotonic() - issued < 15.0


async def test_a_subscription_ends_when_its_api_client_is_revoked(
    make: Factory, settings: Settings, relay: Any, org_admin: Member, client: httpx.AsyncClient
) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST, Role.MEMBER)
    registered = await org_admin.gql(REGISTER_CLIENT, {"org": org_admin.org_id, "name": "feed", "roles": ["MEMBER"]})
    payload = registered["data"]["registerApiClient"]
    grant = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(payload["client"]["clientId"], payload["clientSecret"]))
    async with serve(create_app(settings.with_overrides(subscription_recheck_seconds=0.3))) as address, \
            GraphQLWs(address, grant.json()["access_token"]) as ws:
        await ws.subscribe(SUBSCRIBE)
        last = (await _warm_up(ws, hotline, org_admin))["cursor"]
        revoked = await org_admin.gql(REVOKE_CLIENT, {"id": payload["client"]["id"]})
        assert revoked["data"]["revokeApiClient"]["revokedAt"] is not None
        _, _, error = await _until_ended(ws, last, close_code=4401)
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "revoked" in error["message"]


async def test_the_legacy_graphql_ws_protocol_is_not_spoken(server: str) -> None:
    """Only graphql-transport-ws, which refuses a second connection_init: the legacy protocol accepts
    one, and with it another viewer under the subscriptions already running."""
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-ws"]) as socket:  # type: ignore[list-item]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406, closed.value


async def test_an_operation_refused_before_it_runs_says_why_with_a_code(make: Factory, server: str) -> None:
    _, company, _ = await members(make)
    async with GraphQLWs(server, company.token) as ws:
        await ws.subscribe("subscription { events { nope } }")
        invalid = await ws.frame()
        await ws.subscribe("query A { me { subject } } query B { me { subject } }")
        unnamed = await ws.frame()
    assert invalid["type"] == unnamed["type"] == "error"
    assert [e["extensions"]["code"] for e in invalid["payload"]] == ["BAD_USER_INPUT"]
    assert "nope" in invalid["payload"][0]["message"]
    assert [(e["message"], e["extensions"]["code"]) for e in unnamed["payload"]] == \
        [("Must provide operation name if query contains multiple operations.", "BAD_USER_INPUT")]


async def first_answer(server: str, token: str, query: str) -> dict[str, Any]:
    """The first frame answering `query`, sent over a socket of its own."""
    async with GraphQLWs(server, token) as ws:
        await ws.subscribe(query)
        return await ws.frame()


async def test_an_unexpected_error_over_websocket_is_masked_and_logged(
    make: Factory, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As over HTTP: a client sees 'internal error' and a code, never the exception's own text."""
    hotline, company, _ = await members(make)
    await report(hotline, company.organization)

    def decrypt(*_: Any) -> str:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    monkeypatch.setattr(UrlProtector, "decrypt", decrypt)
    with unexpected_errors_logged() as logged:
        answer = await first_answer(server, hotline.token, "{ notices(first: 1) { edges { node { url } } } }")
    assert answer["type"] == "next", answer
    assert [(e["message"], e["extensions"]["code"]) for e in answer["payload"]["errors"]] == \
        [("internal error", "INTERNAL_SERVER_ERROR")]
    assert "hunter2" not in json.dumps(answer)
    assert len(logged) == 1 and "hunter2" in logged[0]


async def test_a_document_that_does_not_parse_closes_the_socket_saying_why(make: Factory, server: str) -> None:
    """graphql-transport-ws: a syntax error closes the socket with 4400 and the error."""
    _, company, _ = await members(make)
    async with GraphQLWs(server, company.token) as ws:
        await ws.subscribe("subscription { events { cursor }")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.frame()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    assert closed.value.rcvd.reason.startswith("Syntax Error")


@pytest.mark.parametrize("name", ["x" * 300, "\ud800"])
async def test_an_unknown_operation_name_closes_with_a_reason_that_fits(make: Factory, server: str, name: str) -> None:
    """A close frame has room for 123 bytes of UTF-8: a long name, or one UTF-8 cannot hold, is cut
    or escaped, not a crash that drops the connection."""
    _, company, _ = await members(make)
    with unexpected_errors_logged() as logged:
        async with GraphQLWs(server, company.token) as ws:
            await ws.socket.send(json.dumps({"id": "1", "type": "subscribe",
                                             "payload": {"query": "query A { me { subject } }", "operationName": name}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.frame()
    assert logged == [], "the client's mistake, not ours"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    assert closed.value.rcvd.reason.startswith("Unknown operation named")
    assert len(closed.value.rcvd.reason.encode()) <= 123


async def test_a_subscription_failing_mid_stream_is_masked_and_logged(
    make: Factory, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """strawberry wraps an exception from the subscription's source with no place in the document."""
    _, company, _ = await members(make)

    async def page(*_: Any, **__: Any) -> Any:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    monkeypatch.setattr(events_service, "page", page)
    with unexpected_errors_logged() as logged:
        answer = await first_answer(server, company.token, 'subscription { events(after: "ZXZlbnQ6MQ==") { cursor } }')
    assert "hunter2" not in json.dumps(answer)
    assert [(e["message"], e["extensions"]["code"]) for e in answer["payload"]["errors"]] == \
        [("internal error", "INTERNAL_SERVER_ERROR")]
    assert len(logged) == 1 and "hunter2" in logged[0]


@pytest.mark.parametrize("payload", [{"query": 5}, {"query": "{ me { subject } }", "variables": [1]},
                                     {"query": "{ me { subject } }", "operationName": 7}, "x"])
async def test_a_subscribe_message_that_is_no_operation_closes_with_4400(make: Factory, server: str, payload: Any) -> None:
    _, company, _ = await members(make)
    async with GraphQLWs(server, company.token) as ws:
        await ws.socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.frame()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    assert closed.value.rcvd.reason.startswith("Invalid subscribe payload")


async def test_an_empty_query_over_websocket_is_the_clients_mistake(make: Factory, server: str) -> None:
    _, company, _ = await members(make)
    with unexpected_errors_logged() as logged:
        answer = await first_answer(server, company.token, "")
    assert answer["type"] == "error" and [e["extensions"]["code"] for e in answer["payload"]] == ["BAD_USER_INPUT"]
    assert logged == []


async def test_a_subscribe_before_the_connection_is_acknowledged_closes_with_4401(server: str) -> None:
    """The protocol's own checks come first, whatever the payload."""
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": 5}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
