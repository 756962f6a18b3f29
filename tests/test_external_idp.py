"""Tokens of an external OpenID Connect provider, verified against its JWKS served over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth.keys import SigningKey
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.settings import Settings
from infra.stack import free_port
from tests.conftest import Factory, app_client, error_codes

ISSUER = "https://login.example-idp.test"


class Provider:
    """A minimal identity provider: it publishes a JWKS and signs tokens; its key can rotate."""

    def __init__(self) -> None:
        self.key = SigningKey(ECKey.generate_key("P-256", private=True))
        self.fetches = 0

    def rotate(self) -> None:
        self.key = SigningKey(ECKey.generate_key("P-256", private=True))

    async def jwks(self, request: Request) -> JSONResponse:
        self.fetches += 1
        return JSONResponse(self.key.jwks())

    def token(self, settings: Settings, organization_id: str, **extra: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": settings.jwt_audience, "sub": "alice@idp", "iat": now, "exp": now + 300,
                  "org": organization_id, "roles": ["MEMBER"], **extra}
        return self.key.sign(claims)


@pytest.fixture
async def provider() -> AsyncIterator[tuple[Provider, str]]:
    idp = Provider()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/jwks", idp.jwks)]), host="127.0.0.1", port=port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield idp, f"http://127.0.0.1:{port}/jwks"
    server.should_exit = True
    await task


async def me(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": "{ me { subject } }"}, headers={"Authorization": f"Bearer {token}"})


async def test_external_tokens_verify_and_follow_key_rotation(
    provider: tuple[Provider, str], settings: Settings, make: Factory
) -> None:
    idp, url = provider
    org = await make.organization(K.PROSECUTOR)
    external = settings.with_overrides(external_jwks_url=url, external_issuer=ISSUER)
    async with app_client(external) as http:
        before_rotation = idp.token(settings, str(org.id))
        response = await me(http, before_rotation)
        assert response.json() == {"data": {"me": {"subject": "alice@idp"}}}

        idp.rotate()
        await asyncio.sleep(5.1)  # the refresh-on-unknown-kid guard allows one fetch per 5 s
        response = await me(http, idp.token(settings, str(org.id)))
        assert response.json() == {"data": {"me": {"subject": "alice@idp"}}}
        assert idp.fetches == 2

        # The withdrawn key's token was verified (and remembered) before the rotation; the
        # refreshed key set no longer holds its key, so it is refused now.
        assert error_codes((await me(http, before_rotation)).json()) == ["UNAUTHENTICATED"]

        # The platform's own tokens keep working beside the provider's.
        own = make.token(org, {Role.MEMBER})
        assert (await me(http, own)).status_code == 200


async def test_external_issuer_cannot_use_the_platforms_key_or_another_audience(
    provider: tuple[Provider, str], settings: Settings, make: Factory
) -> None:
    idp, url = provider
    org = await make.organization(K.PROSECUTOR)
    external = settings.with_overrides(external_jwks_url=url, external_issuer=ISSUER)
    async with app_client(external) as http:
        # Signed by the platform's key but claiming the external issuer: verified against the provider's keys.
        forged = make.signing_key.sign({"iss": ISSUER, "aud": settings.jwt_audience, "sub": "x",
                                        "exp": int(time.time()) + 60, "org": str(org.id), "roles": []})
        assert error_codes((await me(http, forged)).json()) == ["UNAUTHENTICATED"]
        wrong_audience = idp.token(settings, str(org.id), aud="someone-else")
        assert error_codes((await me(http, wrong_audience)).json()) == ["UNAUTHENTICATED"]


async def test_unreachable_provider_is_unavailable_not_a_crash(settings: Settings, make: Factory) -> None:
    org = await make.organization(K.PROSECUTOR)
    idp = Provider()
    # A port held but never listened on refuses connections, and nobody else can take it meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        external = settings.with_overrides(external_jwks_url=f"http://127.0.0.1:{port}/jwks", external_issuer=ISSUER)
        async with app_client(external) as http:
            response = await me(http, idp.token(settings, str(org.id)))
            assert response.status_code == 503, response.text
            assert error_codes(response.json()) == ["UNAVAILABLE"]
