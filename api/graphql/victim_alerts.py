"""Victim alerts over GraphQL: shown to the registering organization alone."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from ..domain.ids import expect_global_id, to_global_id
from ..domain.notices import ContentHash
from ..domain.victim_alerts import Match, VictimAlert
from ..services import victim_alerts as service
from ..services.notice_reads import visible
from ..store import victim_alerts as store
from .context import Info
from .notices import ContentHashInput, ContentHashType, NoticeType
from .types import Node


@strawberry.type(name="VictimAlertMatch")
class VictimAlertMatchType:
    at: datetime
    notice: NoticeType

    @strawberry.field(description="True when the matched notice reached REMOVED or VERIFIED_OFFLINE.")
    def removed(self) -> bool:
        # Matches are recorded when the notice reaches REMOVED or VERIFIED_OFFLINE; if it has
        # reappeared since (verifyNotice STILL_ONLINE), it is no longer removed.
        return self.notice.seen.notice.removed_at is not None


@strawberry.type(
    name="VictimAlert",
    description="A request, held by police or a hotline on behalf of a victim, to be told when matching content is "
    "taken down.\nThe victim is known only by an opaque token that means something to the holding organization alone.",
)
class VictimAlertType(Node):
    record: strawberry.Private[VictimAlert]
    created_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def of(cls, alert: VictimAlert) -> VictimAlertType:
        return cls(
            id=strawberry.ID(to_global_id("VictimAlert", alert.id)),
            record=alert,
            created_at=alert.created_at,
            cancelled_at=alert.cancelled_at,
        )

    @strawberry.field
    def victim_token(self, info: Info) -> str:
        return service.token_of(info.context.resources.protector, self.record)

    @strawberry.field
    async def content_hashes(self, info: Info) -> list[ContentHashType]:
        found: list[ContentHash] = await info.context.loaders.keyed("victim_alert.hashes", store.hashes).load(self.record.id)
        return [ContentHashType(algorithm=h.algorithm, value=h.value) for h in found]

    @strawberry.field
    async def matches(self, info: Info) -> list[VictimAlertMatchType]:
        viewer = info.context.require_viewer()
        found: list[Match] = await info.context.loaders.keyed("victim_alert.matches", store.matches).load(self.record.id)
        notices = await info.context.loaders.notice.load_many([m.notice_id for m in found])
        return [
            VictimAlertMatchType(at=m.at, notice=NoticeType.of(seen))
            for m, n in zip(found, notices, strict=True)
            if (seen := visible(viewer, n)) is not None
        ]


@strawberry.input
class RegisterVictimAlertInput:
    victim_token: str
    content_hashes: list[ContentHashInput]
    idempotency_key: str | None = None


async def resolve_node(info: Info, key: UUID) -> VictimAlertType | None:
    found = await info.context.loaders.keyed("victim_alert", store.by_ids).load(key)
    return VictimAlertType.of(found) if service.sees(info.context.require_viewer(), found) and found else None


@strawberry.type
class VictimAlertQuery:
    @strawberry.field
    async def victim_alerts(self, info: Info) -> list[VictimAlertType]:
        return [VictimAlertType.of(a) for a in await service.alerts_of(info.context.pool, info.context.require_viewer())]


@strawberry.type
class VictimAlertMutation:
    @strawberry.mutation
    async def register_victim_alert(self, info: Info, input: RegisterVictimAlertInput) -> VictimAlertType:
        alert = await service.register(
            info.context.pool,
            info.context.resources.protector,
            info.context.require_viewer(),
            victim_token=input.victim_token,
            content_hashes=[(h.algorithm.value, h.value) for h in input.content_hashes],
            idempotency_key=input.idempotency_key,
            now=info.context.now,
        )
        return VictimAlertType.of(alert)

    @strawberry.mutation
    async def cancel_victim_alert(self, info: Info, id: strawberry.ID) -> VictimAlertType:
        alert = await service.cancel(
            info.context.pool, info.context.require_viewer(), expect_global_id(id, "VictimAlert"), now=info.context.now
        )
        return VictimAlertType.of(alert)
