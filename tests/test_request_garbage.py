"""A request leaves nothing for Python's cyclic collector: everything it made is freed when it ends.

A reference cycle per request (graphql-core's executor kept its own bound methods; the loaders
kept the context's) left each request's executor, context, HTTP request and variables to the
cyclic collector. At 32 concurrent pages its full collections then paused the API for 14-25 ms
every 1.5-2 s, and those pauses were the p99. The app is called here as uvicorn calls it (no HTTP
client in between, whose own objects would be counted too), with the collector saving what it
finds instead of freeing it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import strawberry
from graphql import GraphQLResolveInfoHelpers, parse
from graphql.execution.executor import Executor
from graphql.language import Token

from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.graphql.execution import ExecutionContext
from api.settings import Settings
from tests.conftest import Factory, Member, app_client
from tests.notices_helpers import ACTIONS, REPORT, REPORT_MANY, report, report_input

PAGE = """query($p: [ID!]) { notices(filter: {providerIds: $p}, first: 50) { edges { cursor node {
  id reference status url provider { name } history { toStatus at actorKind } contentHashes { value } } } } }"""


async def post(app: Any, member: Member, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"authorization", f"Bearer {member.token}".encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return json.loads(b"".join(chunks))  # type: ignore[no-any-return]


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """What the collector would have had to free, made inside the block (by anything in this process)."""
    gc.collect()
    found: list[object] = []
    flags = gc.get_debug()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        yield found
    finally:
        gc.collect()
        found.extend(gc.garbage)
        gc.garbage.clear()
        gc.set_debug(flags)


def kinds(garbage: list[object]) -> Counter[str]:
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in garbage)


@pytest.fixture
async def app(settings: Settings) -> Any:
    served = app_client(settings)
    async with served:
        yield served.app


async def test_pages_and_reports_leave_no_reference_cycles(app: Any, make: Factory) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST, Role.MEMBER)
    company = await make.member(K.COMPANY, Role.ANALYST, Role.MEMBER)
    first = await report(hotline, company.organization, contentHashes=[{"algorithm": "SHA256", "value": "ab" * 32}])
    page = {"p": [company.org_id]}
    warm = await post(app, hotline, PAGE, page)  # first use: plans, caches and loaders made once per process
    assert "errors" not in warm and warm["data"]["notices"]["edges"][0]["node"]["url"], warm
    acknowledge = f"mutation($i: NoticeActionInput!) {{ r: {ACTIONS['acknowledge']} {{ id status }} }}"
    await post(app, hotline, REPORT, {"i": report_input(company.organization)})  # first use of each document
    await post(app, hotline, REPORT_MANY, {"i": [report_input(company.organization)]})
    await post(app, company, acknowledge, {"i": {"noticeId": (await report(hotline, company.organization))["id"]}})
    with cyclic_garbage() as garbage:
        for _ in range(3):
            read = await post(app, hotline, PAGE, page)
            assert "errors" not in read and read["data"]["notices"]["edges"], read
        one = await post(app, hotline, REPORT, {"i": report_input(company.organization)})
        assert one["data"]["reportNotice"]["deduplicated"] is False, one
        many = await post(app, hotline, REPORT_MANY, {"i": [report_input(company.organization) for _ in range(3)]})
        assert len(many["data"]["reportNotices"]["results"]) == 3, many
        acknowledged = await post(app, company, acknowledge, {"i": {"noticeId": first["id"]}})
        assert acknowledged["data"]["r"]["status"] == "ACKNOWLEDGED", acknowledged
    assert not garbage, f"objects left in reference cycles: {kinds(garbage).most_common(20)}"


async def test_failed_requests_leave_no_reference_cycles(app: Any, make: Factory) -> None:
    """An error's traceback keeps the frames it passed through, and with them the executor that
    collected it: dropped once the error is logged."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST, Role.MEMBER)
    company = await make.member(K.COMPANY, Role.ANALYST, Role.MEMBER)
    notice = await report(hotline, company.organization)
    withdraw = f"mutation($i: NoticeActionInput!) {{ r: {ACTIONS['withdraw']} {{ id }} }}"
    missing = {"i": {"noticeId": notice["id"].replace("N", "M", 1)}}
    failing = [
        (company, withdraw, {"i": {"noticeId": notice["id"]}}, "FORBIDDEN"),  # only its reporter may withdraw it
        (hotline, withdraw, missing, "NOT_FOUND"),
        (hotline, REPORT, {"i": report_input(company.organization, url="not a url")}, "BAD_USER_INPUT"),
        (hotline, "query { notices(first: 1) { edges { node { id } }", {}, "BAD_USER_INPUT"),  # a syntax error
    ]
    for member, query, variables, code in failing:  # first use of each document
        answer = await post(app, member, query, variables)
        assert [e["extensions"]["code"] for e in answer["errors"]] == [code], answer
    with cyclic_garbage() as garbage:
        for member, query, variables, code in failing * 2:
            answer = await post(app, member, query, variables)
            assert [e["extensions"]["code"] for e in answer["errors"]] == [code], answer
    # graphql-core's lexer links each token to the next and back: a document that does not parse
    # leaves its tokens (only those: 18 here) to the collector.
    left = [o for o in garbage if not isinstance(o, Token)]
    assert not left, f"objects left in reference cycles: {kinds(left).most_common(20)}"


@strawberry.type
class _Query:
    answer: int = 42


def _executor() -> ExecutionContext:
    schema = strawberry.Schema(query=_Query, execution_context_class=ExecutionContext)
    executor = ExecutionContext.build(schema._schema, parse("{ answer }"))
    assert isinstance(executor, ExecutionContext), executor
    return executor


def test_the_executor_is_not_a_reference_cycle() -> None:
    """Its async helpers run graphql-core's own functions, on the state they read (shared with
    sub-executors), and do not lead back to the executor, which is freed as soon as it is let go."""
    executor = _executor()
    helpers = executor.async_helpers
    assert isinstance(helpers, GraphQLResolveInfoHelpers)
    assert helpers.track.__func__ is Executor.track_async_work  # type: ignore[attr-defined]
    assert helpers.gather.__func__ is Executor.gather_async_work  # type: ignore[attr-defined]
    work = helpers.track.__self__  # type: ignore[attr-defined]
    assert work.background_futures is executor.background_futures and work.is_awaitable is executor.is_awaitable
    # Nobody between graphql-core and this executor does these differently; if that changes, the
    # helpers must call their versions instead.
    for name in ("track_async_work", "gather_async_work", "settle_in_background"):
        assert getattr(ExecutionContext, name) is getattr(Executor, name), name
    gone = weakref.ref(executor)
    del executor, helpers, work
    assert gone() is None  # freed by its reference count, not left for the collector


async def test_async_work_is_still_gathered_and_tracked() -> None:
    """As graphql-core does it: `gather` awaits awaitables together, and awaitables handed to
    `track` are settled in the background, in the set the executor and its sub-executors share."""
    executor = _executor()
    settled: list[int] = []

    async def work(n: int) -> int:
        await asyncio.sleep(0)
        settled.append(n)
        return n

    assert await executor.async_helpers.gather([work(1), work(2)]) == [1, 2]
    executor.async_helpers.track([work(3), "not awaitable"])
    executor.create_sub_executor().async_helpers.track([work(4)])  # as a deferred fragment's executor would
    assert len(executor.background_futures) == 2
    await asyncio.gather(*executor.background_futures)
    assert sorted(settled) == [1, 2, 3, 4]
    await asyncio.sleep(0)  # the done callback takes the finished work off the set
    assert not executor.background_futures
