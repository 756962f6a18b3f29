"""Operations and guards: health, readiness, metrics, and the limits against abusive requests."""

from __future__ import annotations

import socket

import httpx

from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.resources import Resources
from api.settings import Settings
from tests.conftest import Factory, app_client, error_codes


async def post(http: httpx.AsyncClient, token: str, query: str, variables: dict | None = None) -> httpx.Response:  # type: ignore[type-arg]
    return await http.post("/graphql", json={"query": query, "variables": variables or {}},
                           headers={"Authorization": f"Bearer {token}"})


async def test_depth_limit(settings: Settings, make: Factory) -> None:
    viewer = await make.member(K.POLICE)
    shallow = settings.with_overrides(max_query_depth=2)
    async with app_client(shallow) as http:
        ok = await post(http, viewer.token, "{ me { subject } }")
        assert ok.json()["data"]["me"]["subject"]
        deep = await post(http, viewer.token, "{ me { organization { name } } }")
        assert error_codes(deep.json()) == ["QUERY_TOO_COMPLEX"]
        assert "3 levels deep; at most 2" in deep.json()["errors"][0]["message"]
        # fragments count like inline selections
        fragment = await post(http, viewer.token, "{ me { ...M } } fragment M on Viewer { organization { name } }")
        assert error_codes(fragment.json()) == ["QUERY_TOO_COMPLEX"]


async def test_cost_limit_uses_page_sizes_and_variables(settings: Settings, make: Factory) -> None:
    admin = await make.member(K.GOVERNMENT, Role.PLATFORM_ADMIN)
    cheap = settings.with_overrides(max_query_cost=60)
    query = "query($n: Int) { auditLog(first: $n) { edges { node { action } } } }"
    async with app_client(cheap) as http:
        small = await post(http, admin.token, query, {"n": 10})
        assert "errors" not in small.json(), small.text
        large = await post(http, admin.token, query, {"n": 100})
        assert error_codes(large.json()) == ["QUERY_TOO_COMPLEX"]
        assert "at most 60" in large.json()["errors"][0]["message"]
        # Measures are remembered per document and variables: each answer stays its own.
        assert "errors" not in (await post(http, admin.token, query, {"n": 10})).json()
        assert error_codes((await post(http, admin.token, query, {"n": 100})).json()) == ["QUERY_TOO_COMPLEX"]
        by_default = await post(http, admin.token, "{ auditLog { edges { node { action } } } }")
        assert error_codes(by_default.json()) == ["QUERY_TOO_COMPLEX"], "the default page of 100 counts too"


async def test_cost_limit_reads_a_page_size_however_it_is_given(settings: Settings, make: Factory) -> None:
    """What the resolver will get: an integral float is an Int (1000.0 is 1000), and a variable not
    given takes the operation's default, or with null the field's (100 for auditLog: cost 301)."""
    admin = await make.member(K.GOVERNMENT, Role.PLATFORM_ADMIN)
    limited = settings.with_overrides(max_query_cost=500)
    plain = "query($n: Int) { auditLog(first: $n) { edges { node { action } } } }"
    defaulted = "query($n: Int = 1000) { auditLog(first: $n) { edges { node { action } } } }"
    async with app_client(limited) as http:
        assert error_codes((await post(http, admin.token, plain, {"n": 1000.0})).json()) == ["QUERY_TOO_COMPLEX"]
        assert error_codes((await post(http, admin.token, defaulted)).json()) == ["QUERY_TOO_COMPLEX"]
        assert "errors" not in (await post(http, admin.token, defaulted, {"n": None})).json()
        assert "errors" not in (await post(http, admin.token, plain, {"n": 100.0})).json()
        # true is no Int (refused when coerced), and must not be remembered as the 1 it equals
        assert error_codes((await post(http, admin.token, defaulted, {"n": True})).json())
        assert "errors" not in (await post(http, admin.token, defaulted, {"n": 1})).json()


async def test_typename_aliases_are_not_free(settings: Settings, make: Factory) -> None:
    viewer = await make.member(K.POLICE)
    many = "{ " + " ".join(f"t{i}: __typename" for i in range(100)) + " }"
    async with app_client(settings.with_overrides(max_query_cost=60)) as http:
        assert error_codes((await post(http, viewer.token, many)).json()) == ["QUERY_TOO_COMPLEX"]
    # One a selection is free, as Apollo's clients send it: 1 + 10 x (id + name) = 21; a second costs.
    apollo = "{ __typename organizations { __typename id name } }"
    twice = "{ __typename organizations { __typename again: __typename id name } }"
    async with app_client(settings.with_overrides(max_query_cost=21)) as http:
        assert "errors" not in (await post(http, viewer.token, apollo)).json()
        assert error_codes((await post(http, viewer.token, twice)).json()) == ["QUERY_TOO_COMPLEX"]


async def test_aliases_multiply_cost(settings: Settings, make: Factory) -> None:
    viewer = await make.member(K.POLICE)
    cheap = settings.with_overrides(max_query_cost=50)
    many = "{ " + " ".join(f"a{i}: organizations {{ id name }}" for i in range(5)) + " }"
    async with app_client(cheap) as http:
        response = await post(http, viewer.token, many)
        assert error_codes(response.json()) == ["QUERY_TOO_COMPLEX"]


async def test_request_body_limit(settings: Settings, make: Factory) -> None:
    viewer = await make.member(K.POLICE)
    small = settings.with_overrides(max_body_bytes=1000)
    async with app_client(small) as http:
        response = await post(http, viewer.token, "{ me { subject } }" + " " * 2000)
        assert response.status_code == 413
        assert error_codes(response.json()) == ["BAD_USER_INPUT"]
        assert "larger than 1000 bytes" in response.json()["errors"][0]["message"]


async def test_rate_limit_per_subject(settings: Settings, make: Factory) -> None:
    first = await make.member(K.POLICE)
    second = await make.member(K.POLICE)
    limited = settings.with_overrides(rate_limit_per_minute=60, rate_limit_burst=3)
    async with app_client(limited) as http:
        codes = [(await post(http, first.token, "{ me { subject } }")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = await post(http, first.token, "{ me { subject } }")
        assert error_codes(refused.json()) == ["RATE_LIMITED"]
        assert int(refused.headers["retry-after"]) >= 1
        # another subject is not affected
        assert (await post(http, second.token, "{ me { subject } }")).status_code == 200


async def test_bad_json_and_missing_query_are_client_errors(client: httpx.AsyncClient, make: Factory) -> None:
    viewer = await make.member(K.POLICE)
    broken = await client.post("/graphql", content=b"{not json", headers={**viewer.headers, "content-type": "application/json"})
    assert broken.status_code == 400
    syntax = await post(client, viewer.token, "{ me { subject ")
    assert syntax.status_code == 200 and error_codes(syntax.json()) == ["BAD_USER_INPUT"]
    unknown = await post(client, viewer.token, "{ me { favouriteColour } }")
    assert error_codes(unknown.json()) == ["BAD_USER_INPUT"]
    assert "favouriteColour" in unknown.json()["errors"][0]["message"]


async def test_graphiql_and_introspection_in_development_only(settings: Settings, make: Factory) -> None:
    viewer = await make.member(K.POLICE)
    introspect = "{ __schema { queryType { name } } }"
    async with app_client(settings.with_overrides(env="development")) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert (await post(http, viewer.token, introspect)).json()["data"]["__schema"]["queryType"]["name"] == "Query"
    production = settings.with_overrides(env="production", jwt_issuer=settings.jwt_issuer)
    async with app_client(production) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404
        refused = await post(http, viewer.token, introspect)
        assert set(error_codes(refused.json())) == {"BAD_USER_INPUT"}
        assert "introspection" in refused.json()["errors"][0]["message"].lower()
    async with app_client(settings.with_overrides(env="production", introspection=True)) as http:
        assert "errors" not in (await post(http, viewer.token, introspect)).json()


async def test_health_readiness_and_metrics(client: httpx.AsyncClient, make: Factory) -> None:
    import asyncio

    assert (await client.get("/healthz")).json() == {"status": "ok"}
    for _ in range(50):  # NATS connects in the background at start-up
        ready = await client.get("/readyz")
        if ready.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "nats": "ok"}}

    viewer = await make.member(K.POLICE)
    await client.post("/graphql", json={"query": "query WhoAmI { me { subject } }"}, headers=viewer.headers)
    await client.post("/graphql", json={"query": "{ me { subject } }"}, headers={"Authorization": "Bearer nope"})
    text = (await client.get("/metrics")).text
    assert 'takedown_graphql_requests_total{operation="WhoAmI"}' in text
    assert 'takedown_graphql_request_seconds_bucket{le="0.005",operation="WhoAmI"}' in text
    assert 'takedown_graphql_errors_total{code="UNAUTHENTICATED"}' in text
    assert 'takedown_http_requests_total{route="/graphql",status="200"}' in text


async def test_backing_services_down(settings: Settings, make: Factory) -> None:
    """PostgreSQL and NATS unreachable: /healthz stays up, /readyz fails, GraphQL answers UNAVAILABLE."""
    viewer = await make.member(K.POLICE)
    # Ports held but never listened on: connections are refused, and nothing else can start there meanwhile.
    with socket.socket() as no_postgres, socket.socket() as no_nats:
        no_postgres.bind(("127.0.0.1", 0))
        no_nats.bind(("127.0.0.1", 0))
        down = settings.with_overrides(
            database_url=f"postgresql://postgres@127.0.0.1:{no_postgres.getsockname()[1]}/takedown",
            nats_url=f"nats://127.0.0.1:{no_nats.getsockname()[1]}",
            db_timeout_seconds=1.0,
        )
        await _assert_unavailable(down, viewer.token)


async def _assert_unavailable(down: Settings, token: str) -> None:
    async with app_client(down) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["nats"] == "unavailable"
        assert ready.json()["checks"]["postgres"].startswith("unavailable")
        response = await post(http, token, "{ me { subject } }")
        assert response.status_code == 503
        assert error_codes(response.json()) == ["UNAVAILABLE"]
        token = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("tdc_x", "y"))
        assert token.status_code == 503


async def test_stopping_during_the_nats_handshake_closes_the_connection(settings: Settings) -> None:
    """A NATS server that says hello and never answers: shutting down must not leave the socket open."""
    import asyncio

    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()
    writers: list[asyncio.StreamWriter] = []

    async def half_a_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(b'INFO {"server_id":"x","version":"2.10.0","max_payload":1048576,"proto":1}\r\n')
        await writer.drain()
        await accepted.put(reader)

    server = await asyncio.start_server(half_a_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        resources = Resources.build(settings.with_overrides(nats_url=f"nats://127.0.0.1:{port}"))
        await resources.open()
        reader = await asyncio.wait_for(accepted.get(), 10)
        await asyncio.wait_for(resources.close(), 10)  # nats-py retries inside connect: close must not hang
        # The client's CONNECT/PING arrive, then EOF once it has closed its side.
        closed = await asyncio.wait_for(reader.read(), 5)
        assert b"CONNECT" in closed
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()

