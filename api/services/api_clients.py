"""API clients: OAuth2 client-credentials identities registered per organization.

The secret is shown once and stored only as a SHA-256 digest: it is 256 random
bits, so a slow password hash would add cost without adding safety.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.errors import BadUserInput, Forbidden, NotFound
from ..domain.ids import to_global_id, uuid7
from ..domain.organizations import Role, Viewer, clean_name
from ..store import api_clients as store
from ..store import audit
from ..store import organizations as organizations_store


@dataclass(frozen=True)
class Registered:
    client: store.ApiClientRow
    secret: str


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(client: store.ApiClientRow, secret: str) -> bool:
    return hmac.compare_digest(client.secret_hash, hash_secret(secret))


async def register(
    pool: asyncpg.Pool, viewer: Viewer, *, organization_id: UUID, name: str, roles: frozenset[Role]
) -> Registered:
    access.require(viewer, access.Action.REGISTER_API_CLIENT, access.Relation(organization_id=organization_id))
    name = clean_name(name)
    if not roles:
        raise BadUserInput("an API client needs at least one role")
    if not access.may_grant(viewer, roles):
        missing = ", ".join(sorted(r.value for r in roles - viewer.roles))
        raise Forbidden(f"you cannot grant roles you do not hold: {missing}")
    secret = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        if await organizations_store.get(conn, organization_id) is None:
            raise NotFound("no Organization with that id")
        client = await store.insert(
            conn,
            id=uuid7(),
            organization_id=organization_id,
            name=name,
            client_id="tdc_" + secrets.token_urlsafe(18),
            secret_hash=hash_secret(secret),
            roles=roles,
        )
        await audit.append(conn, viewer, "api_client.register", to_global_id("ApiClient", client.id))
    return Registered(client, secret)


async def revoke(pool: asyncpg.Pool, viewer: Viewer, client_id: UUID) -> store.ApiClientRow:
    """Revoke at once; tokens already issued to the client stop working on their next request."""
    async with pool.acquire() as conn, conn.transaction():
        client = await store.get(conn, client_id)
        if client is None or not access.sees_api_client(viewer, organization_id=client.organization_id):
            raise NotFound("no ApiClient with that id")
        access.require(viewer, access.Action.REVOKE_API_CLIENT, access.Relation(organization_id=client.organization_id))
        revoked = await store.revoke(conn, client_id)
        assert revoked is not None
        await audit.append(conn, viewer, "api_client.revoke", to_global_id("ApiClient", client_id))
    return revoked


async def listed(pool: asyncpg.Pool, viewer: Viewer) -> list[store.ApiClientRow]:
    """A platform administrator sees every client; an organization administrator those of its organization."""
    if viewer.has(Role.PLATFORM_ADMIN):
        scope = None
    else:
        access.require(viewer, access.Action.LIST_API_CLIENTS, access.Relation(organization_id=viewer.organization_id))
        scope = viewer.organization_id
    async with pool.acquire() as conn:
        return await store.for_organization(conn, scope)


async def get_visible(pool: asyncpg.Pool, viewer: Viewer, client_id: UUID) -> store.ApiClientRow | None:
    async with pool.acquire() as conn:
        client = await store.get(conn, client_id)
    if client is None or not access.sees_api_client(viewer, organization_id=client.organization_id):
        return None
    return client


async def find_by_client_id(pool: asyncpg.Pool, client_id: str) -> store.ApiClientRow | None:
    async with pool.acquire() as conn:
        return await store.by_client_id(conn, client_id)


@dataclass(frozen=True)
class _ClientActor:
    organization_id: UUID
    subject: str


def client_subject(client: store.ApiClientRow) -> str:
    return f"client:{client.client_id}"


async def record_token_issued(pool: asyncpg.Pool, client: store.ApiClientRow) -> None:
    """Who obtained access, and when, is part of the record."""
    async with pool.acquire() as conn:
        actor = _ClientActor(client.organization_id, client_subject(client))
        await audit.append(conn, actor, "oauth.token.issue", to_global_id("ApiClient", client.id))
