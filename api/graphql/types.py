"""GraphQL object types shared across domains, mapped from domain objects."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ..domain.ids import to_global_id
from ..domain.organizations import Organization as OrganizationRecord
from ..domain.organizations import OrganizationKind, Role
from ..domain.organizations import Viewer as ViewerRecord
from ..store.api_clients import ApiClientRow
from .context import Info

OrganizationKindEnum = strawberry.enum(OrganizationKind, name="OrganizationKind")
RoleEnum = strawberry.enum(
    Role,
    name="Role",
    description="What a member of an organization may do beyond reading.",
)


@strawberry.interface(name="Node")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(name="Organization")
class OrganizationType(Node):
    name: str
    kind: OrganizationKind
    country: str | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: OrganizationRecord) -> OrganizationType:
        return cls(
            id=strawberry.ID(to_global_id("Organization", record.id)),
            name=record.name,
            kind=record.kind,
            country=record.country,
            created_at=record.created_at,
        )


async def load_organization(info: Info, organization_id: object) -> OrganizationType:
    record = await info.context.loaders.organization.load(organization_id)  # type: ignore[arg-type]
    if record is None:
        raise RuntimeError(f"organization {organization_id} referenced but missing")
    return OrganizationType.from_record(record)


@strawberry.type(name="Viewer")
class ViewerType:
    record: strawberry.Private[ViewerRecord]

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType:
        return await load_organization(info, self.record.organization_id)

    @strawberry.field
    def roles(self) -> list[Role]:
        return sorted(self.record.roles, key=lambda r: list(Role).index(r))

    @strawberry.field(description="The OAuth2 subject (user or API client) of the token.")
    def subject(self) -> str:
        return self.record.subject


@strawberry.type(name="ApiClient")
class ApiClientType(Node):
    row: strawberry.Private[ApiClientRow]
    name: str
    client_id: str
    created_at: datetime
    revoked_at: datetime | None

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType:
        return await load_organization(info, self.row.organization_id)

    @strawberry.field
    def roles(self) -> list[Role]:
        return sorted(self.row.roles, key=lambda r: list(Role).index(r))

    @classmethod
    def from_row(cls, row: ApiClientRow) -> ApiClientType:
        return cls(
            id=strawberry.ID(to_global_id("ApiClient", row.id)),
            row=row,
            name=row.name,
            client_id=row.client_id,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


@strawberry.type
class RegisteredApiClient:
    client: ApiClientType
    client_secret: str
