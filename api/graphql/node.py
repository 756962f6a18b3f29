"""Query.node: any object by its opaque id, if the viewer may see it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

import strawberry

from ..domain.ids import from_global_id
from ..services import api_clients
from . import conferences, enforcement, events, notices, victim_alerts, webhooks
from .context import Info
from .types import ApiClientType, Node, OrganizationType


async def _organization(info: Info, key: UUID) -> Node | None:
    record = await info.context.loaders.organization.load(key)
    return OrganizationType.from_record(record) if record else None


async def _api_client(info: Info, key: UUID) -> Node | None:
    row = await api_clients.get_visible(info.context.pool, info.context.require_viewer(), key)
    return ApiClientType.from_row(row) if row else None


# Each later domain adds its type here; an id of another type resolves to null.
RESOLVERS: dict[str, Callable[[Info, UUID], Awaitable[Node | None]]] = {
    "Organization": _organization,
    "ApiClient": _api_client,
    "Notice": notices.resolve_node,
    "EnforcementCase": enforcement.resolve_node,
    "Conference": conferences.resolve_conference,
    "Agreement": conferences.resolve_agreement,
    "Commitment": conferences.resolve_commitment,
    "VictimAlert": victim_alerts.resolve_node,
    "Event": events.resolve_node,
    "Webhook": webhooks.resolve_node,
}


@strawberry.type
class NodeQuery:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        info.context.require_viewer()
        type_name, key = from_global_id(id)
        resolver = RESOLVERS.get(type_name)
        return await resolver(info, key) if resolver else None
