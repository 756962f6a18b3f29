"""Notice commands: report (one or a thousand), act along the lifecycle, request preservation.

Each command checks the access policy and the lifecycle, then writes the new
state, its history row, its event row(s) and its audit entry in ONE
transaction. A refused command changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from ..domain import access
from ..domain import events as domain_events
from ..domain.access import Action, Relation
from ..domain.errors import BadUserInput, Conflict, NotFound
from ..domain.ids import to_global_id, uuid7_at
from ..domain.notices import (
    AWAITING_REMOVAL,
    Changed,
    ContentCategory,
    ContentHash,
    Notice,
    RefusalReason,
    Transition,
    VerificationOutcome,
    apply,
    check_version,
    clean_hashes,
    due_at,
    normalize_url,
    request_preservation,
    screen_note,
)
from ..domain.organizations import OrganizationKind, Viewer
from ..protect import UrlProtector
from ..store import audit, events
from ..store import deadlines as deadlines_store
from ..store import notices as store
from ..store.idempotency import IdempotencyKey, claim_keys, record_keys
from .organizations import KnownOrganizations

MAX_BATCH = 1000

# The platform acts on its own only for deadlines. It is operated under the ministry,
# so its automatic escalations carry actor kind GOVERNMENT in history and events; its
# audit entries have subject "platform" and the platform's own organization (created
# by migration 0004, so the audit log can name it like any other actor).
PLATFORM_ACTOR_KIND = OrganizationKind.GOVERNMENT
PLATFORM_ORGANIZATION_ID = UUID("00000000-0000-7000-8000-000000000001")
AUTOMATIC_ESCALATION_NOTE = "Escalated by the platform: still not removed after the deadline and grace period."


@dataclass(frozen=True)
class _PlatformActor:
    organization_id: UUID
    subject: str


PLATFORM = _PlatformActor(PLATFORM_ORGANIZATION_ID, "platform")
IDEMPOTENCY_KEY_MAX = 200

ACTION_FOR = {
    Transition.ACKNOWLEDGE: Action.ACKNOWLEDGE_NOTICE,
    Transition.REMOVE: Action.MARK_NOTICE_REMOVED,
    Transition.REFUSE: Action.REFUSE_NOTICE,
    Transition.VERIFY_OFFLINE: Action.VERIFY_NOTICE,
    Transition.REAPPEAR: Action.VERIFY_NOTICE,
    Transition.ESCALATE: Action.ESCALATE_NOTICE,
    Transition.WITHDRAW: Action.WITHDRAW_NOTICE,
}
AUDIT_FOR = {
    Transition.ACKNOWLEDGE: "notice.acknowledge",
    Transition.REMOVE: "notice.remove",
    Transition.REFUSE: "notice.refuse",
    Transition.VERIFY_OFFLINE: "notice.verify",
    Transition.REAPPEAR: "notice.verify",
    Transition.ESCALATE: "notice.escalate",
    Transition.WITHDRAW: "notice.withdraw",
}


@dataclass(frozen=True)
class ReportInput:
    provider_id: UUID
    url: str
    category: ContentCategory
    content_hashes: Sequence[tuple[str, str]] = ()
    note: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Reported:
    notice: Notice
    deduplicated: bool


@dataclass(frozen=True)
class _Clean:
    """One report input, validated and protected, ready to insert."""

    index: int
    provider_id: UUID
    category: ContentCategory
    url: str  # as reported (trimmed): the company needs exactly what the reporter saw
    url_hmac: bytes  # of the normalized form: the same location however it is written
    hashes: tuple[ContentHash, ...]
    note: str | None
    key: str | None


def utcnow() -> datetime:
    return datetime.now(UTC)


class NoticeCommands:
    def __init__(
        self,
        pool: asyncpg.Pool,
        protector: UrlProtector,
        *,
        deadlines: dict[ContentCategory, timedelta] | None = None,
        clock: Callable[[], datetime] = utcnow,
        organizations: KnownOrganizations | None = None,
    ) -> None:
        self.pool = pool
        self.protector = protector
        self.deadlines = deadlines or {}
        self.clock = clock
        self.organizations = organizations or KnownOrganizations()  # for the provider check of every report

    # ----------------------------------------------------------- report

    async def report(
        self, viewer: Viewer, inputs: Sequence[ReportInput], *, reported_at: datetime | None = None
    ) -> list[Reported]:
        """All or nothing: every input is validated before anything is written; results in input order."""
        access.require(viewer, Action.REPORT_NOTICE)
        if not 1 <= len(inputs) <= MAX_BATCH:
            raise BadUserInput(f"report between 1 and {MAX_BATCH} notices at a time, got {len(inputs)}")
        single = len(inputs) == 1
        cleaned = [self._clean(i, item, single) for i, item in enumerate(inputs)]
        keys = [c.key for c in cleaned if c.key]
        if len(keys) != len(set(keys)):
            raise BadUserInput("each idempotencyKey may appear only once in a batch")
        now = reported_at or self.clock()
        if single:
            reported = await self._report_one(viewer, cleaned[0], now)
            if reported is not None:
                return [reported]
        results: list[Reported | None] = [None] * len(cleaned)

        async with self.pool.acquire() as conn, conn.transaction():
            await self._check_providers(conn, cleaned, single)
            keyed = [IdempotencyKey(c.key, c.index) for c in cleaned if c.key]
            earlier = await claim_keys(conn, viewer, "reportNotice", keyed)
            if earlier:
                loaded = await store.by_ids(conn, [e.result_id for e in earlier.values()])
                for (claimed, previous), notice in zip(earlier.items(), loaded, strict=True):
                    if notice is None:
                        raise Conflict("the notice recorded for this idempotency key no longer exists")
                    results[claimed.index] = Reported(notice, previous.deduplicated)

            pending = [c for c in cleaned if results[c.index] is None]
            first_of: dict[tuple[UUID, bytes], _Clean] = {}
            new_rows: list[store.NewNotice] = []
            for c in pending:
                if (c.provider_id, c.url_hmac) in first_of:
                    continue  # the same URL twice in one batch: the second is a duplicate of the first
                first_of[(c.provider_id, c.url_hmac)] = c
                new_rows.append(self._new_row(viewer, c, now))
            inserted = await store.insert_new(conn, new_rows)
            inserted_by_key = {(r.provider_id, r.url_hmac): inserted[r.id] for r in new_rows if r.id in inserted}
            missing = [k for k in first_of if k not in inserted_by_key]
            existing = await store.open_for(conn, missing) if missing else {}
            if len(existing) != len(missing):
                raise Conflict("a matching notice changed while reporting; retry the report")

            for c in pending:
                url_key = (c.provider_id, c.url_hmac)
                if url_key in inserted_by_key:
                    results[c.index] = Reported(inserted_by_key[url_key], deduplicated=first_of[url_key] is not c)
                else:
                    results[c.index] = Reported(existing[url_key], deduplicated=True)

            final = [r for r in results if r is not None]
            await record_keys(
                conn,
                viewer,
                "reportNotice",
                [(k, final[k.index].notice.id, final[k.index].deduplicated) for k in keyed if k not in earlier],
            )
            # Last, as late as possible: the events and the audit entries take the commit-order lock,
            # which every writer waits for until this transaction commits.
            created = [(first_of[(r.provider_id, r.url_hmac)], inserted[r.id]) for r in new_rows if r.id in inserted]
            await events.append_with_audit(
                conn,
                [domain_events.notice_reported(n, c.hashes, viewer.organization_kind) for c, n in created],
                viewer,
                "notice.report",
                [to_global_id("Notice", r.notice.id) for r in final],
            )
        return final

    async def _report_one(self, viewer: Viewer, c: _Clean, now: datetime) -> Reported | None:
        """A new notice in one statement (store.report_one: the commit-order lock is not held across a
        round trip); None, having written nothing, when it is a duplicate or its key was used before,
        which the transactional path then settles."""
        row = self._new_row(viewer, c, now)
        event = domain_events.notice_reported(row.as_inserted(reference=""), c.hashes, viewer.organization_kind)
        async with self.pool.acquire() as conn:
            await self._check_providers(conn, [c], single=True)
            notice = await store.report_one(
                conn,
                row,
                event,
                viewer,
                key=c.key,
                operation="reportNotice",
                audit_action="notice.report",
                audit_object_id=to_global_id("Notice", row.id),
            )
        return Reported(notice, deduplicated=False) if notice is not None else None

    def _new_row(self, viewer: Viewer, c: _Clean, now: datetime) -> store.NewNotice:
        notice_id = uuid7_at(now)
        ciphertext, key_id = self.protector.encrypt(notice_id, c.url)
        return store.NewNotice(
            id=notice_id,
            category=c.category,
            provider_id=c.provider_id,
            reporter_id=viewer.organization_id,
            ciphertext=ciphertext,
            key_id=key_id,
            url_hmac=c.url_hmac,
            reported_at=now,
            due_at=due_at(now, c.category, self.deadlines),
            hashes=c.hashes,
            reporter_kind=viewer.organization_kind,
            note=c.note,
        )

    def _clean(self, index: int, item: ReportInput, single: bool) -> _Clean:
        where = "" if single else f"inputs[{index}]."
        normalized = normalize_url(item.url, field=f"{where}url")
        key = item.idempotency_key
        if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
            raise BadUserInput(f"{where}idempotencyKey must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
        return _Clean(
            index=index,
            provider_id=item.provider_id,
            category=item.category,
            url=item.url.strip(),
            url_hmac=self.protector.lookup_hash(normalized),
            hashes=clean_hashes(item.content_hashes, field=f"{where}contentHashes"),
            note=screen_note(item.note, field=f"{where}note"),
            key=key,
        )

    async def _check_providers(self, conn: asyncpg.Connection, cleaned: Sequence[_Clean], single: bool) -> None:
        ids = sorted({c.provider_id for c in cleaned})
        providers = {i: o for i, o in zip(ids, await self.organizations.by_ids(conn, ids), strict=True) if o is not None}
        for c in cleaned:
            where = "" if single else f"inputs[{c.index}]."
            provider = providers.get(c.provider_id)
            if provider is None:
                raise NotFound(f"{where}providerId: no organization with that id")
            if provider.kind is not OrganizationKind.COMPANY:
                raise BadUserInput(f"{where}providerId: the provider must be a COMPANY, not {provider.kind.value}")

    # ----------------------------------------------------------- act

    async def act(
        self,
        viewer: Viewer,
        notice_id: UUID,
        transition: Transition,
        *,
        note: str | None = None,
        expected_version: int | None = None,
        refusal_reason: RefusalReason | None = None,
    ) -> Notice:
        screened = screen_note(note)
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            notice = await self._load_visible(conn, viewer, notice_id)
            access.require(viewer, ACTION_FOR[transition], _relation(notice))
            check_version(notice, expected_version)
            changed = apply(
                notice,
                transition,
                actor_kind=viewer.organization_kind,
                now=now,
                note=screened,
                refusal_reason=refusal_reason,
            )
            await self._write_change(conn, changed, viewer, now)
        return changed.notice

    async def _write_change(self, conn: asyncpg.Connection, changed: Changed, actor: audit.Actor, now: datetime) -> None:
        """State, history, event and audit entry of one transition, in the caller's transaction."""
        notice = changed.notice
        try:
            await store.update_with_history(conn, notice, changed.entry, now)
        except asyncpg.UniqueViolationError as error:  # the transaction is over: the caller's block rolls it back
            if error.constraint_name != store.OPEN_URL_INDEX:
                raise
            raise Conflict(
                f"notice {notice.reference} cannot reopen: another open notice exists for the same URL and provider"
            ) from None
        await events.append_with_audit(
            conn,
            [domain_events.notice_changed(changed)],
            actor,
            AUDIT_FOR[changed.transition],
            [to_global_id("Notice", notice.id)],
        )

    # ----------------------------------------------------------- the platform's own acts (deadlines worker)

    async def mark_overdue(self, notice_id: UUID, *, now: datetime) -> Notice | None:
        """Emit NOTICE_OVERDUE once, when the deadline has passed and the notice still awaits removal.

        None when there is nothing to do (not overdue, already told, or removed meanwhile):
        the worker may call this as often as it likes.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            notice = await store.get_for_update(conn, notice_id)
            if notice is None or not notice.overdue(now) or not await deadlines_store.claim_overdue(conn, notice_id, now):
                return None
            await events.append_with_audit(
                conn,
                [domain_events.notice_event(notice, "overdue", at=now, actor_kind=None)],
                PLATFORM,
                "notice.overdue",
                [to_global_id("Notice", notice.id)],
            )
        return notice

    async def escalate_overdue(self, notice_id: UUID, *, now: datetime, grace: timedelta) -> Notice | None:
        """Escalate as the platform (the same lifecycle command as escalateNotice, without the viewer's role check).

        Only a notice still NOTIFIED or ACKNOWLEDGED `grace` after its deadline; None otherwise.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            notice = await store.get_for_update(conn, notice_id)
            if notice is None or notice.status not in AWAITING_REMOVAL or now < notice.due_at + grace:
                return None
            changed = apply(
                notice, Transition.ESCALATE, actor_kind=PLATFORM_ACTOR_KIND, now=now, note=AUTOMATIC_ESCALATION_NOTE
            )
            await self._write_change(conn, changed, PLATFORM, now)
        return changed.notice

    async def verify(
        self,
        viewer: Viewer,
        notice_id: UUID,
        outcome: VerificationOutcome,
        *,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Notice:
        transition = Transition.VERIFY_OFFLINE if outcome is VerificationOutcome.OFFLINE else Transition.REAPPEAR
        return await self.act(viewer, notice_id, transition, note=note, expected_version=expected_version)

    async def request_preservation(
        self, viewer: Viewer, notice_id: UUID, *, note: str | None = None, expected_version: int | None = None
    ) -> Notice:
        screen_note(note)  # validated like every note; the flag itself adds no history entry
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            notice = await self._load_visible(conn, viewer, notice_id)
            access.require(viewer, Action.REQUEST_PRESERVATION, _relation(notice))
            check_version(notice, expected_version)
            flagged = request_preservation(notice)
            if flagged is None:
                return notice  # already requested: nothing changes, no second event
            await store.update(conn, flagged, now)
            await events.append_with_audit(
                conn,
                [domain_events.notice_event(flagged, "preservation_requested", at=now, actor_kind=viewer.organization_kind)],
                viewer,
                "notice.preservation",
                [to_global_id("Notice", notice.id)],
            )
        return flagged

    async def _load_visible(self, conn: asyncpg.Connection, viewer: Viewer, notice_id: UUID) -> Notice:
        """NOT_FOUND both when it does not exist and when the viewer may not see it: existence is not leaked."""
        notice = await store.get_for_update(conn, notice_id)
        if notice is None or access.notice_tier(viewer, reporter_id=notice.reporter_id, provider_id=notice.provider_id) is None:
            raise NotFound("no Notice with that id")
        return notice


def _relation(notice: Notice) -> Relation:
    return Relation(reporter_id=notice.reporter_id, provider_id=notice.provider_id)
