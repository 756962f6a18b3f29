"""Every way a bearer token can be wrong gets UNAUTHENTICATED (401), never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from uuid import uuid4

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from api.auth.keys import SigningKey
from api.domain.organizations import OrganizationKind as K
from api.domain.organizations import Role
from api.settings import Settings
from tests.conftest import Factory, error_codes

ME = {"query": "{ me { subject } }"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(settings: Settings, organization_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "someone",
        "iat": now,
        "exp": now + 300,
        "org": organization_id,
        "roles": ["MEMBER"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


async def call(client: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return await client.post("/graphql", json=ME, headers=headers)


def assert_unauthenticated(response: httpx.Response, says: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert says in body["errors"][0]["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_valid_token_is_accepted(make: Factory, client: httpx.AsyncClient, settings: Settings) -> None:
    org = await make.organization(K.POLICE)
    token = make.signing_key.sign(claims(settings, str(org.id)))
    response = await call(client, f"Bearer {token}")
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"subject": "someone"}}}


@pytest.mark.parametrize(
    ("authorization", "says"),
    [
        (None, "Authorization: Bearer"),
        ("", "Authorization: Bearer"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer not-a-jwt", "malformed"),
        ("Bearer a.b.c", "malformed"),
        ("Bearer " + "x" * 9000, "too long"),
    ],
)
async def test_missing_or_malformed_tokens(client: httpx.AsyncClient, authorization: str | None, says: str) -> None:
    assert_unauthenticated(await call(client, authorization), says)


async def test_expired_token(make: Factory, client: httpx.AsyncClient, settings: Settings) -> None:
    org = await make.organization(K.POLICE)
    past = int(time.time()) - 3600
    token = make.signing_key.sign(claims(settings, str(org.id), iat=past - 60, exp=past))
    assert_unauthenticated(await call(client, f"Bearer {token}"), "expired")


async def test_a_token_remembered_as_verified_is_still_checked_for_expiry_on_every_use(
    make: Factory, client: httpx.AsyncClient, settings: Settings
) -> None:
    """Verified signatures are remembered (tokens.VERIFIED_CACHE_SIZE); the claims are not: a second
    use of an expired token, whose signature is already known good, is refused the same way."""
    org = await make.organization(K.POLICE)
    past = int(time.time()) - 3600
    token = make.signing_key.sign(claims(settings, str(org.id), iat=past - 60, exp=past))
    for _ in range(2):
        assert_unauthenticated(await call(client, f"Bearer {token}"), "expired")


async def test_a_token_accepted_and_remembered_is_refused_once_it_expires(make: Factory, settings: Settings) -> None:
    """The remembered path itself: a token verified (and remembered) while valid is refused after
    its expiry, on its next use, without being verified afresh."""
    import asyncio

    from api.auth.tokens import TokenVerifier
    from api.domain.errors import Unauthenticated

    org = await make.organization(K.POLICE)
    strict = settings.with_overrides(jwt_leeway_seconds=0)
    verifier = TokenVerifier(strict, make.signing_key)
    expires = int(time.time()) + 2
    token = make.signing_key.sign(claims(strict, str(org.id), exp=expires))
    assert (await verifier.verify(token)).organization_id == org.id
    assert (await verifier.verify(token)).organization_id == org.id  # now from memory
    await asyncio.sleep(expires + 1.1 - time.time())
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)


async def test_token_without_expiry(make: Factory, client: httpx.AsyncClient, settings: Settings) -> None:
    org = await make.organization(K.POLICE)
    token = make.signing_key.sign(claims(settings, str(org.id), exp=None))
    assert_unauthenticated(await call(client, f"Bearer {token}"), "not valid")


async def test_token_signed_by_another_key(make: Factory, client: httpx.AsyncClient, settings: Settings) -> None:
    org = await make.organization(K.POLICE)
    impostor = SigningKey(ECKey.generate_key("P-256", private=True))
    forged = jwt.encode({"alg": "ES256", "kid": make.signing_key.kid}, claims(settings, str(org.id)), impostor.key)
    assert_unauthenticated(await call(client, f"Bearer {forged}"), "not valid")
    unknown_kid = impostor.sign(claims(settings, str(org.id)))
    assert_unauthenticated(await call(client, f"Bearer {unknown_kid}"), "not valid")


async def test_tampered_claims_break_the_signature(make: Factory, client: httpx.AsyncClient, settings: Settings) -> None:
    org = await make.organization(K.COMPANY)
    header, _, signature = make.signing_key.sign(claims(settings, str(org.id))).split(".")
    escalated = b64(json.dumps(claims(settings, str(org.id), roles=["PLATFORM_ADMIN"])).encode())
    assert_unauthenticated(await call(client, f"Bearer {header}.{escalated}.{signature}"), "not valid")


async def test_alg_none_is_refused(make: Factory, client: httpx.AsyncClient, settings: Settings) -> None:
    org = await make.organization(K.POLICE)
    unsigned = b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(claims(settings, str(org.id))).encode()) + "."
    assert_unauthenticated(await call(client, f"Bearer {unsigned}"), "algorithm 'none'")


async def test_hs256_signed_with_the_public_key_is_refused(
    make: Factory, client: httpx.AsyncClient, settings: Settings
) -> None:
    """The classic key-confusion attack: HMAC keyed with the published public key."""
    org = await make.organization(K.POLICE)
    public_pem = make.signing_key.key.as_pem(private=False)
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims(settings, str(org.id))).encode())
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_unauthenticated(await call(client, f"Bearer {signing_input}.{b64(mac)}"), "algorithm 'HS256'")


@pytest.mark.parametrize(
    ("field", "value"),
    [("iss", "https://evil.example"), ("aud", "another-api"), ("sub", None)],
)
async def test_wrong_issuer_audience_or_subject(
    make: Factory, client: httpx.AsyncClient, settings: Settings, field: str, value: str | None
) -> None:
    org = await make.organization(K.POLICE)
    token = make.signing_key.sign(claims(settings, str(org.id), **{field: value}))
    assert_unauthenticated(await call(client, f"Bearer {token}"), "not valid")


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"org": "not-a-uuid"}, "'org'"),
        ({"org": None}, "'org'"),
        ({"roles": ["GOD"]}, "'roles'"),
        ({"roles": "ANALYST"}, "'roles'"),
    ],
)
async def test_claims_the_platform_cannot_use(
    make: Factory, client: httpx.AsyncClient, settings: Settings, overrides: dict[str, Any], says: str
) -> None:
    org = await make.organization(K.POLICE)
    token = make.signing_key.sign(claims(settings, str(org.id), **overrides))
    assert_unauthenticated(await call(client, f"Bearer {token}"), says)


async def test_organization_that_does_not_exist(make: Factory, client: httpx.AsyncClient, settings: Settings) -> None:
    token = make.signing_key.sign(claims(settings, str(uuid4())))
    assert_unauthenticated(await call(client, f"Bearer {token}"), "organization does not exist")


async def test_kind_comes_from_the_database_not_the_token(
    make: Factory, client: httpx.AsyncClient, settings: Settings
) -> None:
    """A company cannot claim to be police: the token carries no kind the platform would believe."""
    org = await make.organization(K.COMPANY)
    token = make.signing_key.sign(claims(settings, str(org.id), kind="POLICE", roles=["ORG_ADMIN"]))
    response = await client.post(
        "/graphql", json={"query": "{ me { organization { kind } } }"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["data"]["me"]["organization"]["kind"] == "COMPANY"


async def test_published_jwks_verifies_the_platforms_tokens(client: httpx.AsyncClient, make: Factory) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [k["kid"] for k in keys] == [make.signing_key.kid]
    assert all("d" not in k for k in keys), "the private part must never be published"
    org = await make.organization(K.HOTLINE)
    token = make.token(org, {Role.MEMBER})
    from joserfc.jwk import KeySet

    decoded = jwt.decode(token, KeySet.import_key_set(response.json()), algorithms=["ES256"])
    assert decoded.claims["org"] == str(org.id)


def test_settings_refuse_symmetric_algorithms() -> None:
    from api.settings import SettingsError

    with pytest.raises(SettingsError, match="asymmetric"):
        Settings.from_env({"TAKEDOWN_JWT_ALGORITHMS": "ES256,HS256"})
    with pytest.raises(SettingsError, match="asymmetric"):
        Settings.from_env({"TAKEDOWN_JWT_ALGORITHMS": "none"})


def test_subscription_recheck_interval_must_be_positive() -> None:
    """0 would make every open subscription query the database in a busy loop."""
    from api.settings import SettingsError

    for bad in ("0", "-1", "abc", "inf"):
        with pytest.raises(SettingsError, match="SUBSCRIPTION_RECHECK_SECONDS"):
            Settings.from_env({"TAKEDOWN_SUBSCRIPTION_RECHECK_SECONDS": bad})
    assert Settings.from_env({"TAKEDOWN_SUBSCRIPTION_RECHECK_SECONDS": "2.5"}).subscription_recheck_seconds == 2.5


def test_production_refuses_development_defaults() -> None:
    from api.settings import SettingsError

    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TAKEDOWN_ENV": "production"})
    for name in ("DATABASE_URL", "NATS_URL", "SIGNING_KEY", "JWT_ISSUER"):
        assert name in str(raised.value)


def test_rsa_keys_sign_too(settings: Settings) -> None:
    key = RSAKey.generate_key(2048, private=True)
    signing = SigningKey(key)
    assert signing.algorithm == "RS256"
    assert signing.jwks()["keys"][0]["alg"] == "RS256"


async def test_an_organizations_kind_is_read_once_per_process_but_a_clients_revocation_every_time(
    make: Factory, settings: Settings
) -> None:
    """Organizations are never updated or deleted, so their kind is remembered; an API client's
    revocation must still take effect at once, so client tokens always ask the database."""
    from datetime import UTC, datetime, timedelta

    from api.auth.tokens import TokenClaims
    from api.services.organizations import KnownOrganizations
    from api.services.viewers import viewer_for
    from api.store.pool import create_pool

    org = await make.organization(K.POLICE)
    known = KnownOrganizations()
    later = datetime.now(UTC) + timedelta(hours=1)
    user = TokenClaims(subject="officer", organization_id=org.id, roles=frozenset({Role.MEMBER}), client_id=None,
                       expires_at=later)
    pool = await create_pool(settings)
    assert (await viewer_for(pool, user, known)).organization_kind is K.POLICE
    assert known.kind(org.id) is K.POLICE
    await pool.close()
    # Without a database: the user's viewer comes from memory, a client's cannot.
    assert (await viewer_for(pool, user, known)).organization_kind is K.POLICE
    client = TokenClaims(subject="client:tdc_x", organization_id=org.id, roles=frozenset({Role.MEMBER}),
                         client_id="tdc_x", expires_at=later)
    with pytest.raises(Exception, match="closed|closing"):
        await viewer_for(pool, client, known)
