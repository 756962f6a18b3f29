"""Who is who: me, organizations, and API client administration."""

from __future__ import annotations

import strawberry

from ..domain.ids import expect_global_id
from ..domain.organizations import OrganizationKind, Role
from ..services import api_clients, organizations
from ..store import organizations as organizations_store
from .context import Info
from .types import ApiClientType, OrganizationType, RegisteredApiClient, ViewerType


@strawberry.type
class AdministrationQuery:
    @strawberry.field
    def me(self, info: Info) -> ViewerType:
        return ViewerType(record=info.context.require_viewer())

    @strawberry.field
    async def organizations(self, info: Info, kind: OrganizationKind | None = None) -> list[OrganizationType]:
        info.context.require_viewer()
        async with info.context.pool.acquire() as conn:
            records = await organizations_store.all(conn, kind)
        return [OrganizationType.from_record(r) for r in records]

    @strawberry.field
    async def api_clients(self, info: Info) -> list[ApiClientType]:
        rows = await api_clients.listed(info.context.pool, info.context.require_viewer())
        return [ApiClientType.from_row(r) for r in rows]


@strawberry.type
class AdministrationMutation:
    @strawberry.mutation
    async def create_organization(
        self, info: Info, name: str, kind: OrganizationKind, country: str | None = None
    ) -> OrganizationType:
        record = await organizations.create_organization(
            info.context.pool, info.context.require_viewer(), name=name, kind=kind, country=country
        )
        return OrganizationType.from_record(record)

    @strawberry.mutation(description="Returns the client secret once, in clientSecret.")
    async def register_api_client(
        self, info: Info, organization_id: strawberry.ID, name: str, roles: list[Role]
    ) -> RegisteredApiClient:
        registered = await api_clients.register(
            info.context.pool,
            info.context.require_viewer(),
            organization_id=expect_global_id(organization_id, "Organization"),
            name=name,
            roles=frozenset(roles),
        )
        return RegisteredApiClient(client=ApiClientType.from_row(registered.client), client_secret=registered.secret)

    @strawberry.mutation
    async def revoke_api_client(self, info: Info, id: strawberry.ID) -> ApiClientType:
        row = await api_clients.revoke(info.context.pool, info.context.require_viewer(), expect_global_id(id, "ApiClient"))
        return ApiClientType.from_row(row)
