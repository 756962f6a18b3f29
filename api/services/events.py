"""Events as a viewer may receive them: which, at what tier, redacted how (ACCESS.md, EVENTS.md).

One rule for the paged query, the live subscription and webhooks: an event is
delivered only if the viewer may see its object NOW (at delivery time), and
whatever it carries is cut to the viewer's tier. The SQL in
api/store/event_reads.py narrows first; `readable` decides.
"""

from __future__ import annotations

import asyncio
import copy
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain.access import Tier
from ..domain.errors import BadUserInput
from ..domain.ids import from_global_id
from ..domain.notices import Notice
from ..domain.organizations import OrganizationKind, Viewer
from ..store import event_reads as store
from ..store import notices as notices_store
from ..store.event_reads import CONFERENCE_SCOPED, EventQuery, EventRecord
from .notice_reads import Visible, visible

AGGREGATES = ("victim_alert", "enforcement", "conference", "agreement", "commitment", "notice")
MAX_PAGE = 500
SCAN_LIMIT = 5000  # rows looked at per page before returning what was found (a cursor still advances)


def type_name(key: str) -> str:
    """notice.reported -> NOTICE_REPORTED"""
    return key.replace(".", "_").upper()


def key_of(type_name: str) -> str:
    """NOTICE_REPORTED -> notice.reported; VICTIM_ALERT_MATCHED -> victim_alert.matched"""
    lowered = type_name.lower()
    for aggregate in AGGREGATES:
        if lowered.startswith(aggregate + "_"):
            return f"{aggregate}.{lowered[len(aggregate) + 1:]}"
    raise BadUserInput(f"unknown event type {type_name}")


@dataclass(frozen=True)
class Delivered:
    record: EventRecord
    tier: Tier
    notice: Visible | None = None  # the notice as it is now, for notice events


@dataclass(frozen=True)
class EventPage:
    items: list[Delivered]
    has_next: bool
    last_seq: int  # the position reached (may be past the last item when invisible rows were skipped)


@dataclass(frozen=True)
class Wanted:
    """The viewer's own filter (EventFilter), in subject spelling."""

    keys: tuple[str, ...] | None = None
    provider_ids: tuple[str, ...] | None = None

    def matches(self, record: EventRecord) -> bool:
        if self.keys is not None and record.key not in self.keys:
            return False
        if self.provider_ids is not None:
            return record.aggregate in ("notice", "enforcement") and record.scope in self.provider_ids
        return True


def wanted(types: Sequence[str] | None, provider_ids: Sequence[UUID] | None) -> Wanted:
    return Wanted(
        keys=tuple(key_of(t) for t in types) if types is not None else None,
        provider_ids=tuple(str(p) for p in provider_ids) if provider_ids is not None else None,
    )


async def query_for(conn: asyncpg.Connection, viewer: Viewer, want: Wanted) -> EventQuery:
    """A company's reads are narrowed on the server to subjects scoped to it (td.notice.*.<its id>)."""
    company = viewer.organization_kind is OrganizationKind.COMPANY
    conference_ids = tuple(str(c) for c in await store.conferences_of(conn, viewer.organization_id)) if company else ()
    return EventQuery(
        own_scope=str(viewer.organization_id) if company else None,
        conference_ids=conference_ids,
        keys=want.keys,
        provider_ids=want.provider_ids,
    )


def live_patterns(viewer: Viewer) -> tuple[str, ...] | None:
    """Subjects a live subscriber listens to; None: all (then each event is still checked)."""
    if viewer.organization_kind is not OrganizationKind.COMPANY:
        return None
    own = str(viewer.organization_id)
    return (
        f"td.notice.*.{own}",
        f"td.enforcement.*.{own}",
        f"td.victim_alert.*.{own}",
        *(f"td.{aggregate}.>" for aggregate in CONFERENCE_SCOPED),
    )


def _uuid(global_id: object) -> UUID | None:
    try:
        return from_global_id(str(global_id))[1]
    except Exception:
        return None


def notice_ids(records: Iterable[EventRecord]) -> list[UUID]:
    """The notices these records are about (notice events, victim-alert matches)."""
    return sorted({r.record_id for r in (_NoticeRef.of(rec) for rec in records) if r is not None})


def _conference_ids(records: Iterable[EventRecord]) -> list[UUID]:
    return sorted({UUID(r.scope) for r in records if r.aggregate in CONFERENCE_SCOPED and _is_uuid(r.scope)})


class NoticeSnapshots:
    """Notices as they are just after live events, read once for all of a process's subscribers.

    Each live subscriber used to read the notices of every event it received: 500
    subscribers, 500 identical queries per event (a fifth of the API's CPU in the
    events benchmark). A read here is shared by everyone who asks for the same notice
    while it is fresh: it started after the asking event arrived (so it includes that
    event's commit; the relay publishes only committed rows) and at most `max_age`
    seconds ago, which keeps "the object as it is now" true to within that age.
    Visibility is still decided per viewer (`readable`); only the row is shared.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_age: float = 1.0, size: int = 4096) -> None:
        self.pool = pool
        self.max_age = max_age
        self.size = size
        self.reads = 0  # queries made (tests and the benchmark read it)
        self._entries: OrderedDict[UUID, tuple[float, asyncio.Future[Notice | None]]] = OrderedDict()
        self._reading: set[asyncio.Task[None]] = set()

    async def get(self, ids: Sequence[UUID], *, not_before: float) -> dict[UUID, Notice]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        shared: dict[UUID, asyncio.Future[Notice | None]] = {}
        missing: list[UUID] = []
        for key in ids:
            entry = self._entries.get(key)
            if entry is not None and not_before <= entry[0] and now - entry[0] <= self.max_age:
                shared[key] = entry[1]
            else:
                missing.append(key)
        if missing:
            started = loop.time()
            own = {key: loop.create_future() for key in missing}
            for key, future in own.items():
                self._entries[key] = (started, future)
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            # A task of its own: a subscriber that leaves mid-read must not cancel the read
            # the others are waiting for.
            read = loop.create_task(self._read(own))
            self._reading.add(read)
            read.add_done_callback(self._reading.discard)
            read.add_done_callback(lambda task: self._abandon(own) if task.cancelled() else None)
            shared.update(own)
        found: dict[UUID, Notice] = {}
        for key, future in shared.items():
            notice = await asyncio.shield(future)
            if notice is not None:
                found[key] = notice
        return found

    async def _read(self, own: dict[UUID, asyncio.Future[Notice | None]]) -> None:
        try:
            self.reads += 1
            async with self.pool.acquire() as conn:
                loaded = await notices_store.by_ids(conn, list(own))
        except Exception as exc:
            self._forget(own)  # the next asker reads again
            for future in own.values():
                future.set_exception(exc)
                future.exception()  # retrieved here; whoever awaits it still gets the error
            return
        for future, notice in zip(own.values(), loaded, strict=True):
            future.set_result(notice)

    def _abandon(self, own: dict[UUID, asyncio.Future[Notice | None]]) -> None:
        """The read was cancelled (shutting down), perhaps before it started: nobody waits for ever."""
        self._forget(own)
        for future in own.values():
            future.cancel()

    def _forget(self, own: dict[UUID, asyncio.Future[Notice | None]]) -> None:
        for key, future in own.items():
            entry = self._entries.get(key)
            if entry is not None and entry[1] is future:
                del self._entries[key]


async def readable_live(
    pool: asyncpg.Pool,
    snapshots: NoticeSnapshots,
    viewer: Viewer,
    records: Sequence[EventRecord],
    *,
    arrived: Sequence[float],
) -> list[Delivered]:
    """`readable` for a batch of live events (`arrived`: when each reached the process): notices
    come from the shared snapshots, and a connection is taken only when conference events need
    their participants. The snapshot must have started after the LAST arrival, or it could miss
    the commit of a later event in the batch and show its notice as it was before it."""
    notices = await snapshots.get(notice_ids(records), not_before=max(arrived))
    if not _conference_ids(records):
        return await readable(None, viewer, records, notices=notices)
    async with pool.acquire() as conn:
        return await readable(conn, viewer, records, notices=notices)


async def readable(
    conn: asyncpg.Connection | None,
    viewer: Viewer,
    records: Sequence[EventRecord],
    *,
    notices: Mapping[UUID, Notice] | None = None,
) -> list[Delivered]:
    """The records the viewer may see now, each with its tier (and notice), in the given order.

    `notices` are the records' notices when already read (live events); otherwise they
    are read on `conn`, which may be None only when nothing has to be read.
    """
    if notices is None:
        ids = notice_ids(records)
        loaded = await notices_store.by_ids(_required(conn), ids) if ids else []
        notices = {n.id: n for n in loaded if n is not None}
    conference_ids = _conference_ids(records)
    conferences = await store.conference_access(_required(conn), conference_ids) if conference_ids else {}

    delivered: list[Delivered] = []
    for record in records:
        if record.aggregate == "notice":
            ref = _NoticeRef.of(record)
            seen = visible(viewer, notices.get(ref.record_id)) if ref else None
            # The event type itself tells what the field would: below the tier that sees
            # preservationRequested, a preservation event is not delivered at all.
            hidden = record.name == "preservation_requested" and seen is not None and not access.shows(
                seen.tier, "preservationRequested"
            )
            if seen is not None and not hidden:
                delivered.append(Delivered(record, seen.tier, seen))
        elif record.aggregate == "enforcement":
            tier = access.enforcement_tier(viewer, provider_id=UUID(record.scope)) if _is_uuid(record.scope) else None
            if tier is not None:
                delivered.append(Delivered(record, tier))
        elif record.aggregate == "victim_alert":
            if _is_uuid(record.scope) and access.sees_victim_alert(viewer, holder_id=UUID(record.scope)):
                ref = _NoticeRef.of(record)
                matched = visible(viewer, notices.get(ref.record_id)) if ref else None
                delivered.append(Delivered(record, Tier.FULL, matched))
        elif record.aggregate in CONFERENCE_SCOPED:
            found = conferences.get(UUID(record.scope)) if _is_uuid(record.scope) else None
            if found and access.sees_conference(viewer, organizer_id=found[0], participant_ids=found[1]):
                delivered.append(Delivered(record, Tier.FULL))
        # Anything else (an aggregate this version does not know) is delivered to no one.
    return delivered


@dataclass(frozen=True)
class _NoticeRef:
    record_id: UUID

    @classmethod
    def of(cls, record: EventRecord) -> _NoticeRef | None:
        if record.aggregate not in ("notice", "victim_alert"):
            return None
        key = _uuid(record.data.get("noticeId"))
        return cls(key) if key else None


def _required(conn: asyncpg.Connection | None) -> asyncpg.Connection:
    assert conn is not None, "a connection is needed to read what these events are about"
    return conn


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
        return True
    except ValueError:
        return False


# What each tier may not see in a notice event's data (contract: contentHashes only at
# FULL; reporter and preservation flag only from CASE up).
HIDDEN_BELOW = {
    Tier.FULL: (),
    Tier.CASE: ("contentHashes",),
    Tier.STATUS: ("contentHashes", "reporterId", "preservationRequested"),
}


def redacted(delivered: Delivered) -> dict[str, Any]:
    """The CloudEvent as this viewer may receive it: `data` cut to its tier."""
    envelope = copy.deepcopy(delivered.record.envelope)
    data = envelope.get("data")
    if isinstance(data, dict) and delivered.record.aggregate == "notice":
        for name in HIDDEN_BELOW[delivered.tier]:
            data.pop(name, None)
    return envelope


async def page(
    pool: asyncpg.Pool, viewer: Viewer, want: Wanted, *, after: int, first: int, until: int | None = None
) -> EventPage:
    """Oldest first from `after`; `until` bounds a replay to a known head."""
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}, got {first}")
    items: list[Delivered] = []
    position = after
    scanned = 0
    batch = max(first + 1, 100)
    async with pool.acquire() as conn:
        query = await query_for(conn, viewer, want)
        while True:
            chunk = await store.page(conn, query, after=position, limit=batch, until=until)
            scanned += len(chunk)
            for delivered in await readable(conn, viewer, chunk):
                if len(items) == first:
                    return EventPage(items, True, items[-1].record.seq)
                items.append(delivered)
            if chunk:
                position = chunk[-1].seq
            if len(chunk) < batch:
                return EventPage(items, False, position)
            if scanned >= SCAN_LIMIT:
                # Many rows this viewer may not see: return what was found; the cursor moves past them.
                return EventPage(items, True, position)


async def head(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return await store.head(conn)
