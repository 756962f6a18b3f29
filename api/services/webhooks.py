"""Webhooks: registering them (ORG_ADMIN of the organization, or PLATFORM_ADMIN), and signing deliveries.

- The URL must be https; plain http only to a loopback address outside
  production. In production a URL whose host resolves to a private,
  link-local, loopback, multicast or reserved address is refused (no
  server-side request forgery into the platform's own network); the check is
  repeated at every delivery, because DNS answers change.
- The signing secret (Standard Webhooks: `whsec_` + base64 of 32 random bytes)
  is shown once. It must stay usable for signing, so it is stored encrypted
  (AES-GCM bound to the webhook id, the URL protector's keys), never in the clear.
- Signatures follow Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256
  over "<webhook-id>.<webhook-timestamp>.<body>">`, keyed with the decoded secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.errors import BadUserInput, NotFound
from ..domain.ids import to_global_id, uuid7
from ..domain.organizations import Role, Viewer
from ..protect import UrlProtector
from ..store import audit
from ..store import webhooks as store
from ..store.idempotency import IdempotencyKey, claim_keys, record_keys
from .events import key_of

SECRET_PREFIX = "whsec_"
URL_MAX = 2048
MAX_PER_ORGANIZATION = 50


@dataclass(frozen=True)
class Created:
    webhook: store.WebhookRow
    secret: str


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def secret_of(protector: UrlProtector, webhook: store.WebhookRow) -> str:
    return protector.decrypt(webhook.id, webhook.secret_ciphertext, webhook.secret_key_id)


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """IPv4 reachable through an IPv6 form: mapped, 6to4, Teredo, NAT64, or IPv4-compatible."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or (int(address) >> 32 == 0 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded_ipv4(address)) is not None:
        if _refused(inner):
            return True
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


async def resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise BadUserInput(f"url: the host {host!r} does not resolve") from None
    except (UnicodeError, ValueError):
        raise BadUserInput(f"url: {host[:80]!r} is not a valid host name") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """Where a delivery connects: the checked address itself, so DNS cannot change between check and connect."""

    url: str  # with the checked IP address in place of the host name
    host_header: str
    sni_hostname: str | None


async def pinned_target(url: str, *, production: bool) -> Target:
    """Resolve and check once, then connect to exactly what was checked (no DNS-rebinding window)."""
    checked = await check_url(url, production=production)
    parts = urlsplit(checked)
    host = (parts.hostname or "").rstrip(".")
    addresses = await resolve(host)
    allowed = [a for a in addresses if not (production and _refused(a))]
    if not allowed:
        raise BadUserInput("url resolves to a private, loopback, link-local or reserved address")
    address = allowed[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    return Target(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host_header=parts.netloc,
        sni_hostname=host if parts.scheme == "https" else None,
    )


async def check_url(url: str, *, production: bool) -> str:
    """The URL if it may receive deliveries; BAD_USER_INPUT with the reason otherwise."""
    text = url.strip()
    if not text or len(text) > URL_MAX or any(c.isspace() for c in text):
        raise BadUserInput(f"url must be a URL of at most {URL_MAX} characters without spaces")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise BadUserInput(f"url is not a valid URL: {exc}") from None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("https", "http") or not host:
        raise BadUserInput("url must be an https URL")
    if parts.username or parts.password:
        raise BadUserInput("url must not carry credentials")
    addresses = await resolve(host)
    if not addresses:
        raise BadUserInput(f"url: the host {host!r} does not resolve")
    if parts.scheme == "http" and (production or not all(a.is_loopback for a in addresses)):
        raise BadUserInput("url must be https (http is accepted only for loopback addresses in development)")
    if production and any(_refused(a) for a in addresses):
        raise BadUserInput("url resolves to a private, loopback, link-local or reserved address")
    return text


def _may_administer(viewer: Viewer, organization_id: UUID) -> bool:
    return access.may(viewer, access.Action.CREATE_WEBHOOK, access.Relation(organization_id=organization_id))


async def create(
    pool: asyncpg.Pool,
    protector: UrlProtector,
    viewer: Viewer,
    *,
    url: str,
    event_types: list[str],
    idempotency_key: str | None,
    production: bool,
    now: datetime,
) -> Created:
    """For the viewer's own organization. A repeated idempotency key returns the first webhook and its secret."""
    access.require(viewer, access.Action.CREATE_WEBHOOK, access.Relation(organization_id=viewer.organization_id))
    if not event_types:
        raise BadUserInput("eventTypes must name at least one event type")
    types = tuple(dict.fromkeys(event_types))
    for name in types:
        key_of(name)  # validates
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise BadUserInput("idempotencyKey must be 1 to 200 characters")
    checked = await check_url(url, production=production)
    async with pool.acquire() as conn, conn.transaction():
        keyed = [IdempotencyKey(idempotency_key, 0)] if idempotency_key else []
        earlier = await claim_keys(conn, viewer, "createWebhook", keyed)
        if earlier:
            previous = await store.get(conn, next(iter(earlier.values())).result_id)
            if previous is None:
                raise NotFound("the webhook created with this idempotency key was deleted")
            return Created(previous, secret_of(protector, previous))
        if len(await store.listed(conn, viewer.organization_id)) >= MAX_PER_ORGANIZATION:
            raise BadUserInput(f"an organization may have at most {MAX_PER_ORGANIZATION} webhooks")
        webhook_id = uuid7()
        secret = new_secret()
        ciphertext, key_id = protector.encrypt(webhook_id, secret)
        row = await store.insert(
            conn,
            store.WebhookRow(webhook_id, viewer.organization_id, checked, types, ciphertext, key_id, True, now),
        )
        await record_keys(conn, viewer, "createWebhook", [(k, row.id, False) for k in keyed])
        await audit.append(conn, viewer, "webhook.create", to_global_id("Webhook", row.id))
    return Created(row, secret)


async def delete(pool: asyncpg.Pool, viewer: Viewer, webhook_id: UUID, *, now: datetime) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        row = await store.get(conn, webhook_id)
        if row is None or not _may_administer(viewer, row.organization_id):
            raise NotFound("no Webhook with that id")
        deleted = await store.delete(conn, webhook_id, now)
        await audit.append(conn, viewer, "webhook.delete", to_global_id("Webhook", webhook_id))
    return deleted


async def listed(pool: asyncpg.Pool, viewer: Viewer) -> list[store.WebhookRow]:
    """A platform administrator sees every webhook; an organization administrator those of its organization."""
    if viewer.has(Role.PLATFORM_ADMIN):
        scope = None
    else:
        access.require(viewer, access.Action.CREATE_WEBHOOK, access.Relation(organization_id=viewer.organization_id))
        scope = viewer.organization_id
    async with pool.acquire() as conn:
        return await store.listed(conn, scope)


async def get_visible(pool: asyncpg.Pool, viewer: Viewer, webhook_id: UUID) -> store.WebhookRow | None:
    async with pool.acquire() as conn:
        row = await store.get(conn, webhook_id)
    return row if row is not None and _may_administer(viewer, row.organization_id) else None


async def deliveries(pool: asyncpg.Pool, webhook_ids: list[UUID], first: int) -> list[list[store.Delivery]]:
    async with pool.acquire() as conn:
        return await store.deliveries(conn, webhook_ids, first)
