"""Bearer token verification: signature, algorithm allow-list, issuer, audience, expiry.

Every failure is UNAUTHENTICATED with a short reason; nothing about a bad
token ever becomes a 500. The token's unverified `iss` only picks which key set
to verify against; it is then checked like every other claim.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from ..domain.errors import Unauthenticated
from ..domain.organizations import Role
from ..settings import Settings
from .external import ExternalJwks
from .keys import SigningKey

MAX_TOKEN_LENGTH = 8192
# Tokens whose signature was verified, kept so a client's next request skips the signature
# check (an ES256 verification was ~6% of a read's CPU). Bounded; least recently used go first.
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    organization_id: UUID
    roles: frozenset[Role]
    client_id: str | None
    expires_at: datetime


class TokenVerifier:
    def __init__(self, settings: Settings, signing_key: SigningKey, external: ExternalJwks | None = None) -> None:
        self.settings = settings
        self.algorithms = list(settings.jwt_algorithms)
        self.own_keys = signing_key.key_set()
        self.external = external
        self.own_claims = _registry(settings.jwt_issuer, settings.jwt_audience, settings.jwt_leeway_seconds)
        self.external_claims = (
            _registry(settings.external_issuer, settings.jwt_audience, settings.jwt_leeway_seconds)
            if settings.external_issuer
            else None
        )
        # token -> what verifying it found. An entry counts only while the key set that verified it
        # is current, so a refreshed JWKS (a key withdrawn) is verified afresh.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    async def verify(self, token: str) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("the bearer token is missing or too long")
        cached = self._verified.get(token)
        header, unverified = (cached.header, cached.claims) if cached is not None else _peek(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise Unauthenticated(f"token algorithm {str(alg)[:20]!r} is not accepted")
        issuer = unverified.get("iss")
        if self.external is not None and self.external_claims is not None and issuer == self.settings.external_issuer:
            keys: KeySet = await self.external.key_set(header.get("kid") if isinstance(header.get("kid"), str) else None)
            registry = self.external_claims
        else:
            keys, registry = self.own_keys, self.own_claims
        try:
            if cached is not None and cached.keys is keys:
                self._verified.move_to_end(token)
            else:
                claims = jwt.decode(token, keys, algorithms=self.algorithms).claims
                cached = self._remember(token, _Verified(keys, header, claims))
            # Expiry, issuer and audience are checked on every use, remembered signature or not.
            registry.validate(cached.claims)
        except ExpiredTokenError:
            raise Unauthenticated("the token has expired") from None
        except JoseError as exc:
            raise Unauthenticated(f"the token is not valid: {exc.error}") from None
        except (ValueError, TypeError, KeyError):
            raise Unauthenticated("the token is not valid") from None
        if cached.result is None:
            cached.result = _to_claims(cached.claims)
        return cached.result

    def _remember(self, token: str, verified: _Verified) -> _Verified:
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified


@dataclass
class _Verified:
    """A token whose signature `keys` verified: its parts decoded once, its claims read once (the
    verified claims are the payload peeked at before, so they stand for it on later uses)."""

    keys: KeySet
    header: dict[str, Any]
    claims: dict[str, Any]
    result: TokenClaims | None = None


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def _registry(issuer: str, audience: str, leeway: int) -> JWTClaimsRegistry:
    return JWTClaimsRegistry(
        leeway=leeway,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    )


def _b64json(segment: str) -> dict[str, Any]:
    data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("the token is malformed")
    try:
        return _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, UnicodeDecodeError):
        raise Unauthenticated("the token is malformed") from None


def _to_claims(claims: dict[str, Any]) -> TokenClaims:
    try:
        organization_id = UUID(str(claims["org"]))
        raw_roles = claims.get("roles", [])
        if not isinstance(raw_roles, list):
            raise ValueError("roles")
        roles = frozenset(Role(r) for r in raw_roles)
        subject = str(claims["sub"])
        expires_at = datetime.fromtimestamp(float(claims["exp"]), UTC)  # present: the registry requires it
    except (KeyError, ValueError, TypeError, OverflowError, OSError):
        raise Unauthenticated("the token lacks a valid 'org', 'roles' or 'sub' claim") from None
    client_id = claims.get("client_id")
    return TokenClaims(subject, organization_id, roles, client_id if isinstance(client_id, str) else None, expires_at)
