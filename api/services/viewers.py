"""From verified token claims to the viewer the access policy reasons about."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from ..auth.tokens import TokenClaims, TokenVerifier, bearer_token
from ..domain.errors import Unauthenticated
from ..domain.organizations import Viewer
from ..store import viewers as store
from .organizations import KnownOrganizations


async def viewer_for(pool: asyncpg.Pool, claims: TokenClaims, known: KnownOrganizations | None = None) -> Viewer:
    """The organization's kind comes from the database (or what this process read of it), never from
    the token; an API client's revocation is looked up on every use, so it is refused at once."""
    kind = known.kind(claims.organization_id) if known is not None and claims.client_id is None else None
    if kind is None:
        async with pool.acquire() as conn:
            facts = await store.facts(conn, claims.organization_id, claims.client_id)
        if facts is None:
            raise Unauthenticated("the token's organization does not exist")
        if claims.client_id is not None and (
            facts.client_organization_id != claims.organization_id or facts.client_revoked
        ):
            raise Unauthenticated("the token's API client is revoked or unknown")
        kind = facts.kind
        if known is not None:
            known.remember_kind(claims.organization_id, kind)
    return Viewer(
        subject=claims.subject,
        organization_id=claims.organization_id,
        organization_kind=kind,
        roles=claims.roles,
        client_id=claims.client_id,
        expires_at=claims.expires_at,
    )


def expiry_deadline(viewer: Viewer, leeway: timedelta) -> datetime | None:
    """When the viewer's token stops being accepted (None: never, or beyond what a datetime holds)."""
    if viewer.expires_at is None:
        return None
    try:
        return viewer.expires_at + leeway
    except OverflowError:
        return None


async def still_valid(pool: asyncpg.Pool, viewer: Viewer, *, now: datetime, leeway: timedelta) -> None:
    """For a connection that outlives a request (a subscription): its token has not expired since,
    its organization still exists and its API client has not been revoked. UNAUTHENTICATED if not."""
    deadline = expiry_deadline(viewer, leeway)
    if deadline is not None and now >= deadline:
        raise Unauthenticated("the token has expired; reconnect with a fresh token and resume from your last cursor")
    async with pool.acquire() as conn:
        facts = await store.facts(conn, viewer.organization_id, viewer.client_id)
    if facts is None:
        raise Unauthenticated("the token's organization does not exist")
    if viewer.client_id is not None and (facts.client_organization_id != viewer.organization_id or facts.client_revoked):
        raise Unauthenticated("the token's API client is revoked or unknown")


async def authenticate(
    pool: asyncpg.Pool, verifier: TokenVerifier, authorization: str | None, known: KnownOrganizations | None = None
) -> Viewer:
    """An Authorization header value to a viewer, or UNAUTHENTICATED saying what is wrong."""
    claims = await verifier.verify(bearer_token(authorization))
    return await viewer_for(pool, claims, known)
