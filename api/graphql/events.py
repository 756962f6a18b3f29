"""Events over GraphQL: the paged query and the live, resumable subscription (EVENTS.md).

Both read the same stream (the events table, in commit order) through the same
rule (api/services/events.py): only events about objects the viewer may see
now, with the object redacted to its tier at delivery.

Subscription.events(after): register with the process's live hub FIRST, then
replay from PostgreSQL up to the head, then serve live events, dropping any
whose cursor is at or below the last one sent. Anything committed before the
registration is in the replay; anything published after it is in the feed; the
overlap is removed by cursor: no gap, no duplicate, across reconnects too
(the client passes the last cursor it got).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

import strawberry
from graphql import GraphQLError
from starlette.websockets import WebSocket

from ..domain.errors import BadUserInput, Unauthenticated, Unavailable
from ..domain.ids import expect_global_id, from_global_id, to_global_id
from ..domain.organizations import OrganizationKind, Viewer
from ..messaging.hub import FeedOverflow, LiveEvent
from ..resources import Resources
from ..services import events as service
from ..services.events import Delivered
from ..services.viewers import expiry_deadline, still_valid
from ..store import event_reads
from ..store.event_reads import EventRecord
from . import conferences, cursors, enforcement, victim_alerts
from .conferences import AgreementType, CommitmentType, ConferenceType
from .context import Info, Loaders
from .enforcement import EnforcementCaseType
from .notices import NoticeType
from .types import Node, PageInfo
from .victim_alerts import VictimAlertType

EventKind = Enum(  # type: ignore[misc]
    "EventKind",
    {
        name: name
        for name in (
            "NOTICE_REPORTED NOTICE_ACKNOWLEDGED NOTICE_REMOVED NOTICE_REFUSED NOTICE_VERIFIED NOTICE_REAPPEARED "
            "NOTICE_OVERDUE NOTICE_ESCALATED NOTICE_WITHDRAWN NOTICE_PRESERVATION_REQUESTED ENFORCEMENT_OPENED "
            "ENFORCEMENT_WARNING_SENT ENFORCEMENT_ORDER_ISSUED ENFORCEMENT_OBJECTION_FILED ENFORCEMENT_COMPLIED "
            "ENFORCEMENT_PENALTY_IMPOSED ENFORCEMENT_CLOSED CONFERENCE_CREATED AGREEMENT_CREATED "
            "AGREEMENT_STATUS_CHANGED COMMITMENT_ADDED COMMITMENT_UPDATED COMMITMENT_OVERDUE VICTIM_ALERT_MATCHED"
        ).split()
    },
)
EventTypeEnum = strawberry.enum(EventKind, name="EventType")

REPLAY_PAGE = 500


def encode_cursor(seq: int) -> str:
    return cursors.encode("event", seq)


def decode_cursor(cursor: str | None) -> int:
    return cursors.decode(cursor, "event", cursors.sequence, "events") or 0


@strawberry.type(name="Event")
class EventNode(Node):
    delivered: strawberry.Private[Delivered]
    cursor: str = strawberry.field(description="Opaque, ordered position in the event stream; pass it as `after` to resume.")
    type: EventKind
    occurred_at: datetime
    actor_kind: OrganizationKind | None

    @strawberry.field(description="Set for NOTICE_* and VICTIM_ALERT_MATCHED events, redacted for the viewer.")
    def notice(self) -> NoticeType | None:
        seen = self.delivered.notice
        return NoticeType.of(seen) if seen is not None else None

    # The other aggregates resolve through their own node resolvers, which apply their
    # own tiers; the subscription gives each event fresh loaders, so the state is current.
    @strawberry.field
    async def enforcement_case(self, info: Info) -> EnforcementCaseType | None:
        key = self._aggregate("enforcement")
        return await enforcement.resolve_node(info, key) if key else None

    @strawberry.field
    async def agreement(self, info: Info) -> AgreementType | None:
        key = self._aggregate("agreement")
        return await conferences.resolve_agreement(info, key) if key else None

    @strawberry.field
    async def commitment(self, info: Info) -> CommitmentType | None:
        key = self._aggregate("commitment")
        return await conferences.resolve_commitment(info, key) if key else None

    @strawberry.field
    async def conference(self, info: Info) -> ConferenceType | None:
        record = self.delivered.record
        if record.aggregate not in event_reads.CONFERENCE_SCOPED:
            return None
        try:
            key = UUID(record.scope)
        except ValueError:
            return None
        return await conferences.resolve_conference(info, key)

    @strawberry.field
    async def victim_alert(self, info: Info) -> VictimAlertType | None:
        key = self._aggregate("victim_alert")
        return await victim_alerts.resolve_node(info, key) if key else None

    def _aggregate(self, aggregate: str) -> UUID | None:
        record = self.delivered.record
        if record.aggregate != aggregate:
            return None
        try:
            return from_global_id(str(record.envelope.get("subject", "")))[1]
        except BadUserInput:
            return None

    @classmethod
    def of(cls, delivered: Delivered) -> EventNode:
        record = delivered.record
        actor = record.envelope.get("tdactorkind")
        return cls(
            id=strawberry.ID(to_global_id("Event", record.id)),
            delivered=delivered,
            cursor=encode_cursor(record.seq),
            type=EventKind[service.type_name(record.key)],
            occurred_at=record.occurred_at,
            actor_kind=OrganizationKind(str(actor)) if actor in OrganizationKind.__members__ else None,
        )


@strawberry.type
class EventEdge:
    cursor: str
    node: EventNode


@strawberry.type
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo


@strawberry.input
class EventFilter:
    types: list[EventKind] | None = None
    provider_ids: list[strawberry.ID] | None = None


def _wanted(given: EventFilter | None) -> service.Wanted:
    if given is None:
        return service.Wanted()
    return service.wanted(
        [t.value for t in given.types] if given.types is not None else None,
        [expect_global_id(p, "Organization") for p in given.provider_ids] if given.provider_ids is not None else None,
    )


async def resolve_node(info: Info, key: UUID) -> EventNode | None:
    viewer = info.context.require_viewer()
    async with info.context.pool.acquire() as conn:
        record = await event_reads.by_id(conn, key)
        if record is None:
            return None
        delivered = await service.readable(conn, viewer, [record])
    return EventNode.of(delivered[0]) if delivered and _known(delivered[0]) else None


@strawberry.type
class EventQuery:
    @strawberry.field(description="The events the viewer may see, oldest first; the same stream as Subscription.events.")
    async def events(
        self, info: Info, filter: EventFilter | None = None, first: int | None = 100, after: str | None = None
    ) -> EventConnection:
        page = await service.page(
            info.context.pool,
            info.context.require_viewer(),
            _wanted(filter),
            after=decode_cursor(after),
            first=100 if first is None else first,
        )
        edges = [EventEdge(cursor=encode_cursor(d.record.seq), node=EventNode.of(d)) for d in page.items if _known(d)]
        end = encode_cursor(page.last_seq) if page.last_seq else None
        return EventConnection(edges=edges, page_info=PageInfo(has_next_page=page.has_next, end_cursor=end))


def _known(delivered: Delivered) -> bool:
    """An event type this schema version does not name (a newer writer) is skipped, not an error."""
    return service.type_name(delivered.record.key) in EventKind.__members__


def slow_consumer(last: int) -> GraphQLError:
    return GraphQLError(
        "the subscriber fell too far behind and was cut off; subscribe again with `after` set to the last cursor received",
        # A contract code (the client should come back later), with the reason and where to resume.
        extensions={"code": "UNAVAILABLE", "reason": "SLOW_CONSUMER", "resumeAfter": encode_cursor(last) if last else None},
    )


@strawberry.type
class EventSubscription:
    @strawberry.subscription(
        description="Live events the viewer may see, redacted for the viewer. With `after`, first replays what came "
        "since that cursor, then goes live, with no gap and no duplicate."
    )
    async def events(
        self, info: Info, filter: EventFilter | None = None, after: str | None = None
    ) -> AsyncGenerator[EventNode, None]:
        context = info.context
        viewer = context.require_viewer()
        want = _wanted(filter)
        last = decode_cursor(after) if after is not None else None
        hub = context.resources.hub
        try:
            await hub.start()
        except Exception:
            raise Unavailable("the event stream is unavailable; try again shortly") from None

        lifetime = _Lifetime(context.resources, viewer)
        try:
            with hub.feed(service.live_patterns(viewer)) as feed:
                if last is None:
                    last = await service.head(context.pool)  # no cursor: from now on
                # Replay from the system of record until caught up. An overflow of the live
                # feed meanwhile is harmless: PostgreSQL has everything, so keep replaying.
                while True:
                    await lifetime.check()
                    feed.reset()
                    page = await service.page(context.pool, viewer, want, after=last, first=REPLAY_PAGE)
                    for delivered in [d for d in page.items if _known(d)]:
                        await lifetime.check()  # per event: an expiry mid-page stops right there
                        context.loaders = Loaders(context.resources)
                        yield EventNode.of(delivered)
                        last = delivered.record.seq
                    last = max(last, page.last_seq)
                    if not page.has_next and not feed.overflowed:
                        break

                while True:
                    await lifetime.check()
                    try:
                        items = feed.pending()
                        if not items:
                            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow this task's own
                            # cancellation when the item arrives in the same loop step.
                            async with asyncio.timeout(lifetime.seconds_left()):
                                items = [await feed.get()]
                    except TimeoutError:
                        continue  # time to look at the viewer again
                    except FeedOverflow:
                        _disconnect_soon(context.request, SLOW_CONSUMER_CLOSE_CODE, "too far behind; resume with your cursor")
                        raise slow_consumer(last) from None
                    fresh = [i for i in items if i.seq > last and want.matches(_record(i))]
                    if not fresh:
                        continue
                    deliverable = await service.readable_live(
                        context.pool,
                        context.resources.notice_snapshots,
                        viewer,
                        [_record(i) for i in fresh],
                        arrived=[i.received for i in fresh],
                    )
                    for delivered in [d for d in deliverable if _known(d)]:
                        await lifetime.check()
                        context.loaders = Loaders(context.resources)  # current state, not cached
                        yield EventNode.of(delivered)
                        last = delivered.record.seq
                    last = max(last, fresh[-1].seq)
        except Unauthenticated as error:
            _disconnect_soon(context.request, UNAUTHORIZED_CLOSE_CODE, "the token expired or was revoked")
            raise GraphQLError(
                error.message,
                extensions={"code": "UNAUTHENTICATED", "resumeAfter": encode_cursor(last) if last else None},
            ) from None


class _Lifetime:
    """When an open subscription looks at its viewer again: at its token's expiry (plus the
    leeway every request gets) and every `subscription_recheck_seconds`, since an API client
    can be revoked while connected. A subscription never outlives what a request could do."""

    def __init__(self, resources: Resources, viewer: Viewer) -> None:
        self.resources = resources
        self.viewer = viewer
        self.leeway = timedelta(seconds=resources.settings.jwt_leeway_seconds)
        self._loop = asyncio.get_running_loop()
        self._due = self._next()

    def _next(self) -> float:
        due = self._loop.time() + self.resources.settings.subscription_recheck_seconds
        deadline = expiry_deadline(self.viewer, self.leeway)
        if deadline is not None:
            due = min(due, self._loop.time() + (deadline - self.resources.clock()).total_seconds())
        return due

    def seconds_left(self) -> float:
        return max(0.0, self._due - self._loop.time())

    async def check(self) -> None:
        """UNAUTHENTICATED (raised) once the token has expired or its API client was revoked."""
        if self._loop.time() < self._due:
            return
        await still_valid(self.resources.db, self.viewer, now=self.resources.clock(), leeway=self.leeway)
        self._due = self._next()


SLOW_CONSUMER_CLOSE_CODE = 4008
UNAUTHORIZED_CLOSE_CODE = 4401  # graphql-transport-ws's code for an unauthorized connection
_closing: set[asyncio.Task[None]] = set()


def _disconnect_soon(socket: object, code: int, reason: str) -> None:
    """After the error frame has gone out, close the connection: the client must reconnect (with its cursor)."""
    if not isinstance(socket, WebSocket):
        return

    async def close() -> None:
        await asyncio.sleep(0.5)
        with contextlib.suppress(Exception):
            await socket.close(code=code, reason=reason)

    task = asyncio.get_running_loop().create_task(close())
    _closing.add(task)  # held until done, so it is not collected mid-flight
    task.add_done_callback(_closing.discard)


def _record(item: LiveEvent) -> EventRecord:
    envelope = item.envelope
    occurred = datetime.fromisoformat(str(envelope.get("time", "")).replace("Z", "+00:00"))
    return EventRecord(item.seq, UUID(str(envelope["id"])), item.subject, occurred, envelope)
