"""/graphql over HTTP: a POST of one JSON operation is answered by GraphQLView.answer, everything
else by strawberry's own view (api/graphql/view.py). Whichever answers, a request gets the same
status, content type and body; what strawberry would answer with a 500 gets a 400 that says why."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.graphql.view import GraphQLEndpoint, is_one_operation, is_plain_json
from api.services.viewers import authenticate
from api.settings import Settings
from tests.conftest import Factory, Member, app_client

ME = "{ me { subject organization { name } } }"
REPORT = """mutation($i: ReportNoticeInput!) { reportNotice(input: $i) { deduplicated notice { status } } }"""


def report_input(member: Member, url: str) -> dict[str, Any]:
    return {"providerId": member.org_id, "url": url, "category": "BASELINE_CSAM",
            "contentHashes": [{"algorithm": "SHA256", "value": "ab" * 32}]}


class Sides:
    """The same app, asked through its gate as clients ask it, and through the gate into strawberry's
    view only (the path every request took before GraphQLView.answer)."""

    def __init__(self, app: httpx.AsyncClient, endpoint: GraphQLEndpoint) -> None:
        self.app = app
        self.view_only = httpx.AsyncClient(transport=httpx.ASGITransport(app=self._view_only(endpoint)),
                                           base_url="http://localhost")

    @staticmethod
    def _view_only(endpoint: GraphQLEndpoint) -> Any:
        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            resources = endpoint.resources
            request = Request(scope, receive)
            scope["viewer"] = await authenticate(resources.db, resources.verifier, request.headers.get("authorization"),
                                                 resources.organizations)
            await endpoint.view(scope, receive, send)
        return asgi

    async def both(self, member: Member, body: bytes, **headers: str) -> tuple[httpx.Response, httpx.Response]:
        sent = {"content-type": "application/json", **member.headers, **headers}
        return (await self.app.post("/graphql", content=body, headers=sent),
                await self.view_only.post("/graphql", content=body, headers=sent))


@pytest.fixture
async def sides(settings: Settings) -> AsyncIterator[Sides]:
    async with app_client(settings) as http:
        endpoint = next(r.app for r in http._transport.app.routes  # type: ignore[attr-defined]
                        if getattr(r, "path", None) == "/graphql" and isinstance(r.app, GraphQLEndpoint))
        s = Sides(http, endpoint)
        yield s
        await s.view_only.aclose()


@pytest.fixture
async def hotline(make: Factory) -> Member:
    return await make.member(K.HOTLINE, Role.ANALYST, Role.MEMBER)


def same(answers: tuple[httpx.Response, httpx.Response]) -> httpx.Response:
    direct, view = answers
    assert (direct.status_code, direct.headers["content-type"], direct.text) == \
        (view.status_code, view.headers["content-type"], view.text)
    return direct


async def test_a_query_is_answered_as_strawberrys_view_answers_it(sides: Sides, hotline: Member) -> None:
    answer = same(await sides.both(hotline, json.dumps({"query": ME}).encode()))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["data"]["me"]["organization"]["name"] == hotline.organization.name


async def test_a_mutation_runs_once_and_answers_as_the_view_does(sides: Sides, hotline: Member, make: Factory) -> None:
    company = await make.member(K.COMPANY, Role.MEMBER)
    # The same URL twice: the second report (through the other side) is the first one's duplicate.
    body = json.dumps({"query": REPORT, "variables": {"i": report_input(company, "https://example.org/twice.jpg")}})
    direct, view = await sides.both(hotline, body.encode())
    assert direct.json()["data"]["reportNotice"] == {"deduplicated": False, "notice": {"status": "NOTIFIED"}}
    assert view.json()["data"]["reportNotice"] == {"deduplicated": True, "notice": {"status": "NOTIFIED"}}


@pytest.mark.parametrize("operation", [
    pytest.param({"query": "{ me { nope } }"}, id="invalid field"),
    pytest.param({"query": "{ me "}, id="syntax error"),
    pytest.param({"query": REPORT, "variables": {"i": {"url": 5}}}, id="variables of the wrong type"),
    pytest.param({"query": "query A { me { subject } }", "operationName": "B"}, id="unknown operation name"),
    pytest.param({"query": ""}, id="empty query"),
    pytest.param({"query": None}, id="null query"),
    pytest.param({}, id="no query"),
    pytest.param({"query": ME, "variables": [1]}, id="variables a list"),
    pytest.param({"query": ME, "extensions": "x"}, id="extensions a string"),
    pytest.param([{"query": ME}], id="a batch"),
])
async def test_errors_are_answered_as_strawberrys_view_answers_them(
    sides: Sides, hotline: Member, operation: object
) -> None:
    answer = same(await sides.both(hotline, json.dumps(operation).encode()))
    if answer.status_code == 200:
        assert answer.json().get("errors"), answer.text
        assert all(e["extensions"]["code"] for e in answer.json()["errors"])
    else:
        assert answer.status_code == 400 and answer.text, answer.text


async def test_a_body_that_is_not_json_is_a_400_that_says_so(sides: Sides, hotline: Member) -> None:
    answer = same(await sides.both(hotline, b"{ me }"))
    assert (answer.status_code, answer.text) == (400, "Unable to parse request body as JSON")


@pytest.mark.parametrize("content_type", ["application/json", "application/json-patch+json"])
@pytest.mark.parametrize(("body", "kind"), [(b"5", "a number"), (b'"{ me { subject } }"', "a string"), (b"null", "null"),
                                            (b"true", "true or false")])
async def test_json_that_is_not_an_operation_is_a_400_not_a_500(
    sides: Sides, hotline: Member, body: bytes, kind: str, content_type: str
) -> None:
    """On either path (strawberry's view reads other JSON media types as JSON too)."""
    answer = same(await sides.both(hotline, body, **{"content-type": content_type}))
    assert (answer.status_code, answer.text) == (400, f"Expected a JSON object (a GraphQL operation), not {kind}")


async def test_a_charset_in_the_content_type_is_still_json(sides: Sides, hotline: Member) -> None:
    answer = same(await sides.both(hotline, json.dumps({"query": ME}).encode(),
                                   **{"content-type": "application/json; charset=utf-8"}))
    assert answer.json()["data"]["me"]["subject"]


async def test_a_content_type_strawberry_refuses_is_refused_whatever_the_body(sides: Sides, hotline: Member) -> None:
    for operation in ({"query": ME}, [{"query": ME}]):
        answer = same(await sides.both(hotline, json.dumps(operation).encode(), **{"content-type": "Application/JSON"}))
        assert (answer.status_code, answer.text) == (400, "Unsupported content type")


@pytest.mark.parametrize("content_type", ["application/json", "application/json-patch+json"])
async def test_a_body_that_is_not_utf8_is_a_400_not_a_500(sides: Sides, hotline: Member, content_type: str) -> None:
    """Whichever path answers: strawberry's view also reads a body as JSON for other JSON media types."""
    answer = same(await sides.both(hotline, b'{"query": "\xff"}', **{"content-type": content_type}))
    assert (answer.status_code, answer.text) == (400, "Unable to parse request body as JSON")


@pytest.mark.parametrize("content_type", ["application/json", "application/json-patch+json"])
async def test_an_operation_name_utf8_cannot_hold_is_quoted_in_a_400(sides: Sides, hotline: Member, content_type: str) -> None:
    body = json.dumps({"query": "query A { me { subject } }", "operationName": "\ud800"}).encode()
    answer = same(await sides.both(hotline, body, **{"content-type": content_type}))
    assert answer.status_code == 400
    assert answer.text == 'Unknown operation named "\\ud800".'


async def test_a_subscription_over_post_is_refused_with_a_400(sides: Sides, hotline: Member) -> None:
    answer = same(await sides.both(hotline, json.dumps({"query": "subscription { events { cursor } }"}).encode()))
    assert (answer.status_code, answer.text) == (400, "subscriptions are not allowed when using POST")


async def test_a_subscription_over_get_is_refused_with_a_400(sides: Sides, hotline: Member) -> None:
    answer = await sides.app.get("/graphql", params={"query": "subscription { events { cursor } }"}, headers=hotline.headers)
    assert (answer.status_code, answer.text) == (400, "subscriptions are not allowed when using GET")


def test_only_a_plain_json_post_of_one_operation_is_answered_directly() -> None:
    assert is_plain_json({"content-type": "application/json"})
    assert is_plain_json({"content-type": "application/json; charset=utf-8", "accept": "application/json"})
    assert not is_plain_json({"content-type": "Application/JSON"})  # strawberry's view refuses it: so it answers
    assert not is_plain_json({"content-type": "multipart/form-data; boundary=x"})
    assert not is_plain_json({})
    # Streamed answers are strawberry's to give.
    assert not is_plain_json({"content-type": "application/json", "accept": "text/event-stream"})
    assert not is_plain_json({"content-type": "application/json", "accept": 'Multipart/Mixed;subscriptionSpec="1.0"'})
    assert is_one_operation({"query": ME})
    assert is_one_operation({"query": ME, "variables": None, "extensions": {}, "operationName": None})
    assert not is_one_operation([{"query": ME}])
    assert not is_one_operation({"query": None})
    assert not is_one_operation({"query": ME, "variables": "x"})


async def test_several_operations_without_an_operation_name_run_none(sides: Sides, hotline: Member, make: Factory) -> None:
    company = await make.member(K.COMPANY, Role.MEMBER)
    url = "https://example.org/which-one.jpg"
    document = f"mutation Report($i: ReportNoticeInput!) {{ reportNotice(input: $i) {{ deduplicated }} }} {ME.replace('{', 'query Me {', 1)}"
    body = json.dumps({"query": document, "variables": {"i": report_input(company, url)}}).encode()
    answer = same(await sides.both(hotline, body)).json()
    assert answer.get("data") is None
    assert [(e["message"], e["extensions"]["code"]) for e in answer["errors"]] == \
        [("Must provide operation name if query contains multiple operations.", "BAD_USER_INPUT")]
    # Neither side reported the notice: reporting its URL now is not a duplicate.
    reported = await hotline.gql(REPORT, {"i": report_input(company, url)})
    assert reported["data"]["reportNotice"]["deduplicated"] is False


async def test_the_named_operation_of_several_is_the_one_run(sides: Sides, hotline: Member) -> None:
    document = "query Subject { me { subject } } query Name { me { organization { name } } }"
    answer = same(await sides.both(hotline, json.dumps({"query": document, "operationName": "Name"}).encode())).json()
    assert answer == {"data": {"me": {"organization": {"name": hotline.organization.name}}}}


async def test_several_queries_in_a_get_without_an_operation_name_run_none(sides: Sides, hotline: Member) -> None:
    document = "query Subject { me { subject } } query Name { me { organization { name } } }"
    answer = await sides.app.get("/graphql", params={"query": document}, headers=hotline.headers)
    assert answer.status_code == 200
    assert [e["message"] for e in answer.json()["errors"]] == ["Must provide operation name if query contains multiple operations."]


@pytest.mark.parametrize("document", [
    "subscription S { events { cursor } } query Q { me { subject } }",
    "query Q { me { subject } } subscription S { events { cursor } }",
])
async def test_several_operations_with_a_subscription_are_answered_alike_whatever_the_order(
    sides: Sides, hotline: Member, document: str
) -> None:
    answer = same(await sides.both(hotline, json.dumps({"query": document}).encode()))
    assert answer.status_code == 200
    assert [e["message"] for e in answer.json()["errors"]] == ["Must provide operation name if query contains multiple operations."]


async def test_get_variables_and_extensions_may_be_null_or_must_be_objects(sides: Sides, hotline: Member) -> None:
    for name in ("variables", "extensions"):
        ok = await sides.app.get("/graphql", params={"query": ME, name: "null"}, headers=hotline.headers)
        assert ok.status_code == 200 and ok.json()["data"]["me"]["subject"], ok.text
        refused = await sides.app.get("/graphql", params={"query": ME, name: "5"}, headers=hotline.headers)
        assert (refused.status_code, refused.text) == \
            (400, f"The GraphQL operation's `{name}` must be an object or null, if provided.")
