"""Webhooks over GraphQL: create (secret shown once), delete, list, and each webhook's delivery attempts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from ..domain.errors import BadUserInput
from ..domain.ids import expect_global_id, to_global_id
from ..services import webhooks as service
from ..store.webhooks import Delivery, WebhookRow
from .context import Info
from .events import EventKind
from .types import Node

PREFETCH = 20  # the default of Webhook.deliveries(first)


@strawberry.type(name="WebhookDelivery")
class WebhookDeliveryType:
    event_id: strawberry.ID
    attempt: int
    at: datetime
    response_status: int | None
    succeeded: bool


@strawberry.type(name="Webhook")
class WebhookType(Node):
    row: strawberry.Private[WebhookRow]
    # Filled by the `webhooks` list in one query for all its webhooks (no query per webhook).
    prefetched: strawberry.Private[list[Delivery] | None]
    url: str
    event_types: list[EventKind]
    active: bool
    created_at: datetime

    @strawberry.field(description="Most recent deliveries first.")
    async def deliveries(self, info: Info, first: int | None = 20) -> list[WebhookDeliveryType]:
        limit = 20 if first is None else first
        if not 1 <= limit <= 200:
            raise BadUserInput(f"deliveries(first:) must be between 1 and 200, got {limit}")
        if self.prefetched is not None and limit <= PREFETCH:
            found = [self.prefetched[:limit]]
        else:
            found = await service.deliveries(info.context.pool, [self.row.id], limit)
        return [
            WebhookDeliveryType(
                event_id=strawberry.ID(to_global_id("Event", d.event_id)),
                attempt=d.attempt,
                at=d.at,
                response_status=d.response_status,
                succeeded=d.succeeded,
            )
            for d in found[0]
        ]

    @classmethod
    def from_row(cls, row: WebhookRow, prefetched: list[Delivery] | None = None) -> WebhookType:
        return cls(
            id=strawberry.ID(to_global_id("Webhook", row.id)),
            row=row,
            prefetched=prefetched,
            url=row.url,
            event_types=[EventKind[t] for t in row.event_types],
            active=row.active,
            created_at=row.created_at,
        )


@strawberry.input
class CreateWebhookInput:
    url: str = strawberry.field(description="https URL (http only for loopback addresses in development).")
    event_types: list[EventKind]
    idempotency_key: str | None = None


@strawberry.type
class CreateWebhookPayload:
    webhook: WebhookType
    secret: str = strawberry.field(description="HMAC-SHA256 signing secret; shown once.")


async def resolve_node(info: Info, key: UUID) -> WebhookType | None:
    row = await service.get_visible(info.context.pool, info.context.require_viewer(), key)
    return WebhookType.from_row(row) if row else None


@strawberry.type
class WebhookQuery:
    @strawberry.field
    async def webhooks(self, info: Info) -> list[WebhookType]:
        rows = await service.listed(info.context.pool, info.context.require_viewer())
        wanted = any(f.name == "deliveries" for s in info.selected_fields for f in s.selections if hasattr(f, "name"))
        if not rows or not wanted:
            return [WebhookType.from_row(r) for r in rows]
        found = await service.deliveries(info.context.pool, [r.id for r in rows], PREFETCH)
        return [WebhookType.from_row(r, d) for r, d in zip(rows, found, strict=True)]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookPayload:
        created = await service.create(
            info.context.pool,
            info.context.resources.protector,
            info.context.require_viewer(),
            url=input.url,
            event_types=[t.value for t in input.event_types],
            idempotency_key=input.idempotency_key,
            production=info.context.resources.settings.production,
            now=info.context.now,
        )
        return CreateWebhookPayload(webhook=WebhookType.from_row(created.webhook), secret=created.secret)

    @strawberry.mutation
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> bool:
        return await service.delete(
            info.context.pool, info.context.require_viewer(), expect_global_id(id, "Webhook"), now=info.context.now
        )
