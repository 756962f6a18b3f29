"""Listing notices: every filter, stable paging, a constant number of queries per page, audited URL reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from api.app import create_app
from api.domain.ids import to_global_id
from api.domain.notices import ContentCategory, HistoryEntry, NoticeStatus
from api.domain.organizations import Organization, Role, Viewer
from api.domain.organizations import OrganizationKind as K
from api.protect import load_url_protector
from api.resources import Resources
from api.services.notices import NoticeCommands, ReportInput
from api.settings import Settings
from tests.conftest import Factory, Member, app_client, error_codes
from tests.eventing import GraphQLWs, serve
from tests.notices_helpers import act, report, unique_url

LIST = """
query($f: NoticeFilter, $first: Int, $after: String) {
  notices(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id status category overdue reportedAt provider { id } } }
  }
}
"""


def ids(result: dict[str, Any]) -> list[str]:
    assert "errors" not in result, result
    return [e["node"]["id"] for e in result["data"]["notices"]["edges"]]


def viewer_of(member: Member) -> Viewer:
    return Viewer("test", member.organization.id, member.organization.kind, frozenset(member.roles))


@pytest.fixture
async def scene(make: Factory, pool: asyncpg.Pool, settings: Settings) -> dict[str, Any]:
    """One provider with notices in several states, categories and ages."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    provider = company.organization
    commands = NoticeCommands(pool, load_url_protector(settings))
    long_ago = datetime.now(UTC) - timedelta(days=3)
    old = await commands.report(
        viewer_of(hotline),
        [ReportInput(provider.id, unique_url(), ContentCategory.HARMFUL) for _ in range(2)],
        reported_at=long_ago,
    )
    fresh_removed = await report(hotline, provider)
    await act(company, "remove", fresh_removed["id"])
    fresh_open = await report(hotline, provider, category="NATIONALLY_ILLEGAL")
    return {
        "hotline": hotline,
        "company": company,
        "provider": provider,
        "old": [to_global_id("Notice", r.notice.id) for r in old],
        "removed": fresh_removed["id"],
        "open": fresh_open["id"],
        "long_ago": long_ago,
    }


async def test_filters(scene: dict[str, Any]) -> None:
    hotline: Member = scene["hotline"]
    mine = {"providerIds": [to_global_id("Organization", scene["provider"].id)]}

    async def matching(extra: dict[str, Any]) -> set[str]:
        return set(ids(await hotline.gql(LIST, {"f": {**mine, **extra}, "first": 100})))

    assert await matching({}) == {*scene["old"], scene["removed"], scene["open"]}
    assert await matching({"statuses": ["REMOVED"]}) == {scene["removed"]}
    assert await matching({"categories": ["HARMFUL"]}) == set(scene["old"])
    assert await matching({"overdue": True}) == set(scene["old"])
    assert await matching({"overdue": False}) == {scene["removed"], scene["open"]}
    cutoff = (scene["long_ago"] + timedelta(hours=1)).isoformat()
    assert await matching({"reportedBefore": cutoff}) == set(scene["old"])
    assert await matching({"reportedAfter": cutoff}) == {scene["removed"], scene["open"]}
    inverted = await hotline.gql(LIST, {"f": {"reportedAfter": cutoff, "reportedBefore": scene["long_ago"].isoformat()}})
    assert error_codes(inverted) == ["BAD_USER_INPUT"]


async def test_overdue_is_reported_on_the_notice(scene: dict[str, Any]) -> None:
    result = await scene["hotline"].gql(LIST, {"f": {"statuses": ["NOTIFIED"], "providerIds": [to_global_id("Organization", scene["provider"].id)]}})
    overdue = {e["node"]["id"]: e["node"]["overdue"] for e in result["data"]["notices"]["edges"]}
    assert overdue == {**dict.fromkeys(scene["old"], True), scene["open"]: False}


async def test_paging_is_stable_and_complete(make: Factory) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    made = [(await report(hotline, provider))["id"] for _ in range(7)]
    f = {"providerIds": [to_global_id("Organization", provider.id)]}
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = (await hotline.gql(LIST, {"f": f, "first": 3, "after": after}))["data"]["notices"]
        assert page["totalCount"] == 7
        seen += [e["node"]["id"] for e in page["edges"]]
        # a notice reported while paging does not shift what comes next
        await report(hotline, await make.organization(K.COMPANY))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(made)), "newest first, each exactly once"
    assert error_codes(await hotline.gql(LIST, {"first": 0})) == ["BAD_USER_INPUT"]
    assert error_codes(await hotline.gql(LIST, {"after": "garbage"})) == ["BAD_USER_INPUT"]


async def test_paging_resumes_after_any_edges_cursor(make: Factory) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    made = [(await report(hotline, provider))["id"] for _ in range(4)]
    f = {"providerIds": [to_global_id("Organization", provider.id)]}
    page = (await hotline.gql(LIST, {"f": f, "first": 3}))["data"]["notices"]
    cursors = [e["cursor"] for e in page["edges"]]
    assert len(set(cursors)) == 3 and cursors[-1] == page["pageInfo"]["endCursor"]
    newest_first = list(reversed(made))
    for position, cursor in enumerate(cursors):
        rest = (await hotline.gql(LIST, {"f": f, "first": 10, "after": cursor}))["data"]["notices"]
        assert [e["node"]["id"] for e in rest["edges"]] == newest_first[position + 1:]


@pytest.mark.parametrize(
    "edges",
    ["edges { cursor node { id } }", "edges { ...E } } } fragment E on NoticeEdge { cursor node { id",
     "edges { ... on NoticeEdge { node { id } cursor } }", "edges { node { id } at: cursor }"],
    ids=["field", "fragment", "inline fragment", "alias"],
)
async def test_edge_cursors_however_selected(make: Factory, edges: str) -> None:
    """Edge cursors are encoded only when a selection names them; every way of naming one gets them."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    for _ in range(2):
        await report(hotline, provider)
    document = f"query($f: NoticeFilter) {{ notices(filter: $f, first: 2) {{ pageInfo {{ endCursor }} {edges} }} }}"
    page = (await hotline.gql(document, {"f": {"providerIds": [to_global_id("Organization", provider.id)]}}))["data"]["notices"]
    cursors = [edge.get("cursor") or edge.get("at") for edge in page["edges"]]
    assert len(set(cursors)) == 2 and cursors[-1] == page["pageInfo"]["endCursor"]


async def test_edge_cursors_in_a_field_merged_in_by_a_variable(make: Factory) -> None:
    """What a query selects is worked out once per query and kept (graphql/notices.py _wanted), by
    the field nodes merged into the field: here a second `notices` with the cursors merges in only
    when $c is true, so the same query must get cursors then and may go without them before."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    for _ in range(2):
        await report(hotline, provider)
    document = ("query($f: NoticeFilter, $c: Boolean!) { notices(filter: $f, first: 2) { edges { node { id } } } "
                "notices(filter: $f, first: 2) @include(if: $c) { edges { cursor } } }")
    f = {"providerIds": [to_global_id("Organization", provider.id)]}
    for c in (False, True, False, True):
        page = (await hotline.gql(document, {"f": f, "c": c}))["data"]["notices"]
        if c:
            assert all(edge["cursor"] for edge in page["edges"]), page


async def test_the_end_cursor_without_edge_cursors(make: Factory) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    made = [(await report(hotline, provider))["id"] for _ in range(3)]
    f = {"providerIds": [to_global_id("Organization", provider.id)]}
    document = "query($f: NoticeFilter, $a: String) { notices(filter: $f, first: 2, after: $a) { pageInfo { endCursor } edges { node { id } } } }"
    first = (await hotline.gql(document, {"f": f}))["data"]["notices"]
    rest = (await hotline.gql(document, {"f": f, "a": first["pageInfo"]["endCursor"]}))["data"]["notices"]
    assert [e["node"]["id"] for e in first["edges"] + rest["edges"]] == list(reversed(made))


# asyncpg's own statements: connection reset on release, type introspection, JIT toggling.
BOOKKEEPING = ("SELECT pg_advisory_unlock_all()", "WITH RECURSIVE typeinfo_tree", "SELECT current_setting('jit')",
               "SELECT set_config('jit'")


async def count_queries(settings: Settings, member: Member, document: str, variables: dict[str, Any]) -> int:
    statements: list[str] = []
    resources = Resources.build(settings)
    resources.query_observer = lambda record: statements.append(record.query)
    async with app_client(settings, resources) as http:
        response = await http.post("/graphql", json={"query": document, "variables": variables}, headers=member.headers)
        assert "errors" not in response.json(), response.text
        before = len(statements)  # the first request also authenticated; count the second only
        response = await http.post("/graphql", json={"query": document, "variables": variables}, headers=member.headers)
        assert "errors" not in response.json(), response.text
        return len([q for q in statements[before:] if not q.lstrip().startswith(BOOKKEEPING)])


async def test_a_page_costs_a_constant_number_of_queries(make: Factory, settings: Settings) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    for _ in range(50):
        notice = await report(hotline, company.organization, contentHashes=[{"algorithm": "MD5", "value": uuid4().hex}])
        await act(company, "acknowledge", notice["id"])
    document = """
    query($f: NoticeFilter, $n: Int) { notices(filter: $f, first: $n) { totalCount edges { node {
        id status provider { name } reporter { name } history { toStatus actorKind note } contentHashes { value } url
    } } } }
    """
    f = {"providerIds": [company.org_id]}
    five = await count_queries(settings, hotline, document, {"f": f, "n": 5})
    fifty = await count_queries(settings, hotline, document, {"f": f, "n": 50})
    assert fifty == five, f"a page of 50 costs {fifty} statements, a page of 5 costs {five}"
    assert fifty <= 12, fifty  # auth, page, count, one per loader, and the audited URL read (BEGIN, INSERT, COMMIT)


async def test_every_url_read_is_audited(make: Factory, pool: asyncpg.Pool) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    made = [await report(hotline, provider) for _ in range(3)]
    government = await make.member(K.GOVERNMENT)
    query = "query($f: NoticeFilter) { notices(filter: $f) { edges { node { id url } } } }"
    f = {"providerIds": [to_global_id("Organization", provider.id)]}
    await government.gql(query, {"f": f})  # STATUS tier: url is null and nothing is read
    police = await make.member(K.POLICE)
    result = await police.gql(query, {"f": f})
    assert all(e["node"]["url"] for e in result["data"]["notices"]["edges"])
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT organization_id, object_id FROM audit_log WHERE action = 'notice.url.read' AND object_id = ANY($1::text[])",
            [n["id"] for n in made],
        )
    readers = {(r["organization_id"], r["object_id"]) for r in rows if r["organization_id"] != hotline.organization.id}
    assert readers == {(police.organization.id, n["id"]) for n in made}, "one entry per read, none for the STATUS tier"


async def test_reporter_url_reads_from_mutations_are_audited_too(make: Factory, pool: asyncpg.Pool) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider: Organization = await make.organization(K.COMPANY)
    notice = await report(hotline, provider)  # the helper's selection includes url
    async with pool.acquire() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'notice.url.read' AND object_id = $1", notice["id"]
        )
    assert count == 1


async def test_the_total_is_counted_only_when_asked_for(make: Factory, settings: Settings) -> None:
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    await report(hotline, provider)
    f = {"providerIds": [to_global_id("Organization", provider.id)]}
    with_total = "query($f: NoticeFilter) { notices(filter: $f) { totalCount edges { node { id } } } }"
    fragment = "query($f: NoticeFilter) { notices(filter: $f) { ...T } } fragment T on NoticeConnection { totalCount }"
    without = "query($f: NoticeFilter) { notices(filter: $f) { edges { node { id } } } }"
    assert (await hotline.gql(with_total, {"f": f}))["data"]["notices"]["totalCount"] == 1
    assert (await hotline.gql(fragment, {"f": f}))["data"]["notices"]["totalCount"] == 1
    counted = await count_queries(settings, hotline, with_total, {"f": f})
    skipped = await count_queries(settings, hotline, without, {"f": f})
    assert skipped == counted - 1, "no count(*) when totalCount is not selected"


async def test_a_page_with_providers_and_history_is_one_statement_once_its_organizations_are_known(
    make: Factory, settings: Settings
) -> None:
    """The history comes with the page (one query), providers from what the process has read of
    organizations (they never change), the viewer's organization likewise: the second identical
    request is a single statement."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    for _ in range(3):
        notice = await report(hotline, company.organization)
        await act(company, "acknowledge", notice["id"])
    document = """query($f: NoticeFilter) { notices(filter: $f, first: 50) { edges { node {
        id provider { name } history { toStatus at actorKind } } } } }"""
    assert await count_queries(settings, hotline, document, {"f": {"providerIds": [company.org_id]}}) == 1


async def test_history_read_with_the_page_equals_the_history_read_alone(scene: dict[str, Any], pool: asyncpg.Pool) -> None:
    """Entries in order, notes included, for a filter the index does not order (statuses and
    categories) and for a page after a cursor."""
    from api.domain.access import notice_scope
    from api.store import notices as store

    hotline: Member = scene["hotline"]
    company: Member = scene["company"]
    await act(company, "acknowledge", scene["open"], note="looking at it")
    now = datetime.now(UTC)
    scope = notice_scope(viewer_of(hotline))
    mine = (scene["provider"].id,)
    filters = [store.NoticeFilter(provider_ids=mine),
               store.NoticeFilter(provider_ids=mine, statuses=tuple(NoticeStatus), categories=tuple(ContentCategory))]
    seen: list[list[HistoryEntry]] = []
    async with pool.acquire() as conn:
        for query in filters:
            for after in (None, (await store.page(conn, scope, query, now=now, after=None, limit=1))[0].id):
                paired = await store.page_with_history(conn, scope, query, now=now, after=after, limit=3)
                plain = await store.page(conn, scope, query, now=now, after=after, limit=3)
                assert [n for n, _ in paired] == plain and plain
                assert [h for _, h in paired] == await store.history(conn, [n.id for n in plain])
                seen += [h for _, h in paired]
    assert {len(h) for h in seen} == {1, 2}, "notices with one and with several transitions"
    assert "looking at it" in {e.note for h in seen for e in h}


async def test_every_statement_read_as_notices_has_the_notice_columns_where_they_are_read(pool: asyncpg.Pool) -> None:
    """Notices are read from their rows by position (store.to_notice): each statement that feeds it
    must have the columns of store.COLUMNS, in that order, at the position it is read from. Checked
    on the prepared statements, so a column moved or added in one of them fails here, not silently."""
    from api.domain.access import notice_scope
    from api.store import notices as store

    viewer = Viewer("test", uuid4(), K.HOTLINE, frozenset({Role.ANALYST}))
    page_sql, _ = store._page_sql(notice_scope(viewer), store.NoticeFilter(provider_ids=(uuid4(),)), now=datetime.now(UTC),
                                  after=uuid4(), limit=3)
    statements = {"INSERT": (store.INSERT, 0), "REPORT_ONE": (store.REPORT_ONE, 0), "OPEN_FOR": (store.OPEN_FOR, 0),
                  "GET_FOR_UPDATE": (store.GET_FOR_UPDATE, 0), "BY_IDS": (store.BY_IDS, 0), "RELATED": (store.RELATED, store.RELATED_START),
                  "page": (page_sql, 0), "page with history": (store.with_history(page_sql), 0)}
    assert len(store.NAMES) == 15 and store.NAMES[0] == "id" and store.NAMES[-1] == "version"
    async with pool.acquire() as conn:
        for name, (sql, start) in statements.items():
            columns = [a.name for a in (await conn.prepare(sql)).get_attributes()]
            assert tuple(columns[start:start + len(store.NAMES)]) == store.NAMES, name


async def test_a_column_added_to_notice_history_does_not_fail_the_pages_of_open_connections(
    scene: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """Migrations run while the API serves. A page's history is read as a type of its own
    (notice_history_entry), not as the table's row type, which each connection caches: a column
    added to the table must not fail the next page of a connection opened before."""
    from api.domain.access import notice_scope
    from api.store import notices as store

    scope = notice_scope(viewer_of(scene["hotline"]))
    query = store.NoticeFilter(provider_ids=(scene["provider"].id,))
    async with pool.acquire() as conn:
        before = await store.page_with_history(conn, scope, query, now=datetime.now(UTC), after=None, limit=5)
        await conn.execute("ALTER TABLE notice_history ADD COLUMN added_later integer")
        try:
            after = await store.page_with_history(conn, scope, query, now=datetime.now(UTC), after=None, limit=5)
        finally:
            await conn.execute("ALTER TABLE notice_history DROP COLUMN added_later")
    assert after == before and before


async def test_each_url_read_over_one_websocket_is_audited(make: Factory, settings: Settings, pool: asyncpg.Pool) -> None:
    """A WebSocket connection keeps its loaders as long as it lasts: a URL read again in a later
    operation is decrypted and audited again, not answered from what the first read loaded."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    provider = await make.organization(K.COMPANY)
    notice = await report(hotline, provider)
    police = await make.member(K.POLICE)

    async def reads() -> int:
        async with pool.acquire() as conn:
            return await conn.fetchval(  # type: ignore[no-any-return]
                "SELECT count(*) FROM audit_log WHERE action = 'notice.url.read' AND object_id = $1 AND organization_id = $2",
                notice["id"], police.organization.id,
            )

    async with serve(create_app(settings)) as address, GraphQLWs(address, police.token) as ws:
        for read in (1, 2):
            operation = await ws.subscribe("query($id: ID!) { notice(id: $id) { url } }", {"id": notice["id"]})
            answer = await ws.frame()
            assert answer["id"] == operation and answer["payload"]["data"]["notice"]["url"], answer
            assert (await ws.frame())["type"] == "complete"
            assert await reads() == read


async def test_url_reads_are_audited_as_the_viewer_that_asks(make: Factory, settings: Settings, pool: asyncpg.Pool) -> None:
    """The URL loader of a set of loaders is made for the viewer its resolver names; another
    viewer gets one of its own, so its reads are decrypted and audited as its own."""
    from api.domain.ids import expect_global_id
    from api.graphql.context import Loaders
    from api.store import notices as store

    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    notice_id = expect_global_id((await report(hotline, await make.organization(K.COMPANY)))["id"], "Notice")
    police, other_police = await make.member(K.POLICE), await make.member(K.POLICE)
    async with pool.acquire() as conn:
        [notice] = await store.by_ids(conn, [notice_id])
    assert notice is not None
    resources = Resources.build(settings)
    resources.pool = pool
    try:
        loaders = Loaders(resources)
        for member in (police, other_police, police):
            assert await loaders.url(viewer_of(member)).load(notice)
    finally:
        await resources.http.aclose()
    async with pool.acquire() as conn:
        readers = await conn.fetch(
            "SELECT organization_id FROM audit_log WHERE action = 'notice.url.read' AND object_id = $1"
            " AND organization_id <> $2 ORDER BY seq",  # the reporter read it too, reporting it
            to_global_id("Notice", notice_id), hotline.organization.id,
        )
    assert [r["organization_id"] for r in readers] == [m.organization.id for m in (police, other_police, police)]


async def test_each_operation_over_one_websocket_reads_the_state_of_its_time(make: Factory, settings: Settings) -> None:
    """The connection's context lasts as long as it does, its loaders do not: a notice acknowledged
    between two queries on one socket is read as acknowledged by the second."""
    hotline = await make.member(K.HOTLINE, Role.ANALYST)
    company = await make.member(K.COMPANY, Role.ANALYST)
    notice = await report(hotline, company.organization)
    seen = []
    async with serve(create_app(settings)) as address, GraphQLWs(address, hotline.token) as ws:
        for step in (1, 2):
            await ws.subscribe("query($id: ID!) { notice(id: $id) { status history { toStatus } } }", {"id": notice["id"]})
            answer = await ws.frame()
            assert (await ws.frame())["type"] == "complete"
            seen.append(answer["payload"]["data"]["notice"])
            if step == 1:
                assert "errors" not in await act(company, "acknowledge", notice["id"])
    assert [n["status"] for n in seen] == ["NOTIFIED", "ACKNOWLEDGED"], seen
    assert [h["toStatus"] for h in seen[1]["history"]] == ["NOTIFIED", "ACKNOWLEDGED"], seen
