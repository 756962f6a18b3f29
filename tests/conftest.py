"""Fixtures: the real services, the app, and a viewer of each kind.

PostgreSQL and NATS are real. They are started embedded, the way `takedown dev`
starts them, unless TAKEDOWN_DATABASE_URL / TAKEDOWN_NATS_URL point at running
servers. Every session gets a database of its own; tests isolate by creating
their own organizations rather than by truncating tables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc.jwk import ECKey

from api.app import create_app
from api.auth.keys import issue_token, load_signing_key
from api.cli import ensure_database, migrate_database
from api.domain.ids import to_global_id
from api.domain.organizations import Organization, OrganizationKind, Role
from api.protect import new_key
from api.resources import Resources
from api.services.organizations import create_organization
from api.settings import Settings
from api.store.pool import create_pool
from infra.stack import EmbeddedNats, EmbeddedPostgres


@dataclass(frozen=True)
class Services:
    admin_dsn: str
    nats_url: str


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    database_url = os.environ.get("TAKEDOWN_DATABASE_URL")
    nats_url = os.environ.get("TAKEDOWN_NATS_URL")
    started: list[Any] = []
    try:
        if not database_url:
            postgres = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"))
            postgres.start()
            started.append(postgres)
            database_url = postgres.dsn()
        if not nats_url:
            nats = EmbeddedNats(tmp_path_factory.mktemp("nats"))
            nats_url = nats.start()
            started.append(nats)
        yield Services(admin_dsn=database_url, nats_url=nats_url)
    finally:
        for service in reversed(started):
            service.stop()


def database_dsn(admin_dsn: str, name: str) -> str:
    base, _, rest = admin_dsn.rpartition("/")
    query = rest.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


async def fresh_database(services: Services) -> str:
    """A new, migrated database: for tests that must own the whole of a table (the audit chain)."""
    name = f"takedown_test_{secrets.token_hex(4)}"
    await ensure_database(services.admin_dsn, name)
    dsn = database_dsn(services.admin_dsn, name)
    await migrate_database(dsn)
    return dsn


@pytest.fixture(scope="session")
async def database_url(services: Services) -> str:
    return await fresh_database(services)


URL_KEYS = f"test1:{new_key()}"
URL_HMAC_KEY = new_key()


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    return ECKey.generate_key("P-256", private=True).as_pem(private=True).decode()


def make_settings(database_url: str, nats_url: str, data_dir: Path, signing_key_pem: str, **overrides: Any) -> Settings:
    base = Settings(
        env="test",
        database_url=database_url,
        nats_url=nats_url,
        data_dir=data_dir,
        signing_key_pem=signing_key_pem,
        url_keys=URL_KEYS,
        url_hmac_key=URL_HMAC_KEY,
        rate_limit_per_minute=100_000,
        rate_limit_burst=10_000,
    )
    return base.with_overrides(**overrides)


@pytest.fixture(scope="session")
def settings(
    database_url: str, services: Services, tmp_path_factory: pytest.TempPathFactory, signing_key_pem: str
) -> Settings:
    return make_settings(database_url, services.nats_url, tmp_path_factory.mktemp("data"), signing_key_pem)


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as http:
        yield http


class app_client:
    """An httpx client talking to a real app (lifespan included) in this process."""

    def __init__(self, settings: Settings, resources: Resources | None = None) -> None:
        self.app = create_app(settings, resources)
        self.lifespan = LifespanManager(self.app, startup_timeout=30)

    async def __aenter__(self) -> httpx.AsyncClient:
        await self.lifespan.__aenter__()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://localhost")
        return self.http

    async def __aexit__(self, *exc: Any) -> None:
        await self.http.aclose()
        await self.lifespan.__aexit__(*exc)


# ------------------------------------------------------------------ viewers


@dataclass(frozen=True)
class Member:
    """A token holder of one organization, with helpers to call the API as them."""

    organization: Organization
    roles: frozenset[Role]
    token: str
    client: httpx.AsyncClient

    @property
    def org_id(self) -> str:
        return to_global_id("Organization", self.organization.id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers)
        assert response.status_code in (200, 401, 429, 503), response.text
        return response.json()  # type: ignore[no-any-return]


def error_codes(result: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result.get("errors") or []]


class Factory:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, client: httpx.AsyncClient) -> None:
        self.pool = pool
        self.settings = settings
        self.client = client
        self.signing_key = load_signing_key(settings)

    async def organization(self, kind: OrganizationKind, name: str | None = None) -> Organization:
        return await create_organization(
            self.pool, None, name=name or f"{kind.value.title()} {secrets.token_hex(4)}", kind=kind, country="NL"
        )

    def token(self, organization: Organization, roles: frozenset[Role] | set[Role], subject: str | None = None) -> str:
        return issue_token(
            self.signing_key,
            self.settings,
            subject=subject or f"user-{secrets.token_hex(3)}",
            organization_id=str(organization.id),
            roles=[r.value for r in roles],
        )

    async def member(
        self, kind: OrganizationKind, *roles: Role, organization: Organization | None = None
    ) -> Member:
        organization = organization or await self.organization(kind)
        granted = frozenset(roles or (Role.MEMBER,))
        return Member(organization, granted, self.token(organization, granted), self.client)


@pytest.fixture
def make(pool: asyncpg.Pool, settings: Settings, client: httpx.AsyncClient) -> Factory:
    return Factory(pool, settings, client)


@pytest.fixture
async def platform_admin(make: Factory) -> Member:
    return await make.member(OrganizationKind.GOVERNMENT, Role.PLATFORM_ADMIN, Role.ORG_ADMIN, Role.ANALYST, Role.MEMBER)


@pytest.fixture
async def org_admin(make: Factory) -> Member:
    return await make.member(OrganizationKind.COMPANY, Role.ORG_ADMIN, Role.ANALYST, Role.MEMBER)


@pytest.fixture(scope="session")
async def relay(settings: Settings) -> AsyncIterator[Any]:
    """The outbox relay for the session database, publishing to the session's NATS (tests of events need it)."""
    from tests.eventing import Running
    from workers.relay import Relay

    async with Running(Relay(settings, poll_seconds=0.5)) as running:
        await asyncio.wait_for(running.active.wait(), 30)
        yield running


@contextmanager
def unexpected_errors_logged() -> Iterator[list[str]]:
    """The 'unexpected error' lines the GraphQL layer logs meanwhile, each formatted with its stack."""
    kept: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = kept.append  # type: ignore[method-assign]
    graphql_log = logging.getLogger("takedown.graphql")
    graphql_log.addHandler(handler)
    lines: list[str] = []
    try:
        yield lines
    finally:
        graphql_log.removeHandler(handler)
        lines += [logging.Formatter().format(r) for r in kept if r.getMessage().startswith("unexpected error")]
