"""The audit log as administrators read it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ..services import audit
from ..store.audit import AuditEntry
from . import cursors
from .context import Info
from .types import OrganizationType, PageInfo, load_organization


@strawberry.type(name="AuditEntry")
class AuditEntryType:
    entry: strawberry.Private[AuditEntry]
    at: datetime
    subject: str
    action: str
    object_id: strawberry.ID
    chain_hash: str = strawberry.field(
        description="Hex SHA-256 over the previous entry's hash and this entry; a broken chain shows tampering."
    )

    @strawberry.field(description="Organization and subject that read or changed the data.")
    async def organization(self, info: Info) -> OrganizationType:
        return await load_organization(info, self.entry.organization_id)


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntryType


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo


def _cursor(seq: int) -> str:
    return cursors.encode("audit", seq)


def _after(cursor: str | None) -> int | None:
    return cursors.decode(cursor, "audit", cursors.sequence, "the audit log")


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Platform and organization admins: who read or changed what. "
        "An organization admin sees its own organization's entries."
    )
    async def audit_log(
        self, info: Info, object_id: strawberry.ID | None = None, first: int | None = 100, after: str | None = None
    ) -> AuditEntryConnection:
        page = await audit.read_log(
            info.context.pool, info.context.require_viewer(), object_id=object_id, first=100 if first is None else first, after=_after(after)
        )
        edges = [
            AuditEntryEdge(
                cursor=_cursor(e.seq),
                node=AuditEntryType(
                    entry=e, at=e.at, subject=e.subject, action=e.action,
                    object_id=strawberry.ID(e.object_id), chain_hash=e.chain_hash,
                ),
            )
            for e in page.entries
        ]
        return AuditEntryConnection(
            edges=edges, page_info=PageInfo(has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None)
        )

    @strawberry.field(description="True when the audit chain verifies from its first entry to its last.")
    async def audit_chain_intact(self, info: Info) -> bool:
        return await audit.chain_intact(info.context.pool, info.context.require_viewer())
